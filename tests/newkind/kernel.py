"""The kernels of the test-only Scale kind (tests/test_layers.py): y = x * s per feature."""

from numba import carray

from engine.config import jit
from engine.kernels.layout import M_IN, M_LEN, M_OUT, M_PLEN, M_SCRATCH, M_STATE


@jit
def scale_step(X, Y, P, S, SC, m):
    """Y = X * s for n rows; s is params[0:F]."""
    for r in range(X.shape[0]):
        for j in range(m[M_IN]):
            Y[r, j] = X[r, j] * P[j]


def scale_entry(x, y, p, s, sc, meta, n):
    m = carray(meta, (meta[M_LEN],))
    scale_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
               carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)
