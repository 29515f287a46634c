"""LSTM, GRU and RNN cell kernels: one timestep for n rows (``*_step``) and whole sequences (``*_sequence``).

Design:
* Gate pre-activations are one accumulation over the packed (I + H_out, G*H) matrix [W^T; R^T]: the loop
  over K is outside (unrolled by 4), the loop over gate units inside is contiguous, so it compiles to
  vertical FMAs with no horizontal sums (PERFORMANCE.md: the row-dot layout was 1.2-1.4x slower).
* Step and sequence share the per-row cell updates (``_lstm_row`` ...), so streaming and batch run the
  same arithmetic. A sequence gets its input projection X @ W^T + b from one BLAS GEMM done by the
  caller (engine/model.py); here only the recurrence runs, one row (sequence) at a time, which makes
  per-row lengths and the reverse direction a matter of indexing.
* Two update paths: ``fast`` (default activations, no clip/peephole/input_forget) is branch-free and
  vectorizes; ``generic`` evaluates any ONNX activation with exact math, element by element.
* Nothing here allocates: every buffer comes from the caller. Symbols follow the ONNX operator docs:
  X_t input, H_t hidden, C_t cell, W/R input/recurrent weights, P peepholes.
"""

from ..config import jit
from .activations import apply, sigmoid_, tanh_
from .layout import (DIR_STRIDE, D_ACT0, D_ACT1, D_ACT2, D_B, D_BHN, D_BXN, D_FLT, D_M, D_PEEP, D_PROJ, D_RHN, D_WXN,
                     F_CLIP, F_FAST, F_INPUT_FORGET, F_LBR, F_PROJ, M_DIR, M_FLAGS, M_H, M_HO, M_IN,
                     M_SCRATCH, M_STATE)


# ------------------------------------------------------------------------------------------------------
# Linear algebra
# ------------------------------------------------------------------------------------------------------

BLOCK = 32  # rows of W per partial sum (see gemv_acc)


@jit
def gemv_acc(g, x, W, part):
    """g (N,) += x (K,) @ W (K, N); part (>= N,) is scratch. K outside, unrolled by 4; N inside, contiguous.

    Blocked accumulation: each block of BLOCK rows is summed into part, then part is added to g, so g sees
    K/BLOCK additions instead of K/4. At fan-in 512 this halves float32 rounding error (measured on
    g2p-en's GRUs: 1.7e-5 -> 1e-5 on logits of ~20, where the package's own BLAS-based float32 has 6e-6);
    accumulating in float64 instead bought nothing more and cost 1.5x in speed.
    """
    K = x.shape[0]
    N = W.shape[1]
    for j in range(N):
        part[j] = 0
    for k0 in range(0, K, BLOCK):
        k1 = min(k0 + BLOCK, K)
        k4 = k1 - (k1 - k0) % 4
        for k in range(k0, k4, 4):
            x0 = x[k]
            x1 = x[k + 1]
            x2 = x[k + 2]
            x3 = x[k + 3]
            w0 = W[k]
            w1 = W[k + 1]
            w2 = W[k + 2]
            w3 = W[k + 3]
            for j in range(N):
                part[j] += x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j]
        for k in range(k4, k1):
            xk = x[k]
            wk = W[k]
            for j in range(N):
                part[j] += xk * wk[j]
        for j in range(N):
            g[j] += part[j]
            part[j] = 0


@jit
def _copy(dst, src):
    """dst[:n] = src for n = len(src), as a loop (no temporary, no allocation)."""
    for i in range(src.shape[0]):
        dst[i] = src[i]


@jit
def _clamp(v, clip):
    return -clip if v < -clip else (clip if v > clip else v)


@jit
def _mat(P, offset, rows, cols):
    return P[offset:offset + rows * cols].reshape((rows, cols))


# ------------------------------------------------------------------------------------------------------
# LSTM
# ------------------------------------------------------------------------------------------------------

@jit
def _lstm_row(g, c, hfull, P, m, base):
    """One row's cell update from gate pre-activations g (4H,) = [i f g o]; C_t in c, o*h(C_t) in hfull."""
    H = m[M_H]
    flags = m[M_FLAGS]
    if flags & F_FAST:
        for j in range(H):
            i = sigmoid_(g[j])
            f = sigmoid_(g[H + j])
            z = tanh_(g[2 * H + j])
            o = sigmoid_(g[3 * H + j])
            ct = f * c[j] + i * z
            c[j] = ct
            hfull[j] = o * tanh_(ct)
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


@jit
def _lstm_project(hfull, h, P, m, base, part):
    """h (H_out,) = hfull (H,) @ W_hr^T when projected, else a copy. part: (H_out,) scratch."""
    H, Ho = m[M_H], m[M_HO]
    if m[M_FLAGS] & F_PROJ:
        for j in range(Ho):
            h[j] = 0
        gemv_acc(h, hfull, _mat(P, m[base + D_PROJ], H, Ho), part)
    else:
        _copy(h, hfull)


