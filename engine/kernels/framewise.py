"""Frame-wise convolution and pooling (over a frame's own axes, not time), and PReLU.

Both convolution and pooling read each output's receptive field through an index map the packer works out
once (engine/layers/framewise.py), meta from META_LEN on: for every output position, the ``window`` input
indices it reads (-1 where the padding is). meta[M_H] = the window (C_in / groups x kernel taps for a
convolution, the pooling window for a pool), meta[M_HO] = output positions per channel group, meta[M_D] =
groups (convolution) or channels (pool).

* conv: params hold the weights (C_out, C_in / groups x taps) at D_W, the bias at D_BIAS (or -1);
  y[(g * cout_g + o) * P + p] = bias + sum_j W[g * cout_g + o, j] x[index[(g * P + p) * window + j]].
* pool: meta[M_CODE] 0 = max (padding never wins), 1 = average over the whole window (padding counted, as
  torch's count_include_pad=True), 2 = average over the real inputs only.
* prelu: y = x if x >= 0 else slope[c] x, c the frame's first axis (meta[M_H] channels of meta[M_D] values; one
  shared slope when meta[M_HO] is 1).
"""

from numba import carray

from ..config import jit
from .activations import epilogue
from .linalg import _panels, _rows, gemm_acc
from .layout import (D_BIAS, D_W, M_CODE, M_D, M_DIR, M_FLAGS, M_H, M_HO, M_IN, M_LEN, M_OUT, M_PLEN, M_SCRATCH,
                     M_STATE, META_LEN, TILE)

POOL_MAX, POOL_AVG, POOL_AVG_VALID = 0, 1, 2
F_DIRECT_1D = 1   # meta[M_FLAGS] of a 1-D, groups-1, stride-1 frame convolution: the direct loop, no index map
F_GEMM = 2        # meta[M_FLAGS] of a convolution with many outputs per group: im2col, then gemm_acc
# the direct loop's sizes, in the per-direction slots (a frame convolution has no directions)
M_CONV_CIN, M_CONV_F, M_CONV_K, M_CONV_DIL, M_CONV_PL = (M_DIR + 2 + i for i in range(5))


@jit
def frame_conv_step(X, Y, P, S, SC, m):
    if m[M_FLAGS] & F_DIRECT_1D:
        _frame_conv1d_direct(X, Y, P, SC, m)
        return
    if m[M_FLAGS] & F_GEMM:
        _frame_conv_gemm(X, Y, P, SC, m)
        return
    window, npos, G = m[M_H], m[M_HO], m[M_D]
    cout = m[M_OUT] // npos
    cout_g = cout // G
    ow, ob = m[M_DIR + D_W], m[M_DIR + D_BIAS]
    idx = m[META_LEN:]
    for r in range(X.shape[0]):
        x = X[r]
        y = Y[r]
        for g in range(G):
            for p in range(npos):
                base = (g * npos + p) * window
                for o in range(g * cout_g, (g + 1) * cout_g):
                    acc = P[ob + o] if ob >= 0 else 0.0
                    w = ow + o * window
                    for j in range(window):
                        k = idx[base + j]
                        if k >= 0:
                            acc += P[w + j] * x[k]
                    y[o * npos + p] = acc
        epilogue(y, P, m)


