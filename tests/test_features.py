"""Features PyTorch does not have, against the NumPy reference (tests/reference/naive.py) and onnxruntime:
peepholes, clip, input_forget, activation lists with alpha/beta, GRU linear_before_reset=0, plus the
reverse direction, per-sequence lengths and initial states, for run and (where streamable) step.
"""

import zlib

import numpy as np
import pytest

import engine
from tests.helpers import random_weights
from tests.onnx_oracle import run_in_onnxruntime
from tests.reference import naive
from tests.tolerances import PARITY_F32, REFERENCE_F32, REFERENCE_F64, STEP_VS_RUN_F64

GATE_FUNCTIONS = ["relu", "tanh", "sigmoid", "affine", "leaky_relu", "thresholded_relu", "scaled_tanh",
                  "hard_sigmoid", "elu", "softsign", "softplus"]
CELL = {"lstm": engine.LSTM, "gru": engine.GRU, "rnn": engine.RNN}

# case name -> (cells it applies to, layer keyword arguments builder)
CASES = {
    "defaults": ("lstm gru rnn", lambda rng: {}),
    "peepholes": ("lstm", lambda rng: {"peephole": True}),
    "clip": ("lstm gru rnn", lambda rng: {"clip": 0.4}),
    "input_forget": ("lstm", lambda rng: {"input_forget": True}),
    "input_forget_peepholes_clip": ("lstm", lambda rng: {"input_forget": True, "peephole": True, "clip": 0.7}),
    "gru_linear_before_reset_0": ("gru", lambda rng: {"linear_before_reset": False}),
    "gru_linear_before_reset_0_clip": ("gru", lambda rng: {"linear_before_reset": False, "clip": 0.5}),
    "reverse": ("lstm gru rnn", lambda rng: {"direction": "reverse"}),
    "bidirectional_peepholes": ("lstm", lambda rng: {"direction": "bidirectional", "peephole": True}),
    "bidirectional": ("gru rnn", lambda rng: {"direction": "bidirectional"}),
}
ACTIVATION_SETS = [  # one list per cell kind; several cases so every function is a gate function somewhere
    ["hard_sigmoid", "softsign", "scaled_tanh"],
    ["sigmoid", "elu", "affine"],
    ["leaky_relu", "tanh", "softplus"],
    ["thresholded_relu", "relu", "tanh"],
]


def _seed(*parts):
    return zlib.crc32("/".join(map(str, parts)).encode())


def _activation(rng, name):
    # parameters away from the defaults, so a converter or kernel that ignores them is caught
    alpha = {"affine": 0.8, "leaky_relu": 0.07, "thresholded_relu": 0.1, "scaled_tanh": 1.3,
             "hard_sigmoid": 0.3, "elu": 0.6}.get(name)
    beta = {"affine": 0.1, "scaled_tanh": 0.7, "hard_sigmoid": 0.45}.get(name)
    return engine.Activation(name, alpha, beta)


def _layer(cell, rng, I=5, H=7, peephole=False, direction="forward", activations=None, **kwargs):
    D = 2 if direction == "bidirectional" else 1
    weights = [random_weights(rng, cell, I, H, peephole=peephole) for _ in range(D)]
    return CELL[cell](I, H, weights, direction=direction, activations=activations, **kwargs)


def _check(layer, rng, *, lengths=None, with_state=False, T=11, B=3, X=None):
    D = layer.num_directions
    if X is None:
        X = rng.uniform(-1, 1, (T, B, layer.input_size))
    T, B = X.shape[:2]
    h0 = rng.uniform(-0.5, 0.5, (D, B, layer.output_hidden)) if with_state else None
    c0 = rng.uniform(-0.5, 0.5, (D, B, layer.hidden_size)) if with_state and layer.cell == "lstm" else None
    y_ref, h_ref, c_ref = naive.recurrent(layer, X, lengths, h0, c0)
    init = None
    if with_state:
        init = {"layers.0.h": h0}
        if c0 is not None:
            init["layers.0.c"] = c0
    spec = engine.ModelSpec([layer])
    for dtype, tol in (("float64", REFERENCE_F64), ("float32", REFERENCE_F32)):
        y, state = engine.Model(spec, dtype=dtype).run(X, lengths, batch_first=False, initial_state=init,
                                                       return_state=True)
        np.testing.assert_allclose(y, y_ref, atol=tol, rtol=0, err_msg=f"{dtype} Y vs reference")
        np.testing.assert_allclose(state["layers.0.h"], h_ref, atol=tol, rtol=0, err_msg=f"{dtype} Y_h")
        if layer.cell == "lstm":
            np.testing.assert_allclose(state["layers.0.c"], c_ref, atol=tol, rtol=0, err_msg=f"{dtype} Y_c")
    if True:
        y_ort, h_ort, c_ort = run_in_onnxruntime(layer, X, lengths=lengths, h0=h0, c0=c0)
        y32 = engine.Model(spec, dtype="float32").run(X, lengths, batch_first=False, initial_state=init)
        np.testing.assert_allclose(y32, y_ort, atol=PARITY_F32, rtol=0, err_msg="float32 Y vs onnxruntime")
        np.testing.assert_allclose(y_ref, y_ort, atol=PARITY_F32, rtol=0, err_msg="reference vs onnxruntime")
    if spec.streamable:  # step must agree with run feature for feature
        model = engine.Model(spec, dtype="float64")
        for b in range(B):
            s = model.stream()
            if with_state:
                s.set_state({k: v[0, b] for k, v in init.items()})
            L = T if lengths is None else lengths[b]
            ys = np.stack([s.step(x) for x in X[:L, b]]) if L else np.zeros((0, layer.output_hidden))
            np.testing.assert_allclose(ys, y_ref[:L, b], atol=STEP_VS_RUN_F64, rtol=0, err_msg="step")


