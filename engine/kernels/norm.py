"""Normalization kernels over frames: LayerNorm and a per-channel affine (BatchNorm in inference).

Layout (engine/layers/norm.py packs it), the frame seen as (outer, inner):
* layer_norm: meta[M_H] = outer, meta[M_D] = inner (the normalized axes' size); params: [eps], then the weight
  and bias (inner,) at D_W and D_BIAS (-1 when absent). Mean and variance are accumulated in float64.
  With meta[M_FLAGS] & F_FRAME_AFFINE (GroupNorm, InstanceNorm) the weight and bias cover the whole frame
  (outer * inner: one value per channel, repeated over its positions by the packer).
* l2_norm: the frame seen as (meta[M_H] = outer, meta[M_HO] = the axis's length, meta[M_D] = inner); params [eps];
  y = x / max(||x||_2 along the axis, eps), as torch.nn.functional.normalize.
* channel_affine: meta[M_H] = channels (frame axis 0), meta[M_D] = inner (the rest of the frame); params: the
  scale and shift per channel at D_W and D_BIAS (BatchNorm's statistics folded in at pack time).
"""

import numpy as np
from numba import carray

from ..config import jit
from .layout import D_BIAS, D_W, M_D, M_DIR, M_FLAGS, M_H, M_HO, M_IN, M_LEN, M_OUT, M_PLEN, M_SCRATCH, M_STATE

F_FRAME_AFFINE = 1


@jit
def layer_norm_step(X, Y, P, S, SC, m):
    """Y = (X - mean) / sqrt(var + eps) * weight + bias over each of the frame's ``outer`` groups of ``inner``."""
    outer, inner = m[M_H], m[M_D]
    ow, ob = m[M_DIR + D_W], m[M_DIR + D_BIAS]
    frame_affine = (m[M_FLAGS] & F_FRAME_AFFINE) != 0
    eps = np.float64(P[0])
    for r in range(X.shape[0]):
        x = X[r]
        y = Y[r]
        for a in range(outer):
            base = a * inner
            total = 0.0
            for j in range(inner):
                total += np.float64(x[base + j])
            mean = total / inner
            sq = 0.0
            for j in range(inner):
                dv = np.float64(x[base + j]) - mean
                sq += dv * dv
            inv = 1.0 / np.sqrt(sq / inner + eps)
            wbase = base if frame_affine else 0
            for j in range(inner):
                v = (np.float64(x[base + j]) - mean) * inv
                if ow >= 0:
                    v = v * P[ow + wbase + j]
                if ob >= 0:
                    v = v + P[ob + wbase + j]
                y[base + j] = v


@jit
def l2_norm_step(X, Y, P, S, SC, m):
    """Y = X / max(||X||_2 along one axis, eps), the frame seen as (outer, axis length, inner)."""
    outer, A, inner = m[M_H], m[M_HO], m[M_D]
    eps = np.float64(P[0])
    for r in range(X.shape[0]):
        x = X[r]
        y = Y[r]
        for a in range(outer):
            for b in range(inner):
                base = a * A * inner + b
                sq = 0.0
                for j in range(A):
                    v = np.float64(x[base + j * inner])
                    sq += v * v
                norm = np.sqrt(sq)
                inv = 1.0 / (norm if norm > eps else eps)
                for j in range(A):
                    y[base + j * inner] = x[base + j * inner] * inv


@jit
def channel_affine_step(X, Y, P, S, SC, m):
    """Y = X * scale[c] + shift[c], c the frame's first axis."""
    C, inner = m[M_H], m[M_D]
    ow, ob = m[M_DIR + D_W], m[M_DIR + D_BIAS]
    for r in range(X.shape[0]):
        x = X[r]
        y = Y[r]
        for c in range(C):
            a, b = P[ow + c], P[ob + c]
            for j in range(c * inner, (c + 1) * inner):
                y[j] = x[j] * a + b


def layer_norm_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): layer_norm_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    layer_norm_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
                    carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)


def l2_norm_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): l2_norm_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    l2_norm_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
                 carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)


def channel_affine_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): channel_affine_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    channel_affine_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
                        carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)
