"""Normalize layer kernel: Y = (X - mean) * scale per feature."""

from numba import carray

from ..config import jit
from .layout import D_MEAN, D_SCALE, M_DIR, M_IN, M_LEN, M_OUT, M_PLEN, M_SCRATCH, M_STATE


@jit
def normalize_step(X, Y, P, S, SC, m):
    """Y = (X - mean) * scale per feature."""
    F = m[M_IN]
    om, osc = m[M_DIR + D_MEAN], m[M_DIR + D_SCALE]
    for r in range(X.shape[0]):
        for j in range(F):
            Y[r, j] = (X[r, j] - P[om + j]) * P[osc + j]


def normalize_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): normalize_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    normalize_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
                   carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)
