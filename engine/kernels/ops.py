"""Non-recurrent layer kernels, the one dispatch the pure-Python call layer goes through, and the C entry points.

Design: every stepped layer has the same C signature,

    void op(T *x, T *y, T *params, T *state, T *scratch, int64 *meta, int64 n)

one ``@cfunc`` per layer kind and dtype (``op_cfunc``), compiled on first use: a model compiles only the
kinds it has (an LSTM alone: 8 s cold instead of 17 s for every kind in one function). The Cython layer
holds one such pointer per layer; the pure-Python twin calls ``run_op`` (one numba dispatcher that
switches on ``m[M_KIND]``) with arrays instead.
"""

import functools

import numpy as np
from numba import carray, types

from ..config import cfunc, jit
from .activations import LOG_SOFTMAX, SOFTMAX, apply
from .cells import gru_step, lstm_step, rnn_step
from .layout import (D_BIAS, D_MEAN, D_SCALE, D_W, M_CODE, M_DIR, M_IN, M_KIND, M_LEN, M_OUT, M_PLEN,
                     M_SCRATCH, M_STATE, OP_ACT, OP_DENSE, OP_GRU, OP_LSTM, OP_NORM, OP_RNN)


@jit
def dense_step(X, Y, P, m):
    """Y (n, out) = X (n, in) @ W^T + b, W packed as given, (out, in): one dot product per output.

    Design: a dense head often has a large fan-in and large outputs (logits), where float32 rounding of a
    long sequential sum shows (1e-5 at |y| ~ 20 over 256 inputs). Each output is therefore a row dot
    product accumulated in float64, which LLVM vectorizes as a reduction with many partial sums (fastmath
    permits the reassociation): as accurate as BLAS, and a head is a small part of a step.
    """
    nin, nout = m[M_IN], m[M_OUT]
    ow = m[M_DIR + D_W]
    ob = m[M_DIR + D_BIAS]
    W = P[ow:ow + nin * nout].reshape((nout, nin))
    for r in range(X.shape[0]):
        x = X[r]
        y = Y[r]
        for j in range(nout):
            w = W[j]
            acc = 0.0
            for k in range(nin):
                acc += np.float64(x[k]) * np.float64(w[k])
            if ob >= 0:
                acc += np.float64(P[ob + j])
            y[j] = acc


@jit
def activation_step(X, Y, P, m):
    """Y = act(X) elementwise, or softmax / log-softmax over each row."""
    code = m[M_CODE]
    alpha, beta = P[0], P[1]
    n, F = X.shape
    for r in range(n):
        x = X[r]
        y = Y[r]
        if code == SOFTMAX or code == LOG_SOFTMAX:
            mx = x[0]
            for j in range(1, F):
                mx = x[j] if x[j] > mx else mx
            total = x[0] - x[0]
            for j in range(F):
                total += np.exp(x[j] - mx)
            if code == SOFTMAX:
                for j in range(F):
                    y[j] = np.exp(x[j] - mx) / total
            else:
                lt = np.log(total)
                for j in range(F):
                    y[j] = x[j] - mx - lt
        else:
            for j in range(F):
                y[j] = apply(code, alpha, beta, x[j])


@jit
def normalize_step(X, Y, P, m):
    """Y = (X - mean) * scale per feature."""
    F = m[M_IN]
    om, osc = m[M_DIR + D_MEAN], m[M_DIR + D_SCALE]
    for r in range(X.shape[0]):
        for j in range(F):
            Y[r, j] = (X[r, j] - P[om + j]) * P[osc + j]


@jit
def run_op(X, Y, P, S, SC, m):
    """Run one packed layer for one timestep on n rows: X (n, in) -> Y (n, out); S (n, state) in place."""
    kind = m[M_KIND]
    if kind == OP_LSTM:
        lstm_step(X, Y, P, S, SC, m)
    elif kind == OP_GRU:
        gru_step(X, Y, P, S, SC, m)
    elif kind == OP_RNN:
        rnn_step(X, Y, P, S, SC, m)
    elif kind == OP_DENSE:
        dense_step(X, Y, P, m)
    elif kind == OP_ACT:
        activation_step(X, Y, P, m)
    elif kind == OP_NORM:
        normalize_step(X, Y, P, m)


# ---- C entry points: one per layer kind, the same signature for all ----------------------------------

def _lstm_c(x, y, p, s, sc, meta, n):
    m = carray(meta, (meta[M_LEN],))
    lstm_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
              carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)


def _gru_c(x, y, p, s, sc, meta, n):
    m = carray(meta, (meta[M_LEN],))
    gru_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
             carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)


def _rnn_c(x, y, p, s, sc, meta, n):
    m = carray(meta, (meta[M_LEN],))
    rnn_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
             carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)


def _dense_c(x, y, p, s, sc, meta, n):
    m = carray(meta, (meta[M_LEN],))
    dense_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)), m)


def _activation_c(x, y, p, s, sc, meta, n):
    m = carray(meta, (meta[M_LEN],))
    activation_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)), m)


def _normalize_c(x, y, p, s, sc, meta, n):
    m = carray(meta, (meta[M_LEN],))
    normalize_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)), m)


_ENTRY = {OP_LSTM: _lstm_c, OP_GRU: _gru_c, OP_RNN: _rnn_c, OP_DENSE: _dense_c, OP_ACT: _activation_c,
          OP_NORM: _normalize_c}
_NUMBA_TYPES = {"float32": types.float32, "float64": types.float64}


@functools.lru_cache(maxsize=None)
def op_cfunc(dtype, kind):
    """The C-callable step of layer ``kind`` (an OP_* code) for ``dtype``; compiled (or loaded) on first use."""
    ptr = types.CPointer(_NUMBA_TYPES[np.dtype(dtype).name])
    signature = types.void(ptr, ptr, ptr, ptr, ptr, types.CPointer(types.int64), types.int64)
    return cfunc(signature, _ENTRY[kind])
