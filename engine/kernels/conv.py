"""Temporal convolution kernel: a causal Conv1d along time, one timestep for n rows.

Layout (engine/layers/conv.py packs it): params holds the weights as (groups, K, C_in / groups, C_out / groups)
at D_W, so the innermost loop runs over a group's output channels contiguously (depthwise, one input channel
per group: (K, C_out), with F_DEPTHWISE in meta[M_FLAGS]), and the bias (C_out,) at D_BIAS (or -1).
meta: M_IN = C_in, M_OUT = C_out, M_H = K (taps), M_HO = dilation, M_D = groups, M_STRIDE = stride, M_STATE = the
(K - 1) * dilation past frames the node keeps, C_in each, oldest first, and, for a node with a Timing (a stride, or
padding other than causal), one more float: its phase, the input frames until its next output (the output is
computed and written only when it is 0).

A step reads tap k from the frame (K - 1 - k) * dilation steps back: the current input for the last tap, the
state for the others; then the state shifts by one frame and takes the input. A stream started from zeros is
the sequence left-padded with zeros, which is what a causal convolution is.
"""

from numba import carray

from ..config import jit
from .activations import epilogue
from .layout import (D_BIAS, D_W, M_D, M_DIR, M_FLAGS, M_H, M_HO, M_IN, M_LEN, M_OUT, M_PLEN, M_SCRATCH, M_STATE,
                     M_STRIDE, META_LEN)

F_DEPTHWISE = 1   # meta[M_FLAGS]: one input channel per group, weights packed (K, C_out)
# TemporalConv2d: its time taps and time dilation (the frequency convolution is FrameConv's index map)
M_CONV2D_KT, M_CONV2D_DT = M_DIR + 2, M_DIR + 3


@jit
def conv_step(X, Y, P, S, SC, m):
    """Y (n, C_out) = the causal convolution's output for this timestep; S (n, L * C_in) its past frames.

    Design: the group's outputs, each tap's (C_in/G, C_out/G) weights and the source frame are taken as slices
    before the loops; indexing the flat arrays with computed offsets instead ran 2.5-3x slower (LLVM no longer
    vectorized the innermost loop over the outputs)."""
    cin, cout, K, dil, G = m[M_IN], m[M_OUT], m[M_H], m[M_HO], m[M_D]
    cin_g, cout_g = cin // G, cout // G
    ow, ob = m[M_DIR + D_W], m[M_DIR + D_BIAS]
    L = (K - 1) * dil
    depthwise = (m[M_FLAGS] & F_DEPTHWISE) != 0
    timed = m[M_STATE] > L * cin   # the phase follows the frames
    for r in range(X.shape[0]):
        x = X[r]
        y = Y[r]
        s = S[r]
        if timed and not _due(s, x, L, cin, m):
            continue
        for o in range(cout):
            y[o] = P[ob + o] if ob >= 0 else 0.0
        if depthwise:   # one input channel per group: weights (K, C_out), output o reads channel o // cout_g
            for k in range(K):
                back = (K - 1 - k) * dil
                src = x if back == 0 else s[(L - back) * cin:(L - back + 1) * cin]
                wk = P[ow + k * cout:ow + (k + 1) * cout]
                if cout_g == 1:
                    for o in range(cout):
                        y[o] += wk[o] * src[o]
                else:
                    for o in range(cout):
                        y[o] += wk[o] * src[o // cout_g]
        for g in range(0 if depthwise else G):
            yg = y[g * cout_g:(g + 1) * cout_g]
            for k in range(K):
                back = (K - 1 - k) * dil     # the frame this tap reads: the input, or one `back` steps ago
                if back == 0:
                    src = x[g * cin_g:(g + 1) * cin_g]
                else:
                    base = (L - back) * cin + g * cin_g
                    src = s[base:base + cin_g]
                w0 = ow + (g * K + k) * cin_g * cout_g
                W = P[w0:w0 + cin_g * cout_g].reshape((cin_g, cout_g))
                for i in range(cin_g):
                    v = src[i]
                    wi = W[i]
                    for o in range(cout_g):
                        yg[o] += v * wi[o]
        epilogue(y, P, m)
        _push(s, x, L, cin)


@jit
def _due(s, x, L, size, m):
    """A timed node's phase (after its L frames of ``size`` in state row s) moves on by one input; whether an
    output is due now. When none is, the frame x is taken into the past frames here."""
    phase = s[L * size]
    s[L * size] = m[M_STRIDE] - 1 if phase == 0 else phase - 1
    if phase != 0:
        _push(s, x, L, size)
    return phase == 0


@jit
def _push(s, x, L, cin):
    """The past frames s (L * cin, oldest first) shift by one and take x."""
    if L > 0:
        for j in range((L - 1) * cin):
            s[j] = s[j + cin]
        for i in range(cin):
            s[(L - 1) * cin + i] = x[i]


def conv_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): conv_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    conv_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
              carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)


@jit
def conv2d_step(X, Y, P, S, SC, m):
    """TemporalConv2d: Y (n, C_out * F') = bias + sum over time taps kt of the frequency convolution (weights
    (K_t, C_out, window) at D_W, FrameConv's index map from META_LEN) of the frame (K_t - 1 - kt) * dilation steps
    back; S (n, L * C_in * F [+ phase]) its past frames, as conv_step keeps them."""
    window, npos, G, size = m[M_H], m[M_HO], m[M_D], m[M_IN]
    cout = m[M_OUT] // npos
    cout_g = cout // G
    Kt, dil = m[M_CONV2D_KT], m[M_CONV2D_DT]
    L = (Kt - 1) * dil
    ow, ob = m[M_DIR + D_W], m[M_DIR + D_BIAS]
    idx = m[META_LEN:]
    timed = m[M_STATE] > L * size
    for r in range(X.shape[0]):
        x = X[r]
        y = Y[r]
        s = S[r]
        if timed and not _due(s, x, L, size, m):
            continue
        for o in range(cout):
            b = P[ob + o] if ob >= 0 else 0.0
            for q in range(npos):
                y[o * npos + q] = b
        for kt in range(Kt):
            back = (Kt - 1 - kt) * dil
            src = x if back == 0 else s[(L - back) * size:(L - back + 1) * size]
            wk = ow + kt * cout * window
            for g in range(G):
                for q in range(npos):
                    base = (g * npos + q) * window
                    for o in range(g * cout_g, (g + 1) * cout_g):
                        w = wk + o * window
                        acc = y[o * npos + q] - y[o * npos + q]
                        for j in range(window):
                            k = idx[base + j]
                            if k >= 0:
                                acc += P[w + j] * src[k]
                        y[o * npos + q] += acc
        epilogue(y, P, m)
        _push(s, x, L, size)


def conv2d_entry(x, y, p, s, sc, meta, n):
    """The C entry point of TemporalConv2d: conv2d_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    conv2d_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
                carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)
