"""LSTM, GRU and RNN cell kernels: one timestep for n rows (``*_step``) and whole sequences (``*_sequence``).

Design:
* Gate pre-activations are one accumulation over the packed (I + H_out, G*H) matrix [W^T; R^T], stored
  as 64-column panels (npan, I + H_out, PANEL) (layout.py): the loop over K is outside, the 64 gate
  units of a panel inside, contiguous, so it compiles to vertical FMAs with no horizontal sums
  (PERFORMANCE.md: the row-dot layout was 1.2-1.4x slower).
* The accumulator tile lives in registers: ``_registers`` gives a stack array that LLVM promotes once
  the loops over it are unrolled. ``gemm_acc`` takes the rows six, four or one at a time (float64: two;
  ``_panel``) and loads each weight vector once for all of them, so the weights are read once per
  timestep whatever the number of streams or sequences (one gemv per row read them n times: 2.3x slower
  than onnxruntime at 64 streams). benchmarks/kernel_variants.py times the alternatives.
* Blocked accumulation: each BLOCK of K is summed into the zeroed tile, then added to the gates, which
  halves float32 rounding error at fan-in 512 (g2p-en's GRUs: 1.7e-5 -> 1e-5 on logits of ~20;
  accumulating in float64 bought nothing more and cost 1.5x). Every element is summed in the same order
  whichever of the three paths computes it: n rows stepped together equal n rows stepped alone, bit for bit.
* Step and sequence share the per-row cell updates (``_lstm_row`` ...). Below the BLAS batch a sequence
  kernel projects the inputs of CHUNK timesteps in one six-row ``_panel`` pass into a small work area, then
  runs the recurrence time-outer, batch-inner (a (T, B, G*H) projection array up front cost page faults
  of up to 2 us per step); at larger batches engine/model.py drives BLAS GEMMs and the ``*_blas_*``
  kernels here do the elementwise parts. Per-row lengths and the reverse direction are a matter of
  indexing (rows past their length are computed but never written back).
* Two update paths: ``fast`` (default activations, no clip/peephole/input_forget) is branch-free and
  vectorizes; ``generic`` evaluates any ONNX activation with exact math, element by element.
* Nothing here allocates: scratch comes from the caller as contiguous 2-D regions (see the packer and
  Model.run for the sizes). Symbols follow the ONNX operator docs: X_t input, H_t hidden, C_t cell, W/R
  input/recurrent weights, P peepholes.
"""

import llvmlite.ir as ir
from numba import carray, literally, types
from numba.core import cgutils
from numba.extending import intrinsic

from ..config import jit
from .activations import apply, sigmoid_, tanh_
from .layout import (DIR_STRIDE, D_ACT0, D_ACT1, D_ACT2, D_B, D_BHN, D_BXN, D_FLT, D_M, D_PEEP, D_PROJ, D_RHN, D_WXN,
                     F_CLIP, F_FAST, F_INPUT_FORGET, F_LBR, F_PROJ, M_DIR, M_FLAGS, M_H, M_HO, M_IN, PANEL, TILE)


# ------------------------------------------------------------------------------------------------------
# Linear algebra
# ------------------------------------------------------------------------------------------------------

BLOCK = 32  # rows of W per partial sum


@intrinsic
def _registers(typingctx, rows, cols, like):
    """A pointer to rows * cols elements of ``like``'s dtype on the stack (an LLVM alloca); rows and cols
    are compile-time constants. Unlike an array from np.empty, nothing else can point into it, so once the
    loops over it are fully unrolled LLVM keeps its elements in vector registers: ``_panel``'s tile."""
    if not (isinstance(rows, types.IntegerLiteral) and isinstance(cols, types.IntegerLiteral)):
        return None
    count, dtype = rows.literal_value * cols.literal_value, like.dtype

    def codegen(context, builder, signature, args):
        elem = context.get_value_type(dtype)
        ptr = cgutils.alloca_once(builder, ir.ArrayType(elem, count))
        return builder.bitcast(ptr, elem.as_pointer())

    return types.CPointer(dtype)(rows, cols, like), codegen


