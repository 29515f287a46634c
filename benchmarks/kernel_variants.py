"""Kernel experiments, kept out of engine/: variants of the batched gate accumulation ``gemm_acc``.

    python -m benchmarks.kernel_variants

Each variant is checked against a float64 NumPy product before it is timed, then timed interleaved with the
engine's kernel and numpy's BLAS (OpenBLAS, one thread) at the shapes the step, sequence and streams suites
use (LSTM 32x128: K = 160 stacked rows for a step, N = 512 gate units). A variant is promoted into
engine/kernels/linalg.py only when it wins clearly; the result of each trial is recorded in
benchmarks/README.md.

The engine's kernel reads the weights as column panels (engine/kernels/layout.py) and keeps the accumulator
tile of one, four or six rows in vector registers, its width sized for the target (linalg._TILES). float64 is
timed too (the engine and ``tiled`` only). To see the code an AVX2 machine gets, run with
``NUMBA_CPU_NAME=znver3 NUMBA_CPU_FEATURES=""`` and a separate NUMBA_CACHE_DIR (the name alone keeps the host's
features), and ``OPENBLAS_CORETYPE=Haswell`` for OpenBLAS's AVX2 kernels. The variants below read the plain
(K, N) layout:

``tiled``: the engine's kernel before the panels (promoted out on 2026-11-22): TILE columns, the K loop
unrolled by 4, partial sums in a scratch row that is loaded and stored for every 4 rows of W.
Variant ``k8``: ``tiled`` with the K loop unrolled by 8, so the partial sums are loaded and stored half as
often per multiply-add.
Variant ``r8``: ``tiled`` with 8 rows at once instead of 4 (the same per-row arithmetic).
"""

import time

import numpy as np

from engine.config import jit
from engine.kernels.linalg import BLOCK, gemm_acc
from engine.kernels.layout import PANEL, TILE

from . import harness


@jit
def gemv_acc_tiled(g, x, W, part):
    """g (N,) += x (K,) @ W (K, N) for one row; part (>= N,) is scratch. gemm_acc's n == 1 case: a full-width
    pass per 4 rows of W is cheaper than TILE-wide passes when there is only one row to reuse them for."""
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
def gemm_acc_tiled(G, X, W, PART):
    """G (n, N) += X (n, K) @ W (K, N); PART (n, >= max(TILE, N)) is scratch. All C-contiguous."""
    n, K = X.shape
    N = W.shape[1]
    if n == 1:
        gemv_acc_tiled(G[0], X[0], W, PART[0])
        return
    for j0 in range(0, N, TILE):
        nt = min(j0 + TILE, N) - j0
        for r in range(n):
            p = PART[r]
            for j in range(nt):
                p[j] = 0
        for k0 in range(0, K, BLOCK):
            k1 = min(k0 + BLOCK, K)
            k4 = k1 - (k1 - k0) % 4
            for k in range(k0, k4, 4):
                w0 = W[k, j0:j0 + nt]
                w1 = W[k + 1, j0:j0 + nt]
                w2 = W[k + 2, j0:j0 + nt]
                w3 = W[k + 3, j0:j0 + nt]
                r = 0
                while r + 4 <= n:        # 4 rows at once: each weight vector loaded once for 4 rows
                    xa, xb, xc, xd = X[r], X[r + 1], X[r + 2], X[r + 3]
                    a0, a1, a2, a3 = xa[k], xa[k + 1], xa[k + 2], xa[k + 3]
                    b0, b1, b2, b3 = xb[k], xb[k + 1], xb[k + 2], xb[k + 3]
                    c0, c1, c2, c3 = xc[k], xc[k + 1], xc[k + 2], xc[k + 3]
                    d0, d1, d2, d3 = xd[k], xd[k + 1], xd[k + 2], xd[k + 3]
                    pa, pb, pc, pd = PART[r], PART[r + 1], PART[r + 2], PART[r + 3]
                    for j in range(nt):
                        u0, u1, u2, u3 = w0[j], w1[j], w2[j], w3[j]
                        pa[j] += a0 * u0 + a1 * u1 + a2 * u2 + a3 * u3
                        pb[j] += b0 * u0 + b1 * u1 + b2 * u2 + b3 * u3
                        pc[j] += c0 * u0 + c1 * u1 + c2 * u2 + c3 * u3
                        pd[j] += d0 * u0 + d1 * u1 + d2 * u2 + d3 * u3
                    r += 4
                while r < n:
                    x = X[r]
                    x0 = x[k]
                    x1 = x[k + 1]
                    x2 = x[k + 2]
                    x3 = x[k + 3]
                    p = PART[r]
                    for j in range(nt):
                        p[j] += x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j]
                    r += 1
            for k in range(k4, k1):
                wk = W[k, j0:j0 + nt]
                for r in range(n):
                    xk = X[r, k]
                    p = PART[r]
                    for j in range(nt):
                        p[j] += xk * wk[j]
            for r in range(n):
                g = G[r, j0:j0 + nt]
                p = PART[r]
                for j in range(nt):
                    g[j] += p[j]
                    p[j] = 0


