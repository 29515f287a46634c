"""Embedding kernel: integer ids -> rows of a table, for n rows of frames of k ids each.

Layout (engine/layers/embedding.py packs it): params is the (V, D) table; meta[M_IN] is k (ids per frame),
meta[M_H] is V and meta[M_HO] is D; meta[M_OUT] = k * D. The ids were checked against V before the call (the
stream's input checker and Model.run raise on an id out of range); an id out of range that reaches the kernel
anyway writes zeros and reads nothing: the table is never read past its end.
"""

from numba import carray

from ..config import jit
from .layout import M_H, M_HO, M_IN, M_LEN, M_OUT, M_PLEN, M_SCRATCH, M_STATE


@jit
def embedding_step(X, Y, P, S, SC, m):
    """Y (n, k * D) = the table's rows for the ids X (n, k)."""
    k, V, D = m[M_IN], m[M_H], m[M_HO]
    for r in range(X.shape[0]):
        for i in range(k):
            idx = X[r, i]
            if 0 <= idx < V:
                for j in range(D):
                    Y[r, i * D + j] = P[idx * D + j]
            else:
                for j in range(D):
                    Y[r, i * D + j] = 0.0


def embedding_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry, with int64 ids): embedding_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    embedding_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
                   carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)