@jit
def lstm_step(X, Y, P, S, SC, m):
    """One timestep for n rows. X (n, I), Y (n, H_out) out; S (n, H_out + H) = [h | c] updated in place."""
    I, H, Ho = m[M_IN], m[M_H], m[M_HO]
    n = X.shape[0]
    K = I + Ho
    base = M_DIR
    M = _mat(P, m[base + D_M], K, 4 * H)
    bias = P[m[base + D_B]:m[base + D_B] + 4 * H]
    scr = m[M_SCRATCH]
    for r in range(n):
        row = SC[r * scr:(r + 1) * scr]
        xh = row[:K]                             # [x_t | h_t-1]
        g = row[K:K + 4 * H]
        hfull = row[K + 4 * H:K + 5 * H]
        part = row[K + 5 * H:K + 9 * H]        # gemv_acc's partial sums
        s = S[r]
        _copy(xh, X[r])
        _copy(xh[I:], s[:Ho])
        _copy(g, bias)
        gemv_acc(g, xh, M, part)                 # g = b + x W^T + h R^T
        _lstm_row(g, s[Ho:Ho + H], hfull, P, m, base)
        _lstm_project(hfull, s[:Ho], P, m, base, part)
        _copy(Y[r], s[:Ho])


@jit
def lstm_sequence(XW, P, m, d, H0, C0, Y, lengths, reverse, HT, CT, work):
    """Recurrence over whole sequences for direction d.

    XW (T, B, 4H): x_t W^T + b for every step (from one GEMM). H0/C0 (B, H_out)/(B, H) initial states.
    Y (T, B, H_out) out (rows past a sequence's length are left as they are: zeros from the caller).
    HT/CT (B, ..) final states out. ``reverse`` runs each sequence from its own last valid step backwards.
    work: (B, 9H) scratch.
    """
    I, H, Ho = m[M_IN], m[M_H], m[M_HO]
    base = M_DIR + d * DIR_STRIDE
    R = _mat(P, m[base + D_M] + I * 4 * H, Ho, 4 * H)   # the h rows of [W^T; R^T]
    B = XW.shape[1]
    for b in range(B):
        w = work[b]
        g = w[:4 * H]
        hfull = w[4 * H:5 * H]
        part = w[5 * H:9 * H]
        h = HT[b]
        c = CT[b]
        _copy(h, H0[b])
        _copy(c, C0[b])
        L = lengths[b]
        for s in range(L):
            t = L - 1 - s if reverse else s
            _copy(g, XW[t, b])
            gemv_acc(g, h, R, part)
            _lstm_row(g, c, hfull, P, m, base)
            _lstm_project(hfull, h, P, m, base, part)
            _copy(Y[t, b], h)


# ------------------------------------------------------------------------------------------------------
# GRU
# ------------------------------------------------------------------------------------------------------

@jit
def _gru_row(grz, gxn, h, hnew, ghn, rh, P, m, base, part):
    """One row's GRU update.

    grz (2H,) = [r z] pre-activations (x and h parts and biases summed); gxn (H,) = X_t W_n^T + Wb_n;
    h (H,) = H_t-1; hnew (H,) out = H_t. ghn, rh, part: (H,) scratch.
      linear_before_reset=1: n = g(gxn + r . (H_t-1 R_n^T + Rb_n))
      linear_before_reset=0: n = g(gxn + (r . H_t-1) R_n^T + Rb_n)
      H_t = (1 - z) . n + z . H_t-1
    """
    H = m[M_H]
    flags = m[M_FLAGS]
    Rn = _mat(P, m[base + D_RHN], H, H)
    bhn = P[m[base + D_BHN]:m[base + D_BHN] + H]
    flt = P[m[base + D_FLT]:m[base + D_FLT] + 7]
    clip = flt[0]
    has_clip = (flags & F_CLIP) != 0
    fast = (flags & F_FAST) != 0
    fc, gc = m[base + D_ACT0], m[base + D_ACT1]
    if fast:
        for j in range(2 * H):
            grz[j] = sigmoid_(grz[j])
    else:
        for j in range(2 * H):
            v = _clamp(grz[j], clip) if has_clip else grz[j]
            grz[j] = apply(fc, flt[1], flt[2], v)
    _copy(ghn, bhn)
    if flags & F_LBR:
        gemv_acc(ghn, h, Rn, part)
        for j in range(H):
            rh[j] = gxn[j] + grz[j] * ghn[j]      # pre-activation of n
    else:
        for j in range(H):
            rh[j] = grz[j] * h[j]
        gemv_acc(ghn, rh, Rn, part)
        for j in range(H):
            rh[j] = gxn[j] + ghn[j]
    if fast:
        for j in range(H):
            nt = tanh_(rh[j])
            hnew[j] = nt + grz[H + j] * (h[j] - nt)
    else:
        for j in range(H):
            v = _clamp(rh[j], clip) if has_clip else rh[j]
            nt = apply(gc, flt[3], flt[4], v)
            hnew[j] = nt + grz[H + j] * (h[j] - nt)


