"""Pooling along time (engine/layers/temporal_pool.py), one timestep for n rows, elementwise over the frame.

meta: M_IN = M_OUT = F (the frame's size), M_H = kernel, M_HO = dilation, M_STRIDE = stride, M_CODE = the mode
(POOL_MAX: padding never wins; POOL_AVG: padding counts as zeros in a divisor of `kernel`; POOL_AVG_VALID: the
divisor is the number of real frames in the window). State row: the L = (kernel - 1) * dilation past frames
(F each, oldest first), ``seen`` (how many of them are real input, up to L), and, when the node has a Timing, the
phase (input frames until the next output; the output is computed and written only when it is 0).
"""

from numba import carray

from ..config import jit
from .conv import _push
from .layout import M_CODE, M_H, M_HO, M_IN, M_LEN, M_OUT, M_PLEN, M_SCRATCH, M_STATE, M_STRIDE

POOL_MAX, POOL_AVG, POOL_AVG_VALID = 0, 1, 2


@jit
def tpool_step(X, Y, P, S, SC, m):
    F, K, dil, mode = m[M_IN], m[M_H], m[M_HO], m[M_CODE]
    L = (K - 1) * dil
    timed = m[M_STATE] > L * F + 1
    for r in range(X.shape[0]):
        x = X[r]
        y = Y[r]
        s = S[r]
        seen = s[L * F]
        due = True
        if timed:
            phase = s[L * F + 1]
            s[L * F + 1] = m[M_STRIDE] - 1 if phase == 0 else phase - 1
            due = phase == 0
        if due:
            for f in range(F):
                y[f] = x[f]
            real = 1
            for k in range(K - 1):
                back = (K - 1 - k) * dil
                if back > seen:   # the start's padding
                    continue
                real += 1
                src = s[(L - back) * F:(L - back + 1) * F]
                if mode == POOL_MAX:
                    for f in range(F):
                        v = src[f]
                        if v > y[f] or v != v:   # NaN wins, as in torch
                            y[f] = v
                else:
                    for f in range(F):
                        y[f] += src[f]
            if mode != POOL_MAX:
                div = K if mode == POOL_AVG else real
                for f in range(F):
                    y[f] /= div
        _push(s, x, L, F)
        if seen < L:
            s[L * F] = seen + 1


def tpool_entry(x, y, p, s, sc, meta, n):
    """The C entry point: tpool_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    tpool_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
               carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)


@jit
def cumulative_step(X, Y, P, S, SC, m):
    """Y = the mean (M_CODE POOL_AVG) or max (POOL_MAX) of every frame so far, elementwise; S per row: the running
    sum or max (F) and the number of frames seen (1)."""
    F, mode = m[M_IN], m[M_CODE]
    for r in range(X.shape[0]):
        x = X[r]
        y = Y[r]
        s = S[r]
        n = s[F] + 1
        s[F] = n
        if mode == POOL_MAX:
            for f in range(F):
                v = x[f]
                if n == 1 or v > s[f] or v != v:
                    s[f] = v
                y[f] = s[f]
        else:
            for f in range(F):
                s[f] += x[f]
                y[f] = s[f] / n


def cumulative_entry(x, y, p, s, sc, meta, n):
    """The C entry point: cumulative_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    cumulative_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
                    carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)
