"""Register tiles per instruction set: ``gemm_acc`` picks its tile for the code numba generates (AVX-512, AVX2,
128-bit SSE), and on each the rows it computes together equal rows computed alone, bit for bit, and the float64
product within rounding.

Each target runs in a fresh process with a numba cache of its own: the code for a CPU is chosen when numba
starts. The host's own code is always checked (AVX-512 where the machine has it); AVX2 and SSE are what
``NUMBA_CPU_NAME`` with an empty ``NUMBA_CPU_FEATURES`` compiles, which every x86-64 CPU can run. (With
``NUMBA_CPU_NAME`` alone numba keeps the host's features: on an AVX-512 machine ``znver3`` still gets zmm code.)
"""

import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# target -> (environment, expected vector bits or None for "whatever the host has")
TARGETS = {"host": ({}, None)}
if platform.machine().lower() in ("x86_64", "amd64"):
    TARGETS["avx2"] = ({"NUMBA_CPU_NAME": "znver3", "NUMBA_CPU_FEATURES": ""}, 256)
    TARGETS["sse"] = ({"NUMBA_CPU_NAME": "x86-64", "NUMBA_CPU_FEATURES": ""}, 128)

CHECK = textwrap.dedent("""
    import json
    import numpy as np
    import engine
    from engine.kernels.layout import PANEL
    from engine.kernels.linalg import _TILES, gemm_acc, vector_target

    def panels(W):
        K, N = W.shape
        npan = -(-N // PANEL)
        Wp = np.zeros((K, npan * PANEL), W.dtype)
        Wp[:, :N] = W
        return np.ascontiguousarray(Wp.reshape(K, npan, PANEL).transpose(1, 0, 2))

    rng = np.random.default_rng(7)
    worst = {}
    for dtype in (np.float32, np.float64):
        for K, N, koff in ((37, 70, 0), (100, 200, 9), (64, 64, 3), (50, 96, 0), (33, 48, 2)):   # full, narrow, padded
            W = rng.uniform(-1, 1, (K + koff, N)).astype(dtype)
            Wp = panels(W)
            X = rng.uniform(-1, 1, (13, K)).astype(dtype)
            B = rng.uniform(-1, 1, (13, N)).astype(dtype)
            together = B.copy()
            gemm_acc(together, X, Wp, koff, N, np.zeros((13, 128), dtype))
            for r in range(13):                      # every row alone: the one-row tile
                alone = B[r:r + 1].copy()
                gemm_acc(alone, X[r:r + 1], Wp, koff, N, np.zeros((1, 128), dtype))
                assert np.array_equal(alone[0], together[r]), (dtype, K, N, r)
            for n in (2, 4, 6, 8, 10):               # other groupings: six, four, singles
                part = B[:n].copy()
                gemm_acc(part, X[:n], Wp, koff, N, np.zeros((n, 128), dtype))
                assert np.array_equal(part, together[:n]), (dtype, K, N, n)
            # against the exact product: each element is K + 1 roundings of a sum, so within gamma_(K+1) of the
            # sum of magnitudes (Higham, Accuracy and Stability of Numerical Algorithms, eq. 3.5)
            Xe, We, Be = (a.astype(np.longdouble) for a in (X, W[koff:], B))
            u = np.finfo(dtype).eps / 2
            gamma = (K + 1) * u / (1 - (K + 1) * u)
            err = np.abs(together - (Be + Xe @ We))
            assert np.all(err <= gamma * (np.abs(Be) + np.abs(Xe) @ np.abs(We))), (dtype, K, N)
            worst[np.dtype(dtype).name] = max(worst.get(np.dtype(dtype).name, 0.0), float(err.max()))

    # and a model: streams stepped together equal lone streams
    H = 70
    spec = engine.ModelSpec([engine.LSTM(5, H, [{"weight_ih": rng.normal(size=(4 * H, 5)) * 0.3,
                                                "weight_hh": rng.normal(size=(4 * H, H)) * 0.1}]),
                             engine.Dense(rng.normal(size=(3, H)), rng.normal(size=3))])
    model = engine.Model(spec)
    xs = rng.uniform(-2, 2, (20, 7, 5)).astype(np.float32)
    group, lone = model.streams(7), [model.stream() for _ in range(7)]
    for x in xs:
        y = group.step(x)
        for i, s in enumerate(lone):
            assert np.array_equal(s.step(x[i]), y[i])
    print(json.dumps({"target": vector_target(), "tiles32": _TILES(32), "tiles64": _TILES(64), "worst": worst}))
""")


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_tiles_for_each_instruction_set_keep_rows_bit_identical(target, tmp_path):
    env_extra, bits = TARGETS[target]
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), PYTHONPATH=ROOT, **env_extra)
    if target == "host":
        env.pop("NUMBA_CPU_NAME", None)
        env.pop("NUMBA_CPU_FEATURES", None)
    done = subprocess.run([sys.executable, "-c", CHECK], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    vbits, regs = got["target"]
    if bits is not None:
        assert vbits == bits
    assert vbits in (128, 256, 512) and regs in (16, 32)
    lanes32, (rows, width32), one32 = got["tiles32"]
    assert lanes32 == vbits // 32 and rows == 6 and width32 % lanes32 == 0 and 64 % width32 == 0
    assert 6 * width32 // lanes32 <= (24 if regs == 32 else 12)      # the accumulators fit the register file
    assert one32 // lanes32 <= 8
    assert set(got["worst"]) == {"float32", "float64"}
