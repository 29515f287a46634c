"""GRU: one timestep for n rows (``gru_step``), whole sequences (``gru_sequence``) and the elementwise
parts of the BLAS path (``gru_blas_gates``, ``gru_blas_finish``).

The design the three cells share is in recurrence.py.
"""

from numba import carray, literally

from ..config import jit
from .activations import apply, sigmoid_, tanh_
from .layout import (DIR_STRIDE, D_ACT0, D_ACT1, D_B, D_BHN, D_BXN, D_FLT, D_M, D_RHN, D_WXN,
                     F_CLIP, F_FAST, F_LBR, M_DIR, M_FLAGS, M_H, M_IN, M_LEN, M_OUT,
                     M_PLEN, M_SCRATCH, M_STATE, TILE)
from .linalg import _clamp, _copy, _panels, _rows, gemm_acc
from .masking import mask_keep, mask_restore
from .recurrence import (ANY_ACTIVATIONS, CHUNK, DEFAULT_ACTIVATIONS, _chunk_inputs, _chunk_project, _start,
                         activation_choice)


@jit
def _gru_gates_fast(grz, h, rh, P, m, base):
    """_gru_gates for the default activations (F_FAST)."""
    H = m[M_H]
    for j in range(2 * H):
        grz[j] = sigmoid_(grz[j])
    if not m[M_FLAGS] & F_LBR:
        for j in range(H):
            rh[j] = grz[j] * h[j]


@jit
def _gru_gates(grz, h, rh, P, m, base):
    """r, z = f([r z] pre-activations) in place; for linear_before_reset=0 also rh = r . H_t-1."""
    H = m[M_H]
    flags = m[M_FLAGS]
    if flags & F_FAST:
        _gru_gates_fast(grz, h, rh, P, m, base)
        return
    flt = P[m[base + D_FLT]:m[base + D_FLT] + 7]
    has_clip = (flags & F_CLIP) != 0
    fc = m[base + D_ACT0]
    for j in range(2 * H):
        v = _clamp(grz[j], flt[0]) if has_clip else grz[j]
        grz[j] = apply(fc, flt[1], flt[2], v)
    if not flags & F_LBR:
        for j in range(H):
            rh[j] = grz[j] * h[j]


@jit
def _gru_finish_fast(grz, gxn, ghn, h, P, m, base):
    """_gru_finish for the default activations (F_FAST)."""
    H = m[M_H]
    lbr = (m[M_FLAGS] & F_LBR) != 0
    for j in range(H):
        pre = gxn[j] + grz[j] * ghn[j] if lbr else gxn[j] + ghn[j]
        nt = tanh_(pre)
        h[j] = nt + grz[H + j] * (h[j] - nt)


@jit
def _gru_finish(grz, gxn, ghn, h, P, m, base):
    """H_t into h (in place), from r, z (grz), gxn = X_t W_n^T + Wb_n and ghn:

      linear_before_reset=1: ghn = H_t-1 R_n^T + Rb_n;       n = g(gxn + r . ghn)
      linear_before_reset=0: ghn = (r . H_t-1) R_n^T + Rb_n; n = g(gxn + ghn)
      H_t = (1 - z) . n + z . H_t-1
    """
    H = m[M_H]
    flags = m[M_FLAGS]
    lbr = (flags & F_LBR) != 0
    if flags & F_FAST:
        _gru_finish_fast(grz, gxn, ghn, h, P, m, base)
        return
    flt = P[m[base + D_FLT]:m[base + D_FLT] + 7]
    has_clip = (flags & F_CLIP) != 0
    gc = m[base + D_ACT1]
    for j in range(H):
        pre = gxn[j] + grz[j] * ghn[j] if lbr else gxn[j] + ghn[j]
        v = _clamp(pre, flt[0]) if has_clip else pre
        nt = apply(gc, flt[3], flt[4], v)
        h[j] = nt + grz[H + j] * (h[j] - nt)


@jit
def _gru_candidate(GHN, HS, RH, P, m, base, rows_bhn, PART):
    """GHN = Rb_n + (H_t-1 or r . H_t-1) R_n^T for every row."""
    H = m[M_H]
    n = GHN.shape[0]
    for r in range(n):
        _copy(GHN[r], rows_bhn)
    Rn = _panels(P, m[base + D_RHN], H, H)
    if m[M_FLAGS] & F_LBR:
        gemm_acc(GHN, HS, Rn, 0, H, PART)
    else:
        gemm_acc(GHN, RH, Rn, 0, H, PART)


