"""Vanilla RNN: one timestep for n rows (``rnn_step``), whole sequences (``rnn_sequence``) and the
elementwise part of the BLAS path (``rnn_blas_post``).

The design the three cells share is in recurrence.py.
"""

from numba import carray, literally

from ..config import jit
from .activations import TANH, apply, tanh_
from .layout import (DIR_STRIDE, D_ACT0, D_B, D_FLT, D_M, F_CLIP, F_FAST, M_DIR, M_FLAGS, M_H, M_IN, M_LEN, M_OUT,
                     M_PLEN, M_SCRATCH, M_STATE, TILE)
from .linalg import _clamp, _copy, _panels, _rows, gemm_acc
from .masking import mask_keep, mask_restore
from .recurrence import (ANY_ACTIVATIONS, CHUNK, DEFAULT_ACTIVATIONS, _chunk_inputs, _chunk_project, _start,
                         activation_choice)


@jit
def _rnn_row_fast(g, h, P, m, base):
    """_rnn_row for tanh or relu (F_FAST)."""
    H = m[M_H]
    if m[base + D_ACT0] == TANH:
        for j in range(H):
            h[j] = tanh_(g[j])
    else:  # relu
        for j in range(H):
            v = g[j]
            h[j] = v if v > 0 else v - v


@jit
def _rnn_row(g, h, P, m, base):
    """h (H,) out = f(g) for pre-activations g (H,): Ht = f(Xt Wi + Ht-1 Ri + Wbi + Rbi)."""
    H = m[M_H]
    flags = m[M_FLAGS]
    code = m[base + D_ACT0]
    if flags & F_FAST:
        _rnn_row_fast(g, h, P, m, base)
        return
    flt = P[m[base + D_FLT]:m[base + D_FLT] + 7]
    has_clip = (flags & F_CLIP) != 0
    for j in range(H):
        v = _clamp(g[j], flt[0]) if has_clip else g[j]
        h[j] = apply(code, flt[1], flt[2], v)


_rnn_cell = activation_choice(_rnn_row_fast, _rnn_row, 5)


@jit
def rnn_step(X, Y, P, S, SC, m):
    """One timestep for n rows. X (n, I), Y (n, H) out; S (n, H) = h, updated in place.

    Scratch regions: XH (n, I + H), G (n, H), PART (n, max(TILE, H)).
    """
    _rnn_step(X, Y, P, S, SC, m, ANY_ACTIVATIONS)


@jit
def rnn_fast_step(X, Y, P, S, SC, m):
    """rnn_step for a layer with tanh or relu (F_FAST): its compiled code holds no other activation."""
    _rnn_step(X, Y, P, S, SC, m, DEFAULT_ACTIVATIONS)


@jit
def _rnn_step(X, Y, P, S, SC, m, ACT):
    literally(ACT)
    I, H = m[M_IN], m[M_H]
    n = X.shape[0]
    K = I + H
    base = M_DIR
    M = _panels(P, m[base + D_M], K, H)
    bias = P[m[base + D_B]:m[base + D_B] + H]
    XH = _rows(SC, 0, n, K)
    G = _rows(SC, n * K, n, H)
    PART = _rows(SC, n * (K + H), n, max(TILE, H))
    for r in range(n):
        _copy(XH[r], X[r])
        _copy(XH[r, I:], S[r])
        _copy(G[r], bias)
    gemm_acc(G, XH, M, 0, H, PART)
    for r in range(n):
        _rnn_cell(ACT, G[r], S[r], P, m, base)
        _copy(Y[r], S[r])


@jit
def rnn_sequence(SEQ, P, m, d, H0, Y, lengths, reverse, HT, work):
    """RNN recurrence for direction d; SEQ (T, B, I). work: ``rnn_work_size(...)`` floats. Input
    projections CHUNK steps at a time (see lstm_sequence)."""
    I, H = m[M_IN], m[M_H]
    base = M_DIR + d * DIR_STRIDE
    M = _panels(P, m[base + D_M], I + H, H)          # [W^T; R^T]: h rows from row I
    bias = P[m[base + D_B]:m[base + D_B] + H]
    B = SEQ.shape[1]
    G = _rows(work, 0, B, H)
    o = B * H
    XC = _rows(work, o, CHUNK * B, I)
    GC = _rows(work, o + CHUNK * B * I, CHUNK * B, H)
    PART = _rows(work, o + CHUNK * B * (I + H), max(B, CHUNK), max(TILE, H))
    for s in range(_start(HT, H0, lengths)):
        c = s % CHUNK
        if c == 0:
            _chunk_inputs(XC, SEQ, lengths, s, reverse)
            _chunk_project(GC, XC, M, H, bias, PART)
        for b in range(B):
            _copy(G[b], GC[c * B + b])
        gemm_acc(G, HT, M, I, H, PART)
        for b in range(B):
            L = lengths[b]
            if s < L:
                _rnn_row(G[b], HT[b], P, m, base)
                _copy(Y[L - 1 - s if reverse else s, b], HT[b])


@jit
def rnn_blas_post(G, bias, P, m, d, HT, Y, lengths, s, reverse):
    """Timestep s of rnn_sequence after G = [x_t, H_t-1] [W^T; R^T] (BLAS): add b, then H_t into HT and Y."""
    base = M_DIR + d * DIR_STRIDE
    for b in range(G.shape[0]):
        L = lengths[b]
        if s < L:
            t = L - 1 - s if reverse else s
            g = G[b]
            for j in range(g.shape[0]):
                g[j] += bias[j]
            _rnn_row(g, HT[b], P, m, base)
            _copy(Y[t, b], HT[b])


def rnn_work_size(B, I, H, Ho):
    """Floats of scratch rnn_sequence needs for B sequences: G (B, H), the chunk's inputs XC (CHUNK * B, I) and
    projections GC (CHUNK * B, H), PART (max(B, CHUNK), max(TILE, H))."""
    return B * H + CHUNK * B * (I + H) + max(B, CHUNK) * max(TILE, H)


def rnn_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): rnn_step over raw pointers (calling
    ``_rnn_step`` itself: each level of calls is one more LLVM pass over everything below it)."""
    m = carray(meta, (meta[M_LEN],))
    _rnn_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
              carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m, ANY_ACTIVATIONS)


def rnn_fast_entry(x, y, p, s, sc, meta, n):
    """The C entry point of an RNN with the default activations: rnn_fast_step over raw pointers
    (calling ``_rnn_step`` itself, as rnn_entry does)."""
    m = carray(meta, (meta[M_LEN],))
    _rnn_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
              carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m, DEFAULT_ACTIVATIONS)


rnn_entry.generic = True   # see entry._name


@jit
def rnn_masked_step(X, M, Y, P, S, SC, m):
    """rnn_step for the rows M keeps (M[r, 0] != 0); the others keep their state and output their previous
    output (Keras's masking; kernels/masking.py). SC holds n * meta[M_STATE] floats past the cell's scratch."""
    mask_keep(M, S, SC, m)
    rnn_step(X, Y, P, S, SC, m)
    mask_restore(M, S, Y, SC, m)


def rnn_masked_entry(x, mk, y, p, s, sc, meta, n):
    """The C entry point of a masked RNN node (compile_entry, arity 2): rnn_masked_step."""
    m = carray(meta, (meta[M_LEN],))
    rnn_masked_step(carray(x, (n, m[M_IN])), carray(mk, (n, 1)), carray(y, (n, m[M_OUT])),
                    carray(p, (m[M_PLEN],)), carray(s, (n, m[M_STATE])),
                    carray(sc, (n * (m[M_SCRATCH] + m[M_STATE]),)), m)
