"""LSTM: one timestep for n rows (``lstm_step``), whole sequences (``lstm_sequence``) and the
elementwise half of the BLAS path (``lstm_blas_post``).

The design the three cells share is in recurrence.py.
"""

from numba import carray, literally

from ..config import jit
from .activations import apply, sigmoid_nd, tanh_nd
from .layout import (DIR_STRIDE, D_ACT0, D_ACT1, D_ACT2, D_B, D_FLT, D_M, D_PEEP, D_PROJ, F_CLIP, F_FAST,
                     F_INPUT_FORGET, F_PROJ, M_DIR, M_FLAGS, M_H, M_HO, M_IN, M_LEN, M_OUT, M_PLEN, M_SCRATCH,
                     M_STATE, TILE)
from .linalg import _clamp, _copy, _mat, _panels, _rows, gemm_acc
from .masking import mask_keep, mask_restore
from .recurrence import (ANY_ACTIVATIONS, CHUNK, DEFAULT_ACTIVATIONS, _chunk_inputs, _chunk_project, _start,
                         activation_choice)


@jit
def _lstm_row_fast(g, c, hfull, P, m, base):
    """_lstm_row for the default activations (F_FAST)."""
    H = m[M_H]
    for j in range(H):   # each activation a fraction (num / den): Ct and Ht take one division each
        i_n, i_d = sigmoid_nd(g[j])
        f_n, f_d = sigmoid_nd(g[H + j])
        z_n, z_d = tanh_nd(g[2 * H + j])
        o_n, o_d = sigmoid_nd(g[3 * H + j])
        iz_d = i_d * z_d
        ct = (f_n * c[j] * iz_d + i_n * z_n * f_d) / (f_d * iz_d)     # Ct = f . Ct-1 + i . z
        c[j] = ct
        t_n, t_d = tanh_nd(ct)
        hfull[j] = (o_n * t_n) / (o_d * t_d)                          # o . tanh(Ct)


@jit
def _lstm_row(g, c, hfull, P, m, base):
    """One row's cell update from gate pre-activations g (4H,) = [i f g o]; C_t in c, o*h(C_t) in hfull."""
    H = m[M_H]
    flags = m[M_FLAGS]
    if flags & F_FAST:
        _lstm_row_fast(g, c, hfull, P, m, base)
        return
    peep = _mat(P, m[base + D_PEEP], 3, H)  # (3, H): i, f, o
    flt = P[m[base + D_FLT]:m[base + D_FLT] + 7]
    clip = flt[0]
    has_clip = (flags & F_CLIP) != 0
    fc, gc, hc = m[base + D_ACT0], m[base + D_ACT1], m[base + D_ACT2]
    for j in range(H):
        c_prev = c[j]
        gi = g[j] + peep[0, j] * c_prev          # it = f(Xt Wi + Ht-1 Ri + Pi . Ct-1 + Wbi + Rbi)
        gf = g[H + j] + peep[1, j] * c_prev      # ft = f(Xt Wf + Ht-1 Rf + Pf . Ct-1 + Wbf + Rbf)
        gz = g[2 * H + j]                        # ct = g(Xt Wc + Ht-1 Rc + Wbc + Rbc)
        if has_clip:
            gi = _clamp(gi, clip)
            gf = _clamp(gf, clip)
            gz = _clamp(gz, clip)
        i = apply(fc, flt[1], flt[2], gi)
        if flags & F_INPUT_FORGET:
            f = 1 - i                            # coupled input and forget gates
        else:
            f = apply(fc, flt[1], flt[2], gf)
        z = apply(gc, flt[3], flt[4], gz)
        ct = f * c_prev + i * z                  # Ct = ft . Ct-1 + it . ct
        go = g[3 * H + j] + peep[2, j] * ct      # ot = f(Xt Wo + Ht-1 Ro + Po . Ct + Wbo + Rbo)
        if has_clip:
            go = _clamp(go, clip)
        o = apply(fc, flt[1], flt[2], go)
        c[j] = ct
        hfull[j] = o * apply(hc, flt[5], flt[6], ct)  # Ht = ot . h(Ct)