_gru_gates_for = activation_choice(_gru_gates_fast, _gru_gates, 6)
_gru_finish_for = activation_choice(_gru_finish_fast, _gru_finish, 7)


@jit
def gru_step(X, Y, P, S, SC, m):
    """One timestep for n rows. X (n, I), Y (n, H) out; S (n, H) = h, updated in place.

    Scratch regions: XH (n, I + H), GRZ (n, 2H), GXN, GHN, RH (n, H each), PART (n, max(TILE, 2H)).
    """
    _gru_step(X, Y, P, S, SC, m, ANY_ACTIVATIONS)


@jit
def gru_fast_step(X, Y, P, S, SC, m):
    """gru_step for a layer with the default activations (F_FAST): its compiled code holds no other."""
    _gru_step(X, Y, P, S, SC, m, DEFAULT_ACTIVATIONS)


@jit
def _gru_step(X, Y, P, S, SC, m, ACT):
    literally(ACT)
    I, H = m[M_IN], m[M_H]
    n = X.shape[0]
    K = I + H
    base = M_DIR
    M = _panels(P, m[base + D_M], K, 2 * H)
    Wn = _panels(P, m[base + D_WXN], I, H)
    bias = P[m[base + D_B]:m[base + D_B] + 2 * H]
    bxn = P[m[base + D_BXN]:m[base + D_BXN] + H]
    bhn = P[m[base + D_BHN]:m[base + D_BHN] + H]
    XH = _rows(SC, 0, n, K)
    GRZ = _rows(SC, n * K, n, 2 * H)
    GXN = _rows(SC, n * (K + 2 * H), n, H)
    GHN = _rows(SC, n * (K + 3 * H), n, H)
    RH = _rows(SC, n * (K + 4 * H), n, H)
    PART = _rows(SC, n * (K + 5 * H), n, max(TILE, 2 * H))
    for r in range(n):
        _copy(XH[r], X[r])
        _copy(XH[r, I:], S[r])
        _copy(GRZ[r], bias)
        _copy(GXN[r], bxn)
    gemm_acc(GRZ, XH, M, 0, 2 * H, PART)         # [r z] = b + [x h] [W_rz^T; R_rz^T]
    gemm_acc(GXN, X, Wn, 0, H, PART)             # x W_n^T + Wb_n
    for r in range(n):
        _gru_gates_for(ACT, GRZ[r], S[r], RH[r], P, m, base)
    _gru_candidate(GHN, S, RH, P, m, base, bhn, PART)
    for r in range(n):
        _gru_finish_for(ACT, GRZ[r], GXN[r], GHN[r], S[r], P, m, base)
        _copy(Y[r], S[r])


@jit
def gru_sequence(SEQ, P, m, d, H0, Y, lengths, reverse, HT, work):
    """GRU recurrence for direction d; SEQ (T, B, I). work: ``gru_work_size(...)`` floats. The
    input projections x W_rz^T + b_rz and x W_n^T + Wb_n are made CHUNK steps at a time (see lstm_sequence).
    Other arguments as in lstm_sequence."""
    I, H = m[M_IN], m[M_H]
    base = M_DIR + d * DIR_STRIDE
    M = _panels(P, m[base + D_M], I + H, 2 * H)      # [W_rz^T; R_rz^T]: h rows from row I
    Wn = _panels(P, m[base + D_WXN], I, H)
    bias = P[m[base + D_B]:m[base + D_B] + 2 * H]
    bxn = P[m[base + D_BXN]:m[base + D_BXN] + H]
    bhn = P[m[base + D_BHN]:m[base + D_BHN] + H]
    B = SEQ.shape[1]
    GRZ = _rows(work, 0, B, 2 * H)
    GXN = _rows(work, B * 2 * H, B, H)
    GHN = _rows(work, B * 3 * H, B, H)
    RH = _rows(work, B * 4 * H, B, H)
    o = B * 5 * H
    XC = _rows(work, o, CHUNK * B, I)
    GC = _rows(work, o + CHUNK * B * I, CHUNK * B, 2 * H)
    NC = _rows(work, o + CHUNK * B * (I + 2 * H), CHUNK * B, H)
    PART = _rows(work, o + CHUNK * B * (I + 3 * H), max(B, CHUNK), max(TILE, 2 * H))
    for s in range(_start(HT, H0, lengths)):
        c = s % CHUNK
        if c == 0:
            _chunk_inputs(XC, SEQ, lengths, s, reverse)
            _chunk_project(GC, XC, M, 2 * H, bias, PART)
            _chunk_project(NC, XC, Wn, H, bxn, PART)
        for b in range(B):
            _copy(GRZ[b], GC[c * B + b])
            _copy(GXN[b], NC[c * B + b])
        gemm_acc(GRZ, HT, M, I, 2 * H, PART)
        for b in range(B):
            if s < lengths[b]:
                _gru_gates(GRZ[b], HT[b], RH[b], P, m, base)
        _gru_candidate(GHN, HT, RH, P, m, base, bhn, PART)
        for b in range(B):
            L = lengths[b]
            if s < L:
                _gru_finish(GRZ[b], GXN[b], GHN[b], HT[b], P, m, base)
                _copy(Y[L - 1 - s if reverse else s, b], HT[b])


