"""Model.run at batch >= BLAS_MIN_BATCH takes each timestep's recurrent GEMM through BLAS: every layer
feature there must give what the compiled per-sequence path gives, and what the outside frameworks give
directly at such a batch, with ragged lengths and initial states: PyTorch for what it has, onnxruntime for
the ONNX features PyTorch lacks. A spy on RecurrentKind._recurrence_blas asserts that the BLAS path really ran."""

import zlib

import numpy as np
import pytest
import torch

import converters
import engine
from engine.layers.recurrent import BLAS_MIN_BATCH, RecurrentKind
from tests.helpers import random_weights
from tests.onnx_oracle import run_in_onnxruntime
from tests.tolerances import BLAS_VS_KERNEL_F32, BLAS_VS_KERNEL_F64, PARITY_F32, assert_parity

I, H = 5, 12


def _layers(rng):
    return {
        "lstm plain": engine.LSTM(I, H, random_weights(rng, "lstm", I, H)),
        "lstm proj+peephole+clip+input_forget": engine.LSTM(
            I, H, random_weights(rng, "lstm", I, H, Ho=7, peephole=True), proj_size=7, clip=0.8, input_forget=True),
        "lstm bidirectional, custom activations": engine.LSTM(
            I, H, [random_weights(rng, "lstm", I, H) for _ in range(2)], direction="bidirectional",
            activations=[("hard_sigmoid", 0.3, 0.4), "softsign", ("scaled_tanh", 1.2, 0.7)]),
        "gru linear_before_reset=1": engine.GRU(I, H, random_weights(rng, "gru", I, H)),
        "gru linear_before_reset=0, reverse, clip": engine.GRU(I, H, random_weights(rng, "gru", I, H),
                                                                linear_before_reset=False, direction="reverse",
                                                                clip=0.9),
        "gru initial state": engine.GRU(I, H, random_weights(rng, "gru", I, H), initial_h=rng.uniform(-1, 1, (1, H))),
        "rnn relu bidirectional": engine.RNN(I, H, [random_weights(rng, "rnn", I, H, scale=0.3) for _ in range(2)],
                                             direction="bidirectional", activations=["relu"]),
        "rnn tanh": engine.RNN(I, H, random_weights(rng, "rnn", I, H)),
    }


@pytest.mark.parametrize("dtype,tol", [("float32", BLAS_VS_KERNEL_F32), ("float64", BLAS_VS_KERNEL_F64)])
@pytest.mark.parametrize("name", sorted(_layers(np.random.default_rng(0))))
def test_the_blas_batch_path_equals_the_per_sequence_path_for_every_feature(name, dtype, tol):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    layer = _layers(np.random.default_rng(0))[name]
    model = engine.Model(engine.ModelSpec([layer, engine.Dense(rng.uniform(-1, 1, (3, layer.output_size(I))))]),
                         dtype=dtype)
    B, T = BLAS_MIN_BATCH + 3, 23
    X = rng.uniform(-1, 1, (B, T, I))
    lens = rng.integers(0, T + 1, B)
    lens[0] = T
    Y, state = model.run(X, lengths=lens, return_state=True)
    for b in range(B):  # batch 1: the compiled path
        yb, sb = model.run(X[b:b + 1], lengths=lens[b:b + 1], return_state=True)
        np.testing.assert_allclose(Y[b], yb[0], atol=tol, rtol=0, err_msg=f"{name} row {b}")
        for k in state:
            np.testing.assert_allclose(state[k][:, b], sb[k][:, 0], atol=tol, rtol=0, err_msg=f"{name} {k} row {b}")


@pytest.fixture
def blas_calls(monkeypatch):
    """Records every (cell, direction) that Model.run sends down the BLAS path."""
    calls = []
    real = RecurrentKind._recurrence_blas

    def spy(self, p, d, *args):
        calls.append((p.layer.cell, d))
        return real(self, p, d, *args)

    monkeypatch.setattr(RecurrentKind, "_recurrence_blas", spy)
    return calls


B_BLAS = BLAS_MIN_BATCH + 8


# torch module -> what PyTorch itself offers of the features above, two layers, both directions
TORCH_CASES = {
    "LSTM": lambda: torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True),
    "LSTM proj_size": lambda: torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True, proj_size=7),
    "GRU": lambda: torch.nn.GRU(I, H, num_layers=2, bidirectional=True, batch_first=True),
    "RNN tanh": lambda: torch.nn.RNN(I, H, num_layers=2, bidirectional=True, batch_first=True),
    "RNN relu": lambda: torch.nn.RNN(I, H, num_layers=2, bidirectional=True, batch_first=True, nonlinearity="relu"),
}