@jit
def _frame_conv_gemm(X, Y, P, SC, m):
    """Per row and group: every output position's receptive field gathered into a (positions, window) matrix in
    scratch (im2col, zeros for the padding), times the group's weights (window, C_out / groups) in the panel layout
    by gemm_acc (each weight vector loaded once for up to six positions, the accumulators in registers), the bias
    added and the result written channel-major. A row's sums do not depend on the other rows."""
    window, npos, G = m[M_H], m[M_HO], m[M_D]
    cout = m[M_OUT] // npos
    cout_g = cout // G
    ow, ob = m[M_DIR + D_W], m[M_DIR + D_BIAS]
    idx = m[META_LEN:]
    Wp = _panels(P, ow, G * window, cout_g)
    width = Wp.shape[0] * Wp.shape[2]
    for r in range(X.shape[0]):
        x = X[r]
        y = Y[r]
        base = r * m[M_SCRATCH]
        cols = _rows(SC, base, npos, window)
        acc = _rows(SC, base + npos * window, npos, width)
        part = _rows(SC, base + npos * window + npos * width, 6, TILE)
        for g in range(G):
            for p in range(npos):
                b0 = (g * npos + p) * window
                for j in range(window):
                    k = idx[b0 + j]
                    cols[p, j] = x[k] if k >= 0 else 0.0
                for o in range(cout_g):
                    acc[p, o] = 0.0
            gemm_acc(acc, cols, Wp, g * window, cout_g, part)
            for o in range(cout_g):
                oo = g * cout_g + o
                b = P[ob + oo] if ob >= 0 else 0.0
                for p in range(npos):
                    y[oo * npos + p] = acc[p, o] + b
        epilogue(y, P, m)


@jit
def _frame_conv1d_direct(X, Y, P, SC, m):
    """A 1-D frame convolution, groups 1, stride 1: the frame copied zero-padded into scratch once, then for
    every (output channel, input channel, tap) one weight times a contiguous run of inputs added to a contiguous
    run of outputs (the innermost loop over output positions vectorizes; the index map's gather did not)."""
    cin, F, K, dil = m[M_CONV_CIN], m[M_CONV_F], m[M_CONV_K], m[M_CONV_DIL]
    pl, npos = m[M_CONV_PL], m[M_HO]
    cout = m[M_OUT] // npos
    Fp = m[M_SCRATCH] // cin
    ow, ob = m[M_DIR + D_W], m[M_DIR + D_BIAS]
    for r in range(X.shape[0]):
        x = X[r]
        y = Y[r]
        xp = SC[r * m[M_SCRATCH]:(r + 1) * m[M_SCRATCH]]
        for j in range(cin * Fp):
            xp[j] = 0.0
        for i in range(cin):
            for f in range(F):
                xp[i * Fp + pl + f] = x[i * F + f]
        for o in range(cout):
            yo = y[o * npos:(o + 1) * npos]
            b = P[ob + o] if ob >= 0 else 0.0
            for q in range(npos):
                yo[q] = b
            for i in range(cin):
                row = xp[i * Fp:(i + 1) * Fp]
                for k in range(K):
                    w = P[ow + (o * cin + i) * K + k]
                    seg = row[k * dil:k * dil + npos]
                    for q in range(npos):
                        yo[q] += w * seg[q]
        epilogue(y, P, m)


@jit
def pool_step(X, Y, P, S, SC, m):
    window, nout, mode = m[M_H], m[M_OUT], m[M_CODE]
    idx = m[META_LEN:]
    for r in range(X.shape[0]):
        x = X[r]
        y = Y[r]
        for q in range(nout):
            base = q * window
            acc = x[0] - x[0]
            count = 0
            first = True
            for j in range(window):
                k = idx[base + j]
                if k >= 0:
                    v = x[k]
                    if mode == POOL_MAX:
                        if first or v > acc:
                            acc = v
                        first = False
                    else:
                        acc += v
                    count += 1
            if mode == POOL_AVG:
                acc = acc / window
            elif mode == POOL_AVG_VALID:
                acc = acc / max(count, 1)
            y[q] = acc


@jit
def prelu_step(X, Y, P, S, SC, m):
    C, inner, nslopes = m[M_H], m[M_D], m[M_HO]
    for r in range(X.shape[0]):
        x = X[r]
        y = Y[r]
        for c in range(C):
            a = P[c if nslopes > 1 else 0]
            for j in range(c * inner, (c + 1) * inner):
                v = x[j]
                y[j] = v if v >= 0 else a * v


def frame_conv_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): frame_conv_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    frame_conv_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
                    carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)


def pool_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): pool_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    pool_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
              carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)


def prelu_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): prelu_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    prelu_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
               carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)