@jit
def _panel(G, X, Wp, koff, N, r, PART, R):
    """Rows r..r+R-1 of G[:, :N] += X @ rows koff..koff+K of the panelled matrix Wp (npan, Ktot, PANEL).

    R is a compile-time constant (one specialization per row count): the R x PANEL accumulator tile and
    the R inputs of the current k stay in registers, and each weight vector is loaded once for all R rows.
    Every element is summed in the same order whatever R is, so results are bit-identical across R.
    PART (>= R, >= PANEL) receives the tile of the last, zero-padded panel."""
    literally(R)
    K = X.shape[1]
    acc = carray(_registers(R, PANEL, G), (R, PANEL))
    xk = carray(_registers(R, 1, G), (R,))
    for p in range(Wp.shape[0]):
        w = Wp[p]
        j0 = p * PANEL
        full = j0 + PANEL <= N
        for k0 in range(0, K, BLOCK):
            k1 = min(k0 + BLOCK, K)
            for i in range(R):
                for j in range(PANEL):
                    acc[i, j] = 0
            for k in range(k0, k1):
                wk = w[koff + k]
                for i in range(R):
                    xk[i] = X[r + i, k]
                for j in range(PANEL):
                    u = wk[j]
                    for i in range(R):
                        acc[i, j] += xk[i] * u
            if full:
                for i in range(R):
                    o = G[r + i, j0:j0 + PANEL]
                    for j in range(PANEL):
                        o[j] += acc[i, j]
            else:                        # the last, zero-padded panel: only N - j0 columns are real
                for i in range(R):
                    for j in range(PANEL):
                        PART[i, j] = acc[i, j]
                for i in range(R):
                    for j in range(N - j0):
                        G[r + i, j0 + j] += PART[i, j]


@jit
def gemm_acc(G, X, Wp, koff, N, PART):
    """G[:, :N] += X (n, K) @ W[koff:koff + K] for W (Ktot, N) stored as panels Wp (npan, Ktot, PANEL) (see
    layout.py); PART (min(n, 6), >= PANEL) is scratch. float32 rows go six at a time (but 8 as 4 + 4), then
    four, the rest one by one; float64 rows two at a time. Either way each element's sum is the same sequence
    of operations, so n rows stepped together equal n rows stepped alone bit for bit."""
    n = X.shape[0]
    r = 0
    if G.itemsize == 8:                  # float64: pairs (a run-time test: float32 code carries the pair path unused)
        while r + 2 <= n:
            _panel(G, X, Wp, koff, N, r, PART, 2)
            r += 2
    while n - r >= 6 and n - r != 8:     # six rows: 24 of the 32 AVX-512 registers hold accumulators
        _panel(G, X, Wp, koff, N, r, PART, 6)
        r += 6
    while r + 4 <= n:
        _panel(G, X, Wp, koff, N, r, PART, 4)
        r += 4
    while r < n:
        _panel(G, X, Wp, koff, N, r, PART, 1)
        r += 1


@jit
def _copy(dst, src):
    """dst[:n] = src for n = len(src), as a loop (no temporary, no allocation)."""
    for i in range(src.shape[0]):
        dst[i] = src[i]


@jit
def _clamp(v, clip):
    return -clip if v < -clip else (clip if v > clip else v)


@intrinsic
def _address(typingctx, arr, offset):
    """A pointer to ``arr[offset]`` of a contiguous 1-D array, for ``carray`` views (no bounds check)."""
    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.gep(ary.data, [args[1]])

    return types.CPointer(arr.dtype)(arr, offset), codegen


# The views below are carrays over the caller's flat buffers: ``buf[a:b].reshape(...)`` went through
# numba's no-copy-reshape helper, ~36 ns a view, a fifth of a whole LSTM 8x32 step. The regions' sizes
# come from the packer (Packed.scratch_size) and Model.run, which allocate the buffers.

@jit
def _mat(P, offset, rows, cols):
    """The (rows, cols) C-contiguous matrix at ``offset`` of a flat buffer."""
    return carray(_address(P, offset), (rows, cols))


