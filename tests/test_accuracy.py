"""The float32 tanh and sigmoid the kernels inline, everywhere on the float32 line, against float64; and the LSTM
cell that multiplies their fractions, against float64 arithmetic on the same inputs. The bounds are derived in
tests/tolerances.py. (How close whole models come to the float64 truth, beside onnxruntime and torch, is the
benchmarks' accuracy suite: python -m benchmarks accuracy.)"""

import numba
import numpy as np
import pytest

from engine.config import FASTMATH
from engine.kernels.activations import sigmoid_, sigmoid_nd, tanh_, tanh_nd
from tests.tolerances import ACTIVATION_F32, SIGMOID_TAIL_RELATIVE_F32

_OPTS = dict(fastmath=FASTMATH, error_model="numpy")   # the kernels' own flags: the loops vectorize as theirs do


@numba.njit(**_OPTS)
def _tanh(x, y):
    for i in range(x.shape[0]):
        y[i] = tanh_(x[i])


@numba.njit(**_OPTS)
def _sigmoid(x, y):
    for i in range(x.shape[0]):
        y[i] = sigmoid_(x[i])


@numba.njit(**_OPTS)
def _cell(g, c, h):
    H = c.shape[0]
    for j in range(H):   # the LSTM fast path's arithmetic (engine/kernels/lstm.py)
        i_n, i_d = sigmoid_nd(g[j])
        f_n, f_d = sigmoid_nd(g[H + j])
        z_n, z_d = tanh_nd(g[2 * H + j])
        o_n, o_d = sigmoid_nd(g[3 * H + j])
        iz_d = i_d * z_d
        ct = (f_n * c[j] * iz_d + i_n * z_n * f_d) / (f_d * iz_d)
        c[j] = ct
        t_n, t_d = tanh_nd(ct)
        h[j] = (o_n * t_n) / (o_d * t_d)


def _inputs(dtype=np.float32):
    """Every float32 from -30 to 30 at a spacing of 1e-5 (6M points: both sides of every polynomial range), the
    normal values near 0, and the extremes."""
    dense = np.linspace(-30, 30, 6_000_001, dtype=np.float64).astype(np.float32)
    tiny = np.float32([0.0, -0.0, 1e-38, -1e-38, 1e-30, -1e-30, 1e-8, -1e-8])
    huge = np.float32([88, -88, 100, -100, 1e8, -1e8, 1e30, -1e30, 3.4e38, -3.4e38])
    return np.concatenate([dense, tiny, huge]).astype(dtype)


def test_infinite_and_nan_arguments_give_nan_as_the_security_notes_say():
    """Non-finite data propagates as NaN (SECURITY.md), even where the limit exists: an infinite pre-activation
    means the input was not a number the model can use."""
    x = np.float32([np.inf, -np.inf, np.nan, -np.nan])
    for fn in (_tanh, _sigmoid):
        y = np.zeros_like(x)
        fn(x, y)
        assert np.isnan(y).all(), (fn, y)


def test_float32_tanh_is_within_its_bound_everywhere():
    x = _inputs()
    y = np.empty_like(x)
    _tanh(x, y)
    err = np.abs(y - np.tanh(x.astype(np.float64)))
    worst = int(np.argmax(err))
    assert err.max() <= ACTIVATION_F32, f"tanh({x[worst]!r}) = {y[worst]!r}, {err[worst]:.3g} off"
    # saturates at any size (the former clamp gave 0 past 1e8)
    assert y[-1] == -1 and y[-2] == 1 and y[-6] == 1 and y[-5] == -1


def test_float32_sigmoid_is_within_its_bounds_everywhere_and_in_its_tail():
    x = _inputs()
    y = np.empty_like(x)
    _sigmoid(x, y)
    with np.errstate(over="ignore"):
        want = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    err = np.abs(y - want)
    worst = int(np.argmax(err))
    assert err.max() <= ACTIVATION_F32, f"sigmoid({x[worst]!r}) = {y[worst]!r}, {err[worst]:.3g} off"
    tail = (x < 0) & (x > -80)
    rel = err[tail] / want[tail]
    assert rel.max() <= SIGMOID_TAIL_RELATIVE_F32, f"relative error {rel.max():.3g} in the lower tail"
    assert y[-2] == 1 and 0 <= y[-1] < 1e-37


@pytest.mark.parametrize("scale", [0.5, 4.0, 40.0])
def test_the_lstm_cells_fractions_stay_within_the_activations_bounds(scale):
    """C_t = f C_t-1 + i z and h = o tanh(C_t) from the activations' fractions, one division each, against the
    same formula in float64: C_t within the activations' error times what multiplies it (|C_t-1| + 1) plus a few
    roundings of C_t itself; h within the bound of tanh and sigmoid together plus the error C_t brings."""
    rng = np.random.default_rng(int(scale * 10))
    H = 200_000
    g = (rng.standard_normal(4 * H) * scale).astype(np.float32)
    c0 = (rng.standard_normal(H) * scale / 2).astype(np.float32)
    c, h = c0.copy(), np.empty(H, np.float32)
    _cell(g, c, h)
    G, C0 = g.astype(np.float64), c0.astype(np.float64)
    sig = 1 / (1 + np.exp(-G))
    ct = sig[H:2 * H] * C0 + sig[:H] * np.tanh(G[2 * H:3 * H])
    ht = sig[3 * H:] * np.tanh(ct)
    c_bound = 2 * ACTIVATION_F32 * (np.abs(C0) + 1) + 4 * np.spacing(np.abs(ct).astype(np.float32))
    assert np.all(np.abs(c - ct) <= c_bound), np.max(np.abs(c - ct) - c_bound)
    assert np.all(np.abs(h - ht) <= 2 * ACTIVATION_F32 + np.abs(c - ct)), np.max(np.abs(h - ht))
