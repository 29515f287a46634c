"""Per-step latency of one stream, batch 1, state carried, called from a Python loop: the call layers compared.

    python -m benchmarks.step_overhead [--rounds 7] [--steps 3000] [--sizes 32x128,8x32]

Contenders, all on the same packed model and the same kernel code:
  compiled      Stream.step(x)            Cython call layer -> numba @cfunc by pointer
  compiled-out  Stream.step(x, out=buf)   the same, writing into a caller buffer (no allocation)
  twin          Stream.step under RNNJIT_PUREPYTHON semantics: numba dispatcher per layer
  numba-direct  the numba kernel (run_op) called directly with its six arrays, as a user of numba would

Method (shared/PERFORMANCE.md): perf_counter_ns around each call, GC off, warm-up, rounds interleaved
with the contenders' order shuffled each round, p50/p99 over pooled samples, outputs checked equal
before timing, thread pools pinned to 1. The full benchmark suite (onnxruntime, torch, C roofline) is
separate work; this script is the call-layer figure.
"""

import argparse
import gc
import os
import random
import time

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

import engine  # noqa: E402
from engine._ext import twin  # noqa: E402
from engine.kernels.ops import run_op  # noqa: E402
from engine.session import _SingleStream  # noqa: E402


class TwinStream(_SingleStream, twin.StepCore):
    """A Stream on the pure-Python twin, side by side with the compiled one in the same process."""


def build(cell, I, H, seed=0):
    rng = np.random.default_rng(seed)
    G = {"lstm": 4, "gru": 3}[cell]
    w = {"weight_ih": rng.uniform(-0.3, 0.3, (G * H, I)), "weight_hh": rng.uniform(-0.3, 0.3, (G * H, H)),
         "bias_ih": rng.uniform(-0.3, 0.3, G * H), "bias_hh": rng.uniform(-0.3, 0.3, G * H)}
    layer = engine.LSTM(I, H, w) if cell == "lstm" else engine.GRU(I, H, w)
    return engine.Model(engine.ModelSpec([layer]))


def contenders(model, x):
    p = model._packed[0]
    out = np.empty(model.output_size, np.float32)
    s_compiled, s_out = model.stream(), model.stream()
    s_twin = TwinStream(model)
    S = np.zeros((1, p.state_size), np.float32)
    SC = np.zeros(p.scratch_size, np.float32)
    X2 = x.reshape(1, -1)
    Y2 = np.empty((1, model.output_size), np.float32)
    P, M = p.params, p.meta

    def direct():
        run_op(X2, Y2, P, S, SC, M)

    return {
        "compiled": lambda: s_compiled.step(x),
        "compiled-out": lambda: s_out.step(x, out),
        "twin": lambda: s_twin.step(x),
        "numba-direct": direct,
    }, {"compiled": s_compiled, "compiled-out": s_out, "twin": s_twin}


def measure(fns, rounds, steps):
    samples = {name: [] for name in fns}
    names = list(fns)
    for fn in fns.values():  # warm-up
        for _ in range(500):
            fn()
    gc.disable()
    try:
        for _ in range(rounds):
            random.shuffle(names)
            for name in names:
                fn = fns[name]
                buf = samples[name]
                clock = time.perf_counter_ns
                for _ in range(steps):
                    t0 = clock()
                    fn()
                    buf.append(clock() - t0)
    finally:
        gc.enable()
    return {name: (np.percentile(v, 50) / 1000, np.percentile(v, 99) / 1000) for name, v in samples.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--sizes", default="32x128,8x32,32x64")
    args = ap.parse_args(argv)
    print(f"rnnjit {engine.__version__}, compiled call layer: {engine.COMPILED}; float32, batch 1; µs per step")
    print(f"{'cell':5} {'I x H':>8} " + " ".join(f"{n:>22}" for n in
                                                 ("compiled p50/p99", "compiled-out p50/p99", "twin p50/p99",
                                                  "numba-direct p50/p99")))
    for cell in ("lstm", "gru"):
        for size in args.sizes.split(","):
            I, H = map(int, size.split("x"))
            model = build(cell, I, H)
            x = np.random.default_rng(1).uniform(-1, 1, I).astype(np.float32)
            fns, streams = contenders(model, x)
            # correctness before timing: every contender gives the same first outputs
            ref = model.stream().step_n(np.stack([x] * 3))
            for name in ("compiled", "twin"):
                got = np.stack([streams[name].step(x) for _ in range(3)])
                np.testing.assert_array_equal(got, ref, err_msg=name)
            res = measure(fns, args.rounds, args.steps)
            print(f"{cell:5} {size:>8} " + " ".join(f"{res[n][0]:>12.2f} /{res[n][1]:>7.2f}" for n in
                                                     ("compiled", "compiled-out", "twin", "numba-direct")))


if __name__ == "__main__":
    main()
