"""Shape kernels over frames: every reshape, flatten, transpose, squeeze, slice and pad of a frame is a gather
``y[j] = x[index[j]]`` (or a constant where ``index[j] < 0``), and a concatenation of two frames is a gather
from either. The packers (engine/layers/frame.py) work the index maps out with numpy once; meta holds them from
META_LEN on, meta[M_OUT] long; params[0] is the constant a pad writes.
"""

from numba import carray

from ..config import jit
from .layout import M_H, M_IN, M_LEN, M_OUT, M_PLEN, M_SCRATCH, M_STATE, META_LEN


@jit
def gather_step(X, Y, P, S, SC, m):
    """Y[r, j] = X[r, index[j]], or the constant params[0] where index[j] < 0."""
    nout = m[M_OUT]
    idx = m[META_LEN:META_LEN + nout]
    value = P[0]
    for r in range(X.shape[0]):
        for j in range(nout):
            k = idx[j]
            Y[r, j] = X[r, k] if k >= 0 else value


@jit
def concat_step(A, B, Y, P, S, SC, m):
    """Y[r, j] = A[r, index[j]] for index[j] < len(A's frame), else B[r, index[j] - that length]."""
    nout, na = m[M_OUT], m[M_IN]
    idx = m[META_LEN:META_LEN + nout]
    for r in range(Y.shape[0]):
        for j in range(nout):
            k = idx[j]
            Y[r, j] = A[r, k] if k < na else B[r, k - na]


def gather_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): gather_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    gather_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
                carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)


def concat_entry(a, b, y, p, s, sc, meta, n):
    """The C entry point of Concat (two inputs; compile_entry with arity 2): concat_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    concat_step(carray(a, (n, m[M_IN])), carray(b, (n, m[M_H])), carray(y, (n, m[M_OUT])),
                carray(p, (m[M_PLEN],)), carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)