@jit
def _panels(P, offset, rows, cols):
    """The panelled (rows, cols) matrix at ``offset``: (ceil(cols / PANEL), rows, PANEL), see layout.py."""
    return carray(_address(P, offset), ((cols + PANEL - 1) // PANEL, rows, PANEL))


@jit
def _rows(buf, offset, n, width):
    """An (n, width) C-contiguous region of a flat scratch buffer."""
    return carray(_address(buf, offset), (n, width))


@jit
def _start(HT, H0, lengths):
    """HT = H0 row by row; returns the longest sequence length (the number of recurrence steps)."""
    longest = 0
    for b in range(HT.shape[0]):
        _copy(HT[b], H0[b])
        longest = max(longest, lengths[b])
    return longest


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
def lstm_step(X, Y, P, S, SC, m):
    """One timestep for n rows. X (n, I), Y (n, H_out) out; S (n, H_out + H) = [h | c] updated in place.

    Scratch regions: XH (n, I + H_out) = [x_t | h_t-1], G (n, 4H), HF (n, H), PART (n, max(TILE, 4H)).
    """
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
        _lstm_row(G[r], S[r, Ho:Ho + H], HF[r], P, m, base)
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


CHUNK = 6   # timesteps whose input projections one six-row _panel pass computes together (sequence kernels)


def sequence_work_size(kind, B, I, H, Ho):
    """Floats of scratch ``*_sequence`` needs for B sequences: its per-step regions (see each kernel), the
    chunk's inputs XC (CHUNK * B, I) and projections GC, and PART (max(B, CHUNK), max(TILE, G * H))."""
    gates = {"lstm": 4, "gru": 2, "rnn": 1}[kind]
    steps = {"lstm": B * (5 * H + Ho), "gru": B * 5 * H, "rnn": B * H}[kind]
    projections = CHUNK * B * (gates * H + (H if kind == "gru" else 0))
    return steps + CHUNK * B * I + projections + max(B, CHUNK) * max(TILE, gates * H)


@jit
def _chunk_inputs(XC, SEQ, lengths, s0, reverse):
    """XC[c * B + b] = x_t of row b at recurrence step s0 + c (t = s, or L-1-s reversed); zeros past its end."""
    B = SEQ.shape[1]
    for c in range(XC.shape[0] // B):
        s = s0 + c
        for b in range(B):
            L = lengths[b]
            x = XC[c * B + b]
            if s < L:
                _copy(x, SEQ[L - 1 - s if reverse else s, b])
            else:
                for j in range(x.shape[0]):
                    x[j] = 0


@jit
def _chunk_project(GC, XC, Wp, N, bias, PART):
    """GC[:, :N] = bias + XC @ W[:K] (the x rows of the panelled Wp): CHUNK steps' input projections at once."""
    for r in range(GC.shape[0]):
        g = GC[r]
        for j in range(N):
            g[j] = bias[j]
    gemm_acc(GC, XC, Wp, 0, N, PART)


@jit
def lstm_sequence(SEQ, P, m, d, H0, C0, Y, lengths, reverse, HT, CT, work):
    """Recurrence over whole sequences for direction d.

    SEQ (T, B, I) inputs. H0/C0 (B, H_out)/(B, H) initial states. Y (T, B, H_out) out (rows past a
    sequence's length are left as they are: zeros from the caller). HT/CT (B, ..) final states out.
    ``reverse`` runs each sequence from its own last valid step backwards. work: flat scratch of
    ``sequence_work_size("lstm", ...)`` floats.

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
def seq_blas_load(XH, SEQ, HT, lengths, s, reverse):
    """XH[b] = [x_t, H_t-1] for the rows still running at step s (t = s, or L-1-s reversed)."""
    I = SEQ.shape[2]
    for b in range(XH.shape[0]):
        L = lengths[b]
        if s < L:
            _copy(XH[b, :I], SEQ[L - 1 - s if reverse else s, b])
            _copy(XH[b, I:], HT[b])


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


@jit
def seq_blas_store(SRC, HT, Y, lengths, s, reverse):
    """HT[b] = Y[t, b] = SRC[b] for the rows still running at step s."""
    for b in range(SRC.shape[0]):
        L = lengths[b]
        if s < L:
            _copy(HT[b], SRC[b])
            _copy(Y[L - 1 - s if reverse else s, b], SRC[b])


# ------------------------------------------------------------------------------------------------------
# GRU
# ------------------------------------------------------------------------------------------------------

@jit
def _gru_gates(grz, h, rh, P, m, base):
    """r, z = f([r z] pre-activations) in place; for linear_before_reset=0 also rh = r . H_t-1."""
    H = m[M_H]
    flags = m[M_FLAGS]
    if flags & F_FAST:
        for j in range(2 * H):
            grz[j] = sigmoid_(grz[j])
    else:
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
        for j in range(H):
            pre = gxn[j] + grz[j] * ghn[j] if lbr else gxn[j] + ghn[j]
            nt = tanh_(pre)
            h[j] = nt + grz[H + j] * (h[j] - nt)
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


@jit
def gru_step(X, Y, P, S, SC, m):
    """One timestep for n rows. X (n, I), Y (n, H) out; S (n, H) = h, updated in place.

    Scratch regions: XH (n, I + H), GRZ (n, 2H), GXN, GHN, RH (n, H each), PART (n, max(TILE, 2H)).
    """
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
        _gru_gates(GRZ[r], S[r], RH[r], P, m, base)
    _gru_candidate(GHN, S, RH, P, m, base, bhn, PART)
    for r in range(n):
        _gru_finish(GRZ[r], GXN[r], GHN[r], S[r], P, m, base)
        _copy(Y[r], S[r])


@jit
def gru_sequence(SEQ, P, m, d, H0, Y, lengths, reverse, HT, work):
    """GRU recurrence for direction d; SEQ (T, B, I). work: ``sequence_work_size("gru", ...)`` floats. The
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
    """One timestep for n rows. X (n, I), Y (n, H) out; S (n, H) = h, updated in place.

    Scratch regions: XH (n, I + H), G (n, H), PART (n, max(TILE, H)).
    """
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
        _rnn_row(G[r], S[r], P, m, base)
        _copy(Y[r], S[r])


@jit
def rnn_sequence(SEQ, P, m, d, H0, Y, lengths, reverse, HT, work):
    """RNN recurrence for direction d; SEQ (T, B, I). work: ``sequence_work_size("rnn", ...)`` floats. Input
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
