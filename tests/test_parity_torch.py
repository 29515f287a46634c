"""Parity against PyTorch: nn.LSTM / nn.GRU / nn.RNN (tanh, relu), built into a ModelSpec from the modules'
parameters, through Model.run, Stream.step and Stream.step_n, float32 and float64.

Configurations come from hypothesis; each example draws a seed for torch's weights and the inputs, shown
in the falsifying example on failure.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from tests.helpers import cap_gate_norms, spec_from_torch, torch_state_to_engine
from tests.tolerances import PARITY_F32, PARITY_F64, SATURATED_F32, assert_parity

torch.set_num_threads(1)

TOL = {"float32": PARITY_F32, "float64": PARITY_F64}
HIDDEN = st.sampled_from([1, 2, 7, 16, 33, 64])


def _module(kind, I, H, layers, bidirectional, proj, batch_first, seed):
    torch.manual_seed(seed)
    common = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    if kind == "lstm":
        m = torch.nn.LSTM(I, H, proj_size=proj, **common)
    elif kind == "gru":
        m = torch.nn.GRU(I, H, **common)
    else:
        m = torch.nn.RNN(I, H, nonlinearity=kind.split("_")[1], **common)
    with torch.no_grad():
        # Non-trivial but stable weights: 1.5x torch's default range, with every recurrent gate block's
        # spectral norm capped at 0.9. (A chaotic model, radius ~2, amplifies float32 rounding until even
        # torch's float32 differs from its float64 by 4e-2 at T=2000: no float32 engine can match that.)
        for name, p in m.named_parameters():
            fan_in = p.shape[1] if p.dim() == 2 else H
            p.uniform_(-1.5 / fan_in ** 0.5, 1.5 / fan_in ** 0.5)
            if name.startswith("weight_hh"):
                # The range alone bounds the radius only on average: a small H can draw a gate block with
                # radius 1.8, and a 3-layer ReLU RNN then grows 1.3x per step (|y| ~ 2e5 by T=47).
                cap_gate_norms(p.detach().numpy(), H, 0.9)  # one (H, H or proj) block per gate, in place
    return m.double().eval()


@st.composite
def configs(draw, streamable=False):
    kind = draw(st.sampled_from(["lstm", "gru", "rnn_tanh", "rnn_relu"]))
    H = draw(HIDDEN)
    proj = 0
    if kind == "lstm" and H > 1 and draw(st.booleans()):
        proj = draw(st.integers(1, H - 1))
    return dict(
        kind=kind, I=draw(st.integers(1, 12)), H=H, proj=proj,
        layers=draw(st.integers(1, 3)),
        bidirectional=False if streamable else draw(st.booleans()),
        batch_first=draw(st.booleans()),
        B=draw(st.integers(1, 4)), T=draw(st.integers(1, 60)),
        with_state=draw(st.booleans()),
        dtype=draw(st.sampled_from(["float32", "float64"])),
        seed=draw(st.integers(0, 2 ** 31 - 1)),
    )


def _torch_run(m, X, h0, c0):
    with torch.inference_mode():
        args = (torch.from_numpy(X),)
        if h0 is not None:
            args += ((torch.from_numpy(h0), torch.from_numpy(c0)) if c0 is not None else torch.from_numpy(h0),)
        y, state = m(*args)
    hT, cT = (state if isinstance(state, tuple) else (state, None))
    return y.numpy(), hT.numpy(), None if cT is None else cT.numpy()


def _initial_states(cfg, rng, m):
    if not cfg["with_state"]:
        return None, None
    D = 2 if cfg["bidirectional"] else 1
    Ho = cfg["proj"] or cfg["H"]
    h0 = rng.uniform(-1, 1, (cfg["layers"] * D, cfg["B"], Ho))
    c0 = rng.uniform(-1, 1, (cfg["layers"] * D, cfg["B"], cfg["H"])) if cfg["kind"] == "lstm" else None
    return h0, c0


@settings(max_examples=40)
@given(cfg=configs())
def test_run_matches_torch(cfg):
    rng = np.random.default_rng(cfg["seed"])
    m = _module(cfg["kind"], cfg["I"], cfg["H"], cfg["layers"], cfg["bidirectional"], cfg["proj"],
                cfg["batch_first"], cfg["seed"])
    shape = (cfg["B"], cfg["T"], cfg["I"]) if cfg["batch_first"] else (cfg["T"], cfg["B"], cfg["I"])
    X = rng.uniform(-1, 1, shape)
    h0, c0 = _initial_states(cfg, rng, m)
    y_ref, h_ref, c_ref = _torch_run(m, X, h0, c0)

    model = engine.Model(spec_from_torch(m), dtype=cfg["dtype"])
    D = 2 if cfg["bidirectional"] else 1
    init = torch_state_to_engine(h0, c0, cfg["layers"], D) if h0 is not None else None
    y, state = model.run(X, batch_first=cfg["batch_first"], initial_state=init, return_state=True)
    tol = TOL[cfg["dtype"]]
    assert y.dtype == np.dtype(cfg["dtype"])
    assert y.shape == y_ref.shape
    dt = cfg["dtype"]
    assert_parity(y, y_ref, tol, dt, "Y")
    for layer in range(cfg["layers"]):
        assert_parity(state[f"layers.{layer}.h"], h_ref[layer * D:(layer + 1) * D], tol, dt, f"layer {layer} h")
        if c_ref is not None:
            assert_parity(state[f"layers.{layer}.c"], c_ref[layer * D:(layer + 1) * D], tol, dt, f"layer {layer} c")


@settings(max_examples=30)
@given(cfg=configs(streamable=True))
def test_step_and_step_n_match_torch(cfg):
    rng = np.random.default_rng(cfg["seed"])
    m = _module(cfg["kind"], cfg["I"], cfg["H"], cfg["layers"], False, cfg["proj"], False, cfg["seed"])
    X = rng.uniform(-1, 1, (cfg["T"], 1, cfg["I"]))
    h0, c0 = _initial_states(dict(cfg, B=1), rng, m)
    y_ref = _torch_run(m, X, h0, c0)[0][:, 0, :]

    model = engine.Model(spec_from_torch(m), dtype=cfg["dtype"])
    tol = TOL[cfg["dtype"]]
    s = model.stream()
    state = None
    if h0 is not None:
        state = {}
        for layer in range(cfg["layers"]):
            state[f"layers.{layer}.h"] = h0[layer, 0]
            if c0 is not None:
                state[f"layers.{layer}.c"] = c0[layer, 0]
        s.set_state(state)
    ys = np.stack([s.step(x) for x in X[:, 0, :]])
    assert_parity(ys, y_ref, tol, cfg["dtype"], "step")

    s2 = model.stream()
    if state is not None:
        s2.set_state(state)
    assert_parity(s2.step_n(X[:, 0, :]), y_ref, tol, cfg["dtype"], "step_n")


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_long_sequence_of_2000_steps_matches_torch(kind, dtype):
    seed = 1234
    m = _module(kind, 8, 33, 2, False, 0, False, seed)
    X = np.random.default_rng(seed).uniform(-1, 1, (2000, 1, 8))
    y_ref = _torch_run(m, X, None, None)[0][:, 0, :]
    model = engine.Model(spec_from_torch(m), dtype=dtype)
    tol = SATURATED_F32 if dtype == "float32" else PARITY_F64
    assert_parity(model.run(X[:, 0, :]), y_ref, tol, dtype, "run")
    assert_parity(model.stream().step_n(X[:, 0, :]), y_ref, tol, dtype, "step_n")


@pytest.mark.parametrize("bidirectional", [False, True])
def test_run_with_lengths_matches_torch_packed_sequences(bidirectional):
    seed = 99
    rng = np.random.default_rng(seed)
    m = _module("lstm", 5, 16, 2, bidirectional, 0, True, seed)
    lengths = np.array([9, 3, 1, 6])
    X = rng.uniform(-1, 1, (4, 9, 5))
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(X), torch.from_numpy(lengths),
                                                     batch_first=True, enforce_sorted=False)
    with torch.inference_mode():
        out, (hT, _) = m(packed)
        y_ref, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=9)
    y, state = engine.Model(spec_from_torch(m), dtype="float64").run(X, lengths, return_state=True)
    np.testing.assert_allclose(y, y_ref.numpy(), atol=PARITY_F64, rtol=0)
    D = 2 if bidirectional else 1
    np.testing.assert_allclose(state["layers.1.h"], hT.numpy()[D:], atol=PARITY_F64, rtol=0)


def _max_input_preactivation(m, X):
    """The largest |W_ih x + b_ih + b_hh| of the first layer over X (T, 1, I): how deep the gates saturate
    before the recurrent term is even added."""
    W = m.weight_ih_l0.detach().numpy()
    b = (m.bias_ih_l0 + m.bias_hh_l0).detach().numpy()
    return float(np.abs(X[:, 0, :] @ W.T + b).max())


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])   # (ReLU has no saturation to drive into)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gates_driven_deep_into_saturation_match_torch(kind, dtype):
    """Large inputs, large input weights and a few huge ones: gate pre-activations far beyond where tanh and
    sigmoid round to +-1 / 0 / 1 (|x| ~ 8 in float32), where an approximation's clamp or tail shows. Moving
    the float32 tanh clamp from 7.9 to 4.0 (errors of 6.7e-4) fails this; uniform(-1, 1) inputs do not."""
    seed = 4242
    m = _module(kind, 6, 16, 2, False, 0, False, seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.startswith("weight_ih"):
                p.mul_(8.0)
                flat = p.view(-1)
                flat[torch.randperm(flat.numel(), generator=gen)[:3]] = torch.tensor([40.0, -60.0, 90.0],
                                                                                     dtype=p.dtype)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-6, 6, (300, 1, 6))
    X[::37] *= 10                                        # now and then a sample far out of range
    assert _max_input_preactivation(m, X) > 200
    y_ref = _torch_run(m, X, None, None)[0][:, 0, :]
    model = engine.Model(spec_from_torch(m), dtype=dtype)
    tol = SATURATED_F32 if dtype == "float32" else PARITY_F64
    assert_parity(model.run(X[:, 0, :]), y_ref, tol, dtype, "run")
    assert_parity(model.stream().step_n(X[:, 0, :]), y_ref, tol, dtype, "step_n")
