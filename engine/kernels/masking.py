"""Masking as Keras defines it: a timestep whose features all equal the mask value is skipped by the recurrent
layers after it (their state is left as it was, and they output what they output the step before).

``mask_step`` is the Masking node's kernel: one value per row, 1 to keep the timestep and 0 to skip it.
``mask_keep`` / ``mask_restore`` wrap a recurrent cell's step (each cell's ``*_masked_step``): the state rows of
skipped rows are kept in scratch past the cell's own (meta[M_STATE] floats per row after n * meta[M_SCRATCH]),
the cell steps every row, and the skipped rows get their state back and output the h slot (the previous output).
"""

from numba import carray

from ..config import jit
from .layout import M_IN, M_LEN, M_OUT, M_PLEN, M_SCRATCH, M_STATE


@jit
def mask_step(X, Y, P, S, SC, m):
    """Y[r, 0] = 1 if any of X[r] differs from the mask value params[0], else 0."""
    v = P[0]
    for r in range(X.shape[0]):
        keep = 0.0
        for j in range(X.shape[1]):
            if X[r, j] != v:
                keep = 1.0
        Y[r, 0] = keep


@jit(inline="always")
def mask_keep(M, S, SC, m):
    n, st = S.shape[0], m[M_STATE]
    base = n * m[M_SCRATCH]
    for r in range(n):
        if M[r, 0] == 0:
            for j in range(st):
                SC[base + r * st + j] = S[r, j]


@jit(inline="always")
def mask_restore(M, S, Y, SC, m):
    n, st, ho = S.shape[0], m[M_STATE], Y.shape[1]
    base = n * m[M_SCRATCH]
    for r in range(n):
        if M[r, 0] == 0:
            for j in range(st):
                S[r, j] = SC[base + r * st + j]
            for j in range(ho):
                Y[r, j] = S[r, j]


def mask_entry(x, y, p, s, sc, meta, n):
    """The C entry point of the Masking node: mask_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    mask_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
              carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)