@pytest.mark.parametrize("cell,case", [(cell, case) for case, (cells, _) in sorted(CASES.items())
                                       for cell in cells.split()])
def test_feature_matches_reference_and_onnxruntime(cell, case):
    make = CASES[case][1]
    rng = np.random.default_rng(_seed(cell, case))
    _check(_layer(cell, rng, **make(rng)), rng)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("which", range(len(ACTIVATION_SETS)))
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_activation_lists_match_reference_and_onnxruntime(cell, which, direction):
    rng = np.random.default_rng(_seed(cell, which, direction))
    n = len(CELL[cell].default_activations)
    acts = [_activation(rng, name) for name in ACTIVATION_SETS[which][:n]]
    per_direction = [acts] if direction == "forward" else [acts, [_activation(rng, "tanh")] * n]
    layer = _layer(cell, rng, direction=direction, activations=per_direction)
    _check(layer, rng)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_sequence_lengths_and_initial_states_match_reference_and_onnxruntime(cell, direction):
    rng = np.random.default_rng(_seed(cell, direction, "lengths"))
    layer = _layer(cell, rng, direction=direction)
    _check(layer, rng, lengths=np.array([11, 4, 0]), with_state=True)


def test_every_gate_function_is_covered_by_the_activation_cases():
    covered = {name for names in ACTIVATION_SETS for name in names}
    assert covered == set(GATE_FUNCTIONS)


# features whose gate functions are ONNX's (not PyTorch's), driven into saturation
SATURATED = {
    "lstm peepholes, input_forget": ("lstm", {"peephole": True, "input_forget": True}),
    "lstm activation list": ("lstm", {"activations": ["hard_sigmoid", "softsign", ("scaled_tanh", 1.3, 0.7)]}),
    "lstm defaults, clip 30": ("lstm", {"clip": 30.0}),
    "gru linear_before_reset=0": ("gru", {"linear_before_reset": False}),
    "gru activation list": ("gru", {"activations": [("hard_sigmoid", 0.3, 0.4), "softsign"]}),
    "rnn sigmoid": ("rnn", {"activations": ["sigmoid"]}),
    "rnn tanh reverse": ("rnn", {"direction": "reverse"}),
}


@pytest.mark.parametrize("case", sorted(SATURATED))
def test_saturated_gates_match_reference_and_onnxruntime(case):
    """Weights of scale 3 with a few huge entries and inputs in [-8, 8]: gate pre-activations of |x| 20 to
    hundreds, where the float32 tanh/sigmoid approximations run on their clamps."""
    cell, kwargs = SATURATED[case]
    rng = np.random.default_rng(_seed("saturated", case))
    kwargs = dict(kwargs)
    I, H = 5, 7
    D = 2 if kwargs.get("direction") == "bidirectional" else 1
    weights = []
    for _ in range(D):
        w = random_weights(rng, cell, I, H, scale=3.0, peephole=kwargs.pop("peephole", False))
        flat = w["weight_ih"].reshape(-1)
        flat[rng.choice(flat.size, 3, replace=False)] = [40.0, -60.0, 90.0]
        weights.append(w)
    layer = CELL[cell](I, H, weights, **kwargs)
    X = rng.uniform(-8, 8, (11, 3, I))
    pre = np.einsum("tbi,gi->tbg", X, weights[0]["weight_ih"])
    assert np.abs(pre).max() > 200
    _check(layer, rng, X=X)