@jit
def gemm_acc_k8(G, X, W, PART):
    n, K = X.shape
    N = W.shape[1]
    for j0 in range(0, N, TILE):
        nt = min(j0 + TILE, N) - j0
        for r in range(n):
            p = PART[r]
            for j in range(nt):
                p[j] = 0
        for k0 in range(0, K, BLOCK):
            k1 = min(k0 + BLOCK, K)
            k8 = k1 - (k1 - k0) % 8
            for k in range(k0, k8, 8):
                w0 = W[k, j0:j0 + nt]
                w1 = W[k + 1, j0:j0 + nt]
                w2 = W[k + 2, j0:j0 + nt]
                w3 = W[k + 3, j0:j0 + nt]
                w4 = W[k + 4, j0:j0 + nt]
                w5 = W[k + 5, j0:j0 + nt]
                w6 = W[k + 6, j0:j0 + nt]
                w7 = W[k + 7, j0:j0 + nt]
                r = 0
                while r + 2 <= n:
                    xa, xb = X[r], X[r + 1]
                    a0, a1, a2, a3, a4, a5, a6, a7 = (xa[k], xa[k + 1], xa[k + 2], xa[k + 3], xa[k + 4], xa[k + 5],
                                                      xa[k + 6], xa[k + 7])
                    b0, b1, b2, b3, b4, b5, b6, b7 = (xb[k], xb[k + 1], xb[k + 2], xb[k + 3], xb[k + 4], xb[k + 5],
                                                      xb[k + 6], xb[k + 7])
                    pa, pb = PART[r], PART[r + 1]
                    for j in range(nt):
                        u0, u1, u2, u3, u4, u5, u6, u7 = w0[j], w1[j], w2[j], w3[j], w4[j], w5[j], w6[j], w7[j]
                        pa[j] += (a0 * u0 + a1 * u1 + a2 * u2 + a3 * u3) + (a4 * u4 + a5 * u5 + a6 * u6 + a7 * u7)
                        pb[j] += (b0 * u0 + b1 * u1 + b2 * u2 + b3 * u3) + (b4 * u4 + b5 * u5 + b6 * u6 + b7 * u7)
                    r += 2
                while r < n:
                    x = X[r]
                    p = PART[r]
                    for j in range(nt):
                        p[j] += (x[k] * w0[j] + x[k + 1] * w1[j] + x[k + 2] * w2[j] + x[k + 3] * w3[j]) + \
                                (x[k + 4] * w4[j] + x[k + 5] * w5[j] + x[k + 6] * w6[j] + x[k + 7] * w7[j])
                    r += 1
            for k in range(k8, k1):
                wk = W[k, j0:j0 + nt]
                for r in range(n):
                    xk = X[r, k]
                    p = PART[r]
                    for j in range(nt):
                        p[j] += xk * wk[j]
            for r in range(n):
                g = G[r, j0:j0 + nt]
                p = PART[r]
                for j in range(nt):
                    g[j] += p[j]
                    p[j] = 0