_lstm_cell = activation_choice(_lstm_row_fast, _lstm_row, 6)


@jit
def lstm_step(X, Y, P, S, SC, m):
    """One timestep for n rows. X (n, I), Y (n, H_out) out; S (n, H_out + H) = [h | c] updated in place.

    Scratch regions: XH (n, I + H_out) = [x_t | h_t-1], G (n, 4H), HF (n, H), PART (n, max(TILE, 4H)).
    """
    _lstm_step(X, Y, P, S, SC, m, ANY_ACTIVATIONS)


@jit
def lstm_fast_step(X, Y, P, S, SC, m):
    """lstm_step for a layer with the default activations (F_FAST): its compiled code holds no other."""
    _lstm_step(X, Y, P, S, SC, m, DEFAULT_ACTIVATIONS)


@jit
def _lstm_step(X, Y, P, S, SC, m, ACT):
    literally(ACT)
    I, H, Ho = m[M_IN], m[M_H], m[M_HO]
    n = X.shape[0]
    K = I + Ho
    base = M_DIR
    M = _panels(P, m[base + D_M], K, 4 * H)
    bias = P[m[base + D_B]:m[base + D_B] + 4 * H]
    XH = _rows(SC, 0, n, K)
    G = _rows(SC, n * K, n, 4 * H)
    HF = _rows(SC, n * (K + 4 * H), n, H)
    PART = _rows(SC, n * (K + 5 * H), n, max(TILE, 4 * H))
    for r in range(n):
        _copy(XH[r], X[r])
        _copy(XH[r, I:], S[r, :Ho])
        _copy(G[r], bias)
    gemm_acc(G, XH, M, 0, 4 * H, PART)           # G = b + [x h] [W^T; R^T]
    for r in range(n):
        _lstm_cell(ACT, G[r], S[r, Ho:Ho + H], HF[r], P, m, base)
    if m[M_FLAGS] & F_PROJ:
        for r in range(n):
            for j in range(Ho):
                Y[r, j] = 0
        gemm_acc(Y, HF, _panels(P, m[base + D_PROJ], H, Ho), 0, Ho, PART)   # h = (o . h(C)) W_hr^T
    else:
        for r in range(n):
            _copy(Y[r], HF[r])
    for r in range(n):
        _copy(S[r, :Ho], Y[r])


@jit
def lstm_sequence(SEQ, P, m, d, H0, C0, Y, lengths, reverse, HT, CT, work):
    """Recurrence over whole sequences for direction d.

    SEQ (T, B, I) inputs. H0/C0 (B, H_out)/(B, H) initial states. Y (T, B, H_out) out (rows past a
    sequence's length are left as they are: zeros from the caller). HT/CT (B, ..) final states out.
    ``reverse`` runs each sequence from its own last valid step backwards. work: flat scratch of
    ``lstm_work_size(...)`` floats.

    The input projections x_t W^T + b are made CHUNK steps at a time into a small buffer (one weight pass
    for six rows), not for all T up front: a (T, B, 4H) array would cost its page faults on every call
    and, for a long recording, gigabytes.
    """
    I, H, Ho = m[M_IN], m[M_H], m[M_HO]
    base = M_DIR + d * DIR_STRIDE
    M = _panels(P, m[base + D_M], I + Ho, 4 * H)     # [W^T; R^T]: x rows, then h rows from row I
    bias = P[m[base + D_B]:m[base + D_B] + 4 * H]
    B = SEQ.shape[1]
    G = _rows(work, 0, B, 4 * H)
    HF = _rows(work, B * 4 * H, B, H)
    PROJ = _rows(work, B * 5 * H, B, Ho)
    o = B * (5 * H + Ho)
    XC = _rows(work, o, CHUNK * B, I)
    GC = _rows(work, o + CHUNK * B * I, CHUNK * B, 4 * H)
    PART = _rows(work, o + CHUNK * B * (I + 4 * H), max(B, CHUNK), max(TILE, 4 * H))
    projected = (m[M_FLAGS] & F_PROJ) != 0
    longest = _start(HT, H0, lengths)
    _start(CT, C0, lengths)
    for s in range(longest):
        c = s % CHUNK
        if c == 0:
            _chunk_inputs(XC, SEQ, lengths, s, reverse)
            _chunk_project(GC, XC, M, 4 * H, bias, PART)
        for b in range(B):
            _copy(G[b], GC[c * B + b])
        gemm_acc(G, HT, M, I, 4 * H, PART)
        for b in range(B):
            if s < lengths[b]:
                _lstm_row(G[b], CT[b], HF[b], P, m, base)
        if projected:
            for b in range(B):
                for j in range(Ho):
                    PROJ[b, j] = 0
            gemm_acc(PROJ, HF, _panels(P, m[base + D_PROJ], H, Ho), 0, Ho, PART)
        for b in range(B):
            L = lengths[b]
            if s < L:
                _copy(HT[b], PROJ[b] if projected else HF[b])
                _copy(Y[L - 1 - s if reverse else s, b], HT[b])