@jit
def gru_step(X, Y, P, S, SC, m):
    """One timestep for n rows. X (n, I), Y (n, H) out; S (n, H) = h, updated in place."""
    I, H = m[M_IN], m[M_H]
    n = X.shape[0]
    K = I + H
    base = M_DIR
    M = _mat(P, m[base + D_M], K, 2 * H)
    Wn = _mat(P, m[base + D_WXN], I, H)
    bias = P[m[base + D_B]:m[base + D_B] + 2 * H]
    bxn = P[m[base + D_BXN]:m[base + D_BXN] + H]
    scr = m[M_SCRATCH]
    for r in range(n):
        row = SC[r * scr:(r + 1) * scr]
        xh = row[:K]
        grz = row[K:K + 2 * H]
        gxn = row[K + 2 * H:K + 3 * H]
        ghn = row[K + 3 * H:K + 4 * H]
        rh = row[K + 4 * H:K + 5 * H]
        part = row[K + 5 * H:K + 7 * H]
        s = S[r]
        _copy(xh, X[r])
        _copy(xh[I:], s)
        _copy(grz, bias)
        gemv_acc(grz, xh, M, part)                # [r z] = b + x W^T + h R^T
        _copy(gxn, bxn)
        gemv_acc(gxn, xh[:I], Wn, part)           # x W_n^T + Wb_n
        y = Y[r]
        _gru_row(grz, gxn, s, y, ghn, rh, P, m, base, part)
        _copy(s, y)


@jit
def gru_sequence(XW, XN, P, m, d, H0, Y, lengths, reverse, HT, work):
    """GRU recurrence for direction d. XW (T, B, 2H) = x W_rz^T + b_rz; XN (T, B, H) = x W_n^T + Wb_n.
    work: (B, 8H) scratch. Other arguments as in lstm_sequence."""
    I, H = m[M_IN], m[M_H]
    base = M_DIR + d * DIR_STRIDE
    R = _mat(P, m[base + D_M] + I * 2 * H, H, 2 * H)
    B = XW.shape[1]
    for b in range(B):
        w = work[b]
        grz = w[:2 * H]
        ghn = w[2 * H:3 * H]
        rh = w[3 * H:4 * H]
        hnew = w[4 * H:5 * H]
        gxn = w[5 * H:6 * H]
        part = w[6 * H:8 * H]
        h = HT[b]
        _copy(h, H0[b])
        L = lengths[b]
        for s in range(L):
            t = L - 1 - s if reverse else s
            _copy(grz, XW[t, b])
            gemv_acc(grz, h, R, part)
            _copy(gxn, XN[t, b])
            _gru_row(grz, gxn, h, hnew, ghn, rh, P, m, base, part)
            _copy(h, hnew)
            _copy(Y[t, b], hnew)


# ------------------------------------------------------------------------------------------------------
# RNN
# ------------------------------------------------------------------------------------------------------

@jit
def _rnn_row(g, h, P, m, base):
    """h (H,) out = f(g) for pre-activations g (H,): Ht = f(Xt Wi + Ht-1 Ri + Wbi + Rbi)."""
    H = m[M_H]
    flags = m[M_FLAGS]
    code = m[base + D_ACT0]
    if flags & F_FAST:
        if code == 2:  # tanh (activations.TANH)
            for j in range(H):
                h[j] = tanh_(g[j])
        else:  # relu
            for j in range(H):
                v = g[j]
                h[j] = v if v > 0 else v - v
        return
    flt = P[m[base + D_FLT]:m[base + D_FLT] + 7]
    has_clip = (flags & F_CLIP) != 0
    for j in range(H):
        v = _clamp(g[j], flt[0]) if has_clip else g[j]
        h[j] = apply(code, flt[1], flt[2], v)


@jit
def rnn_step(X, Y, P, S, SC, m):
    """One timestep for n rows. X (n, I), Y (n, H) out; S (n, H) = h, updated in place."""
    I, H = m[M_IN], m[M_H]
    n = X.shape[0]
    K = I + H
    base = M_DIR
    M = _mat(P, m[base + D_M], K, H)
    bias = P[m[base + D_B]:m[base + D_B] + H]
    scr = m[M_SCRATCH]
    for r in range(n):
        row = SC[r * scr:(r + 1) * scr]
        xh = row[:K]
        g = row[K:K + H]
        part = row[K + H:K + 2 * H]
        s = S[r]
        _copy(xh, X[r])
        _copy(xh[I:], s)
        _copy(g, bias)
        gemv_acc(g, xh, M, part)
        _rnn_row(g, s, P, m, base)
        _copy(Y[r], s)


@jit
def rnn_sequence(XW, P, m, d, H0, Y, lengths, reverse, HT, work):
    """RNN recurrence for direction d. XW (T, B, H) = x W^T + b. work: (B, 2H) scratch."""
    I, H = m[M_IN], m[M_H]
    base = M_DIR + d * DIR_STRIDE
    R = _mat(P, m[base + D_M] + I * H, H, H)
    B = XW.shape[1]
    for b in range(B):
        g = work[b, :H]
        part = work[b, H:]
        h = HT[b]
        _copy(h, H0[b])
        L = lengths[b]
        for s in range(L):
            t = L - 1 - s if reverse else s
            _copy(g, XW[t, b])
            gemv_acc(g, h, R, part)
            _rnn_row(g, h, P, m, base)
            _copy(Y[t, b], h)