@jit
def gemm_acc_r8(G, X, W, PART):
    """The engine's loop with 8 rows per pass instead of 4: each weight vector is loaded once per 8 rows.
    Each row's arithmetic (its expression and order) is unchanged, so results are bit-identical."""
    n, K = X.shape
    N = W.shape[1]
    for j0 in range(0, N, TILE):
        nt = min(j0 + TILE, N) - j0
        for r in range(n):
            p = PART[r]
            for j in range(nt):
                p[j] = 0
        for k0 in range(0, K, BLOCK):
            k1 = min(k0 + BLOCK, K)
            k4 = k1 - (k1 - k0) % 4
            for k in range(k0, k4, 4):
                w0 = W[k, j0:j0 + nt]
                w1 = W[k + 1, j0:j0 + nt]
                w2 = W[k + 2, j0:j0 + nt]
                w3 = W[k + 3, j0:j0 + nt]
                r = 0
                while r + 8 <= n:
                    xa, xb, xc, xd = X[r], X[r + 1], X[r + 2], X[r + 3]
                    xe, xf, xg, xh = X[r + 4], X[r + 5], X[r + 6], X[r + 7]
                    a0, a1, a2, a3 = xa[k], xa[k + 1], xa[k + 2], xa[k + 3]
                    b0, b1, b2, b3 = xb[k], xb[k + 1], xb[k + 2], xb[k + 3]
                    c0, c1, c2, c3 = xc[k], xc[k + 1], xc[k + 2], xc[k + 3]
                    d0, d1, d2, d3 = xd[k], xd[k + 1], xd[k + 2], xd[k + 3]
                    e0, e1, e2, e3 = xe[k], xe[k + 1], xe[k + 2], xe[k + 3]
                    f0, f1, f2, f3 = xf[k], xf[k + 1], xf[k + 2], xf[k + 3]
                    g0, g1, g2, g3 = xg[k], xg[k + 1], xg[k + 2], xg[k + 3]
                    h0, h1, h2, h3 = xh[k], xh[k + 1], xh[k + 2], xh[k + 3]
                    pa, pb, pc, pd = PART[r], PART[r + 1], PART[r + 2], PART[r + 3]
                    pe, pf, pg, ph = PART[r + 4], PART[r + 5], PART[r + 6], PART[r + 7]
                    for j in range(nt):
                        u0, u1, u2, u3 = w0[j], w1[j], w2[j], w3[j]
                        pa[j] += a0 * u0 + a1 * u1 + a2 * u2 + a3 * u3
                        pb[j] += b0 * u0 + b1 * u1 + b2 * u2 + b3 * u3
                        pc[j] += c0 * u0 + c1 * u1 + c2 * u2 + c3 * u3
                        pd[j] += d0 * u0 + d1 * u1 + d2 * u2 + d3 * u3
                        pe[j] += e0 * u0 + e1 * u1 + e2 * u2 + e3 * u3
                        pf[j] += f0 * u0 + f1 * u1 + f2 * u2 + f3 * u3
                        pg[j] += g0 * u0 + g1 * u1 + g2 * u2 + g3 * u3
                        ph[j] += h0 * u0 + h1 * u1 + h2 * u2 + h3 * u3
                    r += 8
                while r + 4 <= n:
                    xa, xb, xc, xd = X[r], X[r + 1], X[r + 2], X[r + 3]
                    a0, a1, a2, a3 = xa[k], xa[k + 1], xa[k + 2], xa[k + 3]
                    b0, b1, b2, b3 = xb[k], xb[k + 1], xb[k + 2], xb[k + 3]
                    c0, c1, c2, c3 = xc[k], xc[k + 1], xc[k + 2], xc[k + 3]
                    d0, d1, d2, d3 = xd[k], xd[k + 1], xd[k + 2], xd[k + 3]
                    pa, pb, pc, pd = PART[r], PART[r + 1], PART[r + 2], PART[r + 3]
                    for j in range(nt):
                        u0, u1, u2, u3 = w0[j], w1[j], w2[j], w3[j]
                        pa[j] += a0 * u0 + a1 * u1 + a2 * u2 + a3 * u3
                        pb[j] += b0 * u0 + b1 * u1 + b2 * u2 + b3 * u3
                        pc[j] += c0 * u0 + c1 * u1 + c2 * u2 + c3 * u3
                        pd[j] += d0 * u0 + d1 * u1 + d2 * u2 + d3 * u3
                    r += 4
                while r < n:
                    x = X[r]
                    x0 = x[k]
                    x1 = x[k + 1]
                    x2 = x[k + 2]
                    x3 = x[k + 3]
                    p = PART[r]
                    for j in range(nt):
                        p[j] += x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j]
                    r += 1
            for k in range(k4, k1):
                wk = W[k, j0:j0 + nt]
                for r in range(n):
                    xk = X[r, k]
                    p = PART[r]
                    for j in range(nt):
                        p[j] += xk * wk[j]
            for r in range(n):
                g = G[r, j0:j0 + nt]
                p = PART[r]
                for j in range(nt):
                    g[j] += p[j]
                    p[j] = 0


