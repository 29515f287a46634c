"""Dense (fully connected) layer kernel: Y = X W^T + b for n rows."""

import numpy as np
from numba import carray

from ..config import jit
from .layout import D_BIAS, D_W, M_DIR, M_H, M_IN, M_LEN, M_OUT, M_PLEN, M_SCRATCH, M_STATE


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
    nin, nout = m[M_IN] // outer, m[M_OUT] // outer
    ow = m[M_DIR + D_W]
    ob = m[M_DIR + D_BIAS]
    W = P[ow:ow + nin * nout].reshape((nout, nin))
    X = X.reshape((X.shape[0] * outer, nin))
    Y = Y.reshape((Y.shape[0] * outer, nout))
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


def dense_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): dense_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    dense_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
               carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)
