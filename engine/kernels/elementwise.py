"""Elementwise binary kernels (Add, Sub, Mul, Div, Max, Min) over two frames, with numpy broadcasting.

Layout (engine/layers/elementwise.py packs it): meta[M_CODE] is the operation (OPS below), meta[M_IN] and
meta[M_H] the element counts of the two inputs' frames, meta[M_OUT] the output's. When the two frames have
the output's shape, meta[M_FLAGS] is 0 and element j reads element j of both. Otherwise (broadcasting)
meta[M_FLAGS] is F_BROADCAST and meta holds, from META_LEN on, for every output element the index it reads
in the first frame, then the index it reads in the second.
"""

import numpy as np
from numba import carray

from ..config import jit
from .layout import M_CODE, M_FLAGS, M_H, M_IN, M_LEN, M_OUT, M_PLEN, M_SCRATCH, M_STATE, META_LEN

ADD, SUB, MUL, DIV, MAX, MIN = range(6)
OPS = {"add": ADD, "sub": SUB, "mul": MUL, "div": DIV, "max": MAX, "min": MIN}
F_BROADCAST = 1


@jit(inline="always")
def _apply(op, a, b):
    if op == ADD:
        return a + b
    if op == SUB:
        return a - b
    if op == MUL:
        return a * b
    if op == DIV:
        return a / b
    if op == MAX:
        return a if a >= b else b   # np.maximum's NaN rule does not matter: fast-math assumes no NaN
    return a if a <= b else b


@jit
def elementwise_step(A, B, Y, P, S, SC, m):
    """Y (n, out) = op(A (n, a), B (n, b)) elementwise, broadcasting as meta says."""
    op, nout = m[M_CODE], m[M_OUT]
    if m[M_FLAGS] & F_BROADCAST:
        ia = m[META_LEN:META_LEN + nout]
        ib = m[META_LEN + nout:META_LEN + 2 * nout]
        for r in range(Y.shape[0]):
            for j in range(nout):
                Y[r, j] = _apply(op, A[r, ia[j]], B[r, ib[j]])
    else:
        for r in range(Y.shape[0]):
            for j in range(nout):
                Y[r, j] = _apply(op, A[r, j], B[r, j])


def elementwise_entry(a, b, y, p, s, sc, meta, n):
    """The C entry point of a two-input kind (engine.kernels.entry.compile_entry, arity 2) over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    elementwise_step(carray(a, (n, m[M_IN])), carray(b, (n, m[M_H])), carray(y, (n, m[M_OUT])),
                     carray(p, (m[M_PLEN],)), carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)


# numpy's forms, for Model.run over whole sequences (the same IEEE operations, so the same numbers)
NUMPY = {ADD: np.add, SUB: np.subtract, MUL: np.multiply, DIV: np.divide, MAX: np.maximum, MIN: np.minimum}