@jit
def lstm_blas_post(G, bias, P, m, d, CT, HF, HT, Y, lengths, s, reverse, projected):
    """Timestep s of lstm_sequence after G = [x_t, H_t-1] [W^T; R^T] was computed by BLAS: add b, update the
    cells, and (unless ``projected``: then the caller projects HF and calls seq_blas_store) write H_t and Y."""
    base = M_DIR + d * DIR_STRIDE
    for b in range(G.shape[0]):
        L = lengths[b]
        if s < L:
            t = L - 1 - s if reverse else s
            g = G[b]
            for j in range(g.shape[0]):
                g[j] += bias[j]
            _lstm_row(g, CT[b], HF[b], P, m, base)
            if not projected:
                _copy(HT[b], HF[b])
                _copy(Y[t, b], HT[b])


def lstm_work_size(B, I, H, Ho):
    """Floats of scratch lstm_sequence needs for B sequences: G (B, 4H), HF (B, H), PROJ (B, H_out), the chunk's
    inputs XC (CHUNK * B, I) and projections GC (CHUNK * B, 4H), PART (max(B, CHUNK), max(TILE, 4H))."""
    return B * (5 * H + Ho) + CHUNK * B * (I + 4 * H) + max(B, CHUNK) * max(TILE, 4 * H)


def lstm_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): lstm_step over raw pointers (calling
    ``_lstm_step`` itself: each level of calls is one more LLVM pass over everything below it)."""
    m = carray(meta, (meta[M_LEN],))
    _lstm_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
               carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m, ANY_ACTIVATIONS)


def lstm_fast_entry(x, y, p, s, sc, meta, n):
    """The C entry point of an LSTM with the default activations: lstm_fast_step over raw pointers
    (calling ``_lstm_step`` itself, as lstm_entry does)."""
    m = carray(meta, (meta[M_LEN],))
    _lstm_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
               carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m, DEFAULT_ACTIVATIONS)


lstm_entry.generic = True   # see entry._name


@jit
def lstm_masked_step(X, M, Y, P, S, SC, m):
    """lstm_step for the rows M keeps (M[r, 0] != 0); the others keep their state and output their previous
    output (Keras's masking; kernels/masking.py). SC holds n * meta[M_STATE] floats past the cell's scratch."""
    mask_keep(M, S, SC, m)
    lstm_step(X, Y, P, S, SC, m)
    mask_restore(M, S, Y, SC, m)


def lstm_masked_entry(x, mk, y, p, s, sc, meta, n):
    """The C entry point of a masked LSTM node (compile_entry, arity 2): lstm_masked_step."""
    m = carray(meta, (meta[M_LEN],))
    lstm_masked_step(carray(x, (n, m[M_IN])), carray(mk, (n, 1)), carray(y, (n, m[M_OUT])),
                     carray(p, (m[M_PLEN],)), carray(s, (n, m[M_STATE])),
                     carray(sc, (n * (m[M_SCRATCH] + m[M_STATE]),)), m)