@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_the_blas_batch_path_matches_pytorch_with_ragged_lengths(case, with_state, blas_calls):
    torch.manual_seed(1)
    m = TORCH_CASES[case]().eval()
    model = engine.Model(converters.from_torch(m))
    rng = np.random.default_rng(2)
    T = 40
    X = rng.uniform(-1, 1, (B_BLAS, T, I)).astype(np.float32)
    lens = rng.integers(1, T + 1, B_BLAS)
    lens[0] = T
    Ho = getattr(m, "proj_size", 0) or H
    h0 = rng.uniform(-1, 1, (4, B_BLAS, Ho)).astype(np.float32)      # (layers * directions, B, H_out)
    c0 = rng.uniform(-1, 1, (4, B_BLAS, H)).astype(np.float32)
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(X), torch.from_numpy(lens), batch_first=True,
                                                     enforce_sorted=False)
    state = None
    if with_state:
        state = (torch.from_numpy(h0), torch.from_numpy(c0)) if case.startswith("LSTM") else torch.from_numpy(h0)
    with torch.no_grad():
        out, final = m(packed, state)
    want, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    init = None
    if with_state:
        init = {f"layers.{k}.h": h0[2 * k:2 * k + 2] for k in range(2)}
        if case.startswith("LSTM"):
            init.update({f"layers.{k}.c": c0[2 * k:2 * k + 2] for k in range(2)})
    Y, got = model.run(X, lengths=lens, initial_state=init, return_state=True)
    assert_parity(Y, want.numpy(), PARITY_F32, "float32", f"{case} Y")
    h_want = (final[0] if isinstance(final, tuple) else final).numpy()
    for k in range(2):
        assert_parity(got[f"layers.{k}.h"], h_want[2 * k:2 * k + 2], PARITY_F32, "float32", f"{case} layer {k} h")
    if case.startswith("LSTM"):
        for k in range(2):
            assert_parity(got[f"layers.{k}.c"], final[1].numpy()[2 * k:2 * k + 2], PARITY_F32, "float32",
                          f"{case} layer {k} c")
    cell = case.split()[0].lower()
    assert blas_calls == [(cell, 0), (cell, 1)] * 2   # every layer and direction took the BLAS path


# Features PyTorch lacks, against onnxruntime (which implements them; onnx.reference ignores clip,
# input_forget and activation lists) at a BLAS batch, with ragged lengths and initial states.
ORT_CASES = {
    "lstm peepholes, clip, input_forget": lambda rng: engine.LSTM(
        I, H, random_weights(rng, "lstm", I, H, peephole=True), clip=0.8, input_forget=True),
    "lstm bidirectional, custom activations": lambda rng: engine.LSTM(
        I, H, [random_weights(rng, "lstm", I, H) for _ in range(2)], direction="bidirectional",
        activations=[("hard_sigmoid", 0.3, 0.4), "softsign", ("scaled_tanh", 1.2, 0.7)]),
    "gru linear_before_reset=0, reverse, clip": lambda rng: engine.GRU(
        I, H, random_weights(rng, "gru", I, H), linear_before_reset=False, direction="reverse", clip=0.9),
    # leaky_relu gates are unbounded (z > 1 amplifies h, and its rounding, every step): weights small enough that
    # the sequences stay bounded, so a float32 bar measures the plumbing, not a chaotic recurrence
    "gru bidirectional, custom activations": lambda rng: engine.GRU(
        I, H, [random_weights(rng, "gru", I, H, scale=0.3) for _ in range(2)], direction="bidirectional",
        activations=[("leaky_relu", 0.07), "softsign"]),
    "rnn reverse, affine": lambda rng: engine.RNN(I, H, random_weights(rng, "rnn", I, H, scale=0.3),
                                                  direction="reverse", activations=[("affine", 0.8, 0.1)]),
}


@pytest.mark.parametrize("case", sorted(ORT_CASES))
def test_the_blas_batch_path_matches_onnxruntime_for_features_pytorch_lacks(case, blas_calls):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    layer = ORT_CASES[case](rng)
    D, T = layer.num_directions, 23
    X = rng.uniform(-1, 1, (T, B_BLAS, I)).astype(np.float32)
    lens = rng.integers(0, T + 1, B_BLAS)
    lens[:2] = T, 0
    h0 = rng.uniform(-0.5, 0.5, (D, B_BLAS, layer.output_hidden))
    c0 = rng.uniform(-0.5, 0.5, (D, B_BLAS, H)) if layer.cell == "lstm" else None
    y_ort, h_ort, c_ort = run_in_onnxruntime(layer, X, lengths=lens, h0=h0, c0=c0)
    init = {"layers.0.h": h0} if c0 is None else {"layers.0.h": h0, "layers.0.c": c0}
    Y, state = engine.Model(engine.ModelSpec([layer])).run(X, lens, batch_first=False, initial_state=init,
                                                          return_state=True)
    assert_parity(Y, y_ort, PARITY_F32, "float32", f"{case} Y")
    # Final states of the sequences that ran: for an empty one onnxruntime gives zeros, rnnjit the initial
    # state it was handed (nothing happened; the NumPy reference agrees, tests/test_features.py)
    ran = lens > 0
    assert_parity(state["layers.0.h"][:, ran], h_ort[:, ran], PARITY_F32, "float32", f"{case} Y_h")
    if c0 is not None:
        assert_parity(state["layers.0.c"][:, ran], c_ort[:, ran], PARITY_F32, "float32", f"{case} Y_c")
    assert blas_calls == [(layer.cell, d) for d in range(D)]