VARIANTS = {"tiled (previous engine)": gemm_acc_tiled, "k8": gemm_acc_k8, "r8": gemm_acc_r8}


def _trial(rng, dtype, n, K, N):
    """One shape and dtype: every variant checked, then timed against the engine's kernel and BLAS."""
    X = rng.uniform(-1, 1, (n, K)).astype(dtype)
    W = rng.uniform(-0.1, 0.1, (K, N)).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    want = X.astype(np.float64) @ W.astype(np.float64)
    npan = -(-N // PANEL)
    Wp = np.zeros((K, npan * PANEL), dtype)
    Wp[:, :N] = W
    Wp = np.ascontiguousarray(Wp.reshape(K, npan, PANEL).transpose(1, 0, 2))
    G_engine = np.zeros((n, N), dtype)
    PART_engine = np.zeros((n, max(TILE, N)), dtype)
    gemm_acc(G_engine, X, Wp, 0, N, PART_engine)
    err = np.max(np.abs(G_engine - want))
    assert err < tol, f"the engine's gemm_acc differs from the float64 product by {err}"
    fns = {"engine gemm_acc (panels)": lambda G=G_engine, PART=PART_engine: gemm_acc(G, X, Wp, 0, N, PART)}
    for name, fn in VARIANTS.items():
        if (n == 1 or dtype == np.float64) and name != "tiled (previous engine)":
            continue
        G = np.zeros((n, N), dtype)
        PART = np.zeros((n, max(TILE, N)), dtype)
        fn(G, X, W, PART)
        err = np.max(np.abs(G - want))
        assert err < tol, f"{name} differs from the float64 product by {err}"
        # every variant sums each element in the same order as the engine's kernel: bit-identical results
        assert np.array_equal(G, G_engine), f"{name} is not bit-identical to the engine's gemm_acc"
        fns[name] = (lambda fn=fn, G=G, PART=PART: fn(G, X, W, PART))
    out = np.empty((n, N), dtype)
    fns["numpy BLAS (np.dot)"] = lambda: np.dot(X, W, out=out)
    samples = harness.measure(fns, rounds=5, calls=max(20, 4000 // n), warmup=50)
    base = np.percentile(samples["engine gemm_acc (panels)"], 50)
    rows = []
    for name, s in samples.items():
        p50 = np.percentile(s, 50)
        rows.append({"dtype": dtype.name, "rows": n, "variant": name, "us": p50 / 1e3, "x engine": p50 / base})
    return rows


def main():
    harness.pin_threads()
    rng = np.random.default_rng(0)
    K, N = 160, 512
    rows = []
    for dtype in (np.float32, np.float64):
        for n in (1, 8, 32, 64, 256):
            rows += _trial(rng, np.dtype(dtype), n, K, N)
    print(harness.table(rows, ["dtype", "rows", "variant", "us", "x engine"],
                        f"gemm_acc variants: G (n, {N}) += X (n, {K}) @ W ({K}, {N}), p50 µs per call "
                        f"(x engine < 1: faster)"))
    return rows


if __name__ == "__main__":
    main()
