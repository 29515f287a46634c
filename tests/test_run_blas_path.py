"""Model.run at batch >= BLAS_MIN_BATCH takes each timestep's recurrent GEMM through BLAS: every layer
feature there must give what the compiled per-sequence path gives (checked itself against PyTorch, the NumPy
reference and onnxruntime elsewhere), and PyTorch directly, with ragged lengths."""

import zlib

import numpy as np
import pytest
import torch

import converters
import engine
from engine.model import BLAS_MIN_BATCH
from tests.helpers import random_weights
from tests.tolerances import BLAS_VS_KERNEL_F32, BLAS_VS_KERNEL_F64, PARITY_F32

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


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "RNN"])
def test_the_blas_batch_path_matches_pytorch_with_ragged_lengths(cls):
    torch.manual_seed(1)
    m = getattr(torch.nn, cls)(I, H, num_layers=2, bidirectional=True, batch_first=True).eval()
    model = engine.Model(converters.from_torch(m))
    rng = np.random.default_rng(2)
    B, T = 16, 40
    X = rng.uniform(-1, 1, (B, T, I)).astype(np.float32)
    lens = rng.integers(1, T + 1, B)
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(X), torch.from_numpy(lens), batch_first=True,
                                                     enforce_sorted=False)
    with torch.no_grad():
        out, _ = m(packed)
    want, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    np.testing.assert_allclose(model.run(X, lengths=lens), want.numpy(), atol=PARITY_F32, rtol=0)
