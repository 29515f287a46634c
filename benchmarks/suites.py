"""The benchmark suites: step, sequence, streams, coldstart, memory. Each returns (rows, text table)."""

import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

from . import harness
from .contenders import OnnxRuntime, TorchCell, step_contenders, torch_module, torch_reference, verify

STEP_SIZES = [(8, 32), (32, 64), (32, 128), (64, 256), (128, 512)]


# ---------------------------------------------------------------------------------------------------
# step: per-step latency, batch 1, state carried, called from a Python loop
# ---------------------------------------------------------------------------------------------------

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
        fns = {c.name: (lambda c=c: c.step(x)) for c in contenders}
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
        base = np.percentile(results["rnnjit run"], 50)
        for name, samples in results.items():
            p50 = float(np.percentile(samples, 50)) / 1000.0          # us per call
            per_step = p50 / T
            rows.append({"batch": batch, "T": T, "contender": name, "us/step": per_step,
                         "steps/s": T * batch / (p50 * 1e-6), "x rnnjit": p50 * 1000.0 / base,
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
        base = np.percentile(results["rnnjit streams(n)"], 50)
        for name, samples in results.items():
            p50 = float(np.percentile(samples, 50)) / 1000.0
            rows.append({"streams": n, "contender": name, "us per call": p50, "us per stream-step": p50 / n,
                         "x rnnjit": p50 * 1000.0 / base})
    text = harness.table(rows, ["streams", "contender", "us per call", "us per stream-step", "x rnnjit"],
                         f"streams: n independent LSTM {I}x{H} streams, one timestep each per call")
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
    print(t1 - t0, t2 - t1, t3 - t2, t3 - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def _fresh(path, env):
    r = subprocess.run([sys.executable, "-c", _COLD.format(path=path)], capture_output=True, text=True,
                       env=dict(os.environ, **env), timeout=600)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return [float(v) for v in r.stdout.split()]


def coldstart(quick=False):
    import converters

    tmp = tempfile.mkdtemp(prefix="rnnjit-cold-")
    path = converters.from_torch(torch_module("lstm", 32, 128)).save(os.path.join(tmp, "model.npz"))
    rows = []
    cold = _fresh(path, {"NUMBA_CACHE_DIR": os.path.join(tmp, "numba-cache")})   # an empty cache: compile
    warm = [_fresh(path, {"NUMBA_CACHE_DIR": os.path.join(tmp, "numba-cache")}) for _ in range(2 if quick else 5)]
    for label, runs in (("empty numba cache", [cold]), ("warm numba cache (median)", warm)):
        med = np.median(np.array(runs), axis=0)
        rows.append({"start": label, "import s": med[0], "load s": med[1], "first step s": med[2], "total s": med[3]})
    text = harness.table(rows, ["start", "import s", "load s", "first step s", "total s"],
                         "coldstart: a fresh process: import engine, load an LSTM 32x128 .npz, first step")
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


SUITES = {"step": step, "sequence": sequence, "streams": streams, "coldstart": coldstart, "memory": memory}

