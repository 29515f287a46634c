"""Dense (fully connected) layer kernel: Y = X W^T + b for n rows."""

import numpy as np
from numba import carray

from ..config import jit
from .activations import epilogue
from .layout import D_BIAS, D_W, M_DIR, M_H, M_IN, M_LEN, M_OUT, M_PLEN


@jit
def dense_step(X, Y, P, S, SC, m):
    """Y (n, out) = X (n, in) @ W^T + b, W packed as given, (out, in): one dot product per output; a frame of
    (..., in) is meta[M_H] such vectors, each projected (torch's Linear over the last axis). (S and SC,
    the state and scratch every kind's step takes, are empty: a dense layer has neither.)

    Design: a dense head often has a large fan-in and large outputs (logits), where float32 rounding of a
    long sequential sum shows (1e-5 at |y| ~ 20 over 256 inputs). Each output is therefore a row dot
    product accumulated in float64, which LLVM vectorizes as a reduction with many partial sums (fastmath
    permits the reassociation): as accurate as BLAS, and a head is a small part of a step.
    """
    outer = max(m[M_H], 1)   # frames of (..., in): the weights apply to each of the frame's `outer` vectors
    _dense_rows(X.reshape((X.shape[0] * outer, m[M_IN] // outer)), Y.reshape((Y.shape[0] * outer, m[M_OUT] // outer)),
                P, m)


@jit
def _dense_rows(X, Y, P, m):
    """Y (rows, out) = X (rows, in) @ W^T + b, accumulated in float64 (see dense_step)."""
    nin, nout = X.shape[1], Y.shape[1]
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
        epilogue(y, P, m)


def dense_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): the rows of every frame straight to _dense_rows,
    shaped by the carrays (no reshape in the loop's way)."""
    m = carray(meta, (meta[M_LEN],))
    outer = max(m[M_H], 1)
    _dense_rows(carray(x, (n * outer, m[M_IN] // outer)), carray(y, (n * outer, m[M_OUT] // outer)),
                carray(p, (m[M_PLEN],)), m)