@jit
def gru_blas_gates(GRZ, bias, HT, RH, P, m, d, lengths, s, reverse):
    """Timestep s of gru_sequence after GRZ = [x_t, H_t-1] [W_rz^T; R_rz^T] (BLAS): add b_rz, then r and z."""
    base = M_DIR + d * DIR_STRIDE
    for b in range(GRZ.shape[0]):
        if s < lengths[b]:
            g = GRZ[b]
            for j in range(g.shape[0]):
                g[j] += bias[j]
            _gru_gates(g, HT[b], RH[b], P, m, base)


@jit
def gru_blas_finish(GRZ, GXN, GHN, HT, Y, P, m, d, lengths, s, reverse):
    """... after GXN = x_t W_n^T and GHN = (H_t-1 or r . H_t-1) R_n^T (BLAS): add Wb_n and Rb_n, then H_t into
    HT and Y."""
    H = m[M_H]
    base = M_DIR + d * DIR_STRIDE
    bxn = P[m[base + D_BXN]:m[base + D_BXN] + H]
    bhn = P[m[base + D_BHN]:m[base + D_BHN] + H]
    for b in range(GRZ.shape[0]):
        L = lengths[b]
        if s < L:
            t = L - 1 - s if reverse else s
            gxn, ghn = GXN[b], GHN[b]
            for j in range(H):
                gxn[j] += bxn[j]
                ghn[j] += bhn[j]
            _gru_finish(GRZ[b], gxn, ghn, HT[b], P, m, base)
            _copy(Y[t, b], HT[b])


def gru_work_size(B, I, H, Ho):
    """Floats of scratch gru_sequence needs for B sequences: its per-step regions (B * 5H), the chunk's inputs
    XC (CHUNK * B, I) and projections GC (CHUNK * B, 3H), PART (max(B, CHUNK), max(TILE, 2H))."""
    return B * 5 * H + CHUNK * B * (I + 3 * H) + max(B, CHUNK) * max(TILE, 2 * H)


def gru_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): gru_step over raw pointers (calling
    ``_gru_step`` itself: each level of calls is one more LLVM pass over everything below it)."""
    m = carray(meta, (meta[M_LEN],))
    _gru_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
              carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m, ANY_ACTIVATIONS)


def gru_fast_entry(x, y, p, s, sc, meta, n):
    """The C entry point of a GRU with the default activations: gru_fast_step over raw pointers
    (calling ``_gru_step`` itself, as gru_entry does)."""
    m = carray(meta, (meta[M_LEN],))
    _gru_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
              carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m, DEFAULT_ACTIVATIONS)


gru_entry.generic = True   # see entry._name


@jit
def gru_masked_step(X, M, Y, P, S, SC, m):
    """gru_step for the rows M keeps (M[r, 0] != 0); the others keep their state and output their previous
    output (Keras's masking; kernels/masking.py). SC holds n * meta[M_STATE] floats past the cell's scratch."""
    mask_keep(M, S, SC, m)
    gru_step(X, Y, P, S, SC, m)
    mask_restore(M, S, Y, SC, m)


def gru_masked_entry(x, mk, y, p, s, sc, meta, n):
    """The C entry point of a masked GRU node (compile_entry, arity 2): gru_masked_step."""
    m = carray(meta, (meta[M_LEN],))
    gru_masked_step(carray(x, (n, m[M_IN])), carray(mk, (n, 1)), carray(y, (n, m[M_OUT])),
                    carray(p, (m[M_PLEN],)), carray(s, (n, m[M_STATE])),
                    carray(sc, (n * (m[M_SCRATCH] + m[M_STATE]),)), m)
