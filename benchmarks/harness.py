"""Measurement harness shared by the suites: pinned thread pools, interleaved shuffled rounds, p50/p99, machine
info, the terminal table and the JSON report.

Method (shared/PERFORMANCE.md): perf_counter_ns around each call, GC off while measuring, warm-up first,
several rounds with the contenders' order shuffled each round, percentiles over the pooled samples, every
contender's output checked before it is timed, every thread pool pinned to 1 unless a suite says otherwise.
"""

import gc
import json
import os
import platform
import random
import sys
import time

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")


def pin_threads():
    """Pin every thread pool to 1 (call before numpy / torch / onnxruntime are imported)."""
    for var in THREAD_VARS:
        os.environ[var] = "1"
    try:
        import torch

        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
    except (ImportError, RuntimeError):
        pass


def machine_info():
    info = {"python": sys.version.split()[0], "platform": platform.platform(), "cpu": platform.processor(),
            "cores": os.cpu_count(), "threads": {v: os.environ.get(v) for v in THREAD_VARS},
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
            fh.seek(0)
            flags = next((line for line in fh if line.startswith("flags")), "")
            info["simd"] = [f for f in ("avx2", "fma", "avx512f") if f" {f}" in flags]
    except OSError:
        pass
    versions = {}
    for name in ("numpy", "numba", "onnxruntime", "torch", "engine"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "?")
        except ImportError:
            versions[name] = None
    import engine

    versions["rnnjit_call_layer"] = "compiled" if engine.COMPILED else "pure-python twin"
    info["versions"] = versions
    return info


def measure(fns, rounds, calls, warmup=200, collect=False, settle=0.0):
    """{name: samples_ns} for zero-argument callables, interleaved and shuffled per round. ``collect``: free
    reference cycles after each contender's calls, outside the timing (a framework that builds cyclic graphs
    per call, as Keras does, would otherwise grow by gigabytes with the collector off). ``settle``: seconds to
    wait, then three untimed calls, before each contender's calls in a round, so that threads another contender
    left spinning (onnxruntime's pool, rnnjit's worker) have gone to sleep and do not take its cores."""
    names = list(fns)
    samples = {n: [] for n in names}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for _ in range(rounds):
            random.shuffle(names)
            for name in names:
                fn, out = fns[name], samples[name]
                if settle:
                    time.sleep(settle)
                    for _ in range(3):
                        fn()
                for _ in range(calls):
                    t0 = clock()
                    fn()
                    out.append(clock() - t0)
                if collect:
                    gc.collect()
    finally:
        gc.enable()
    return samples


def percentiles(samples_ns):
    """p50 / p99 (µs) and the count of pooled samples in ns: engine.latency's summary, the one the CLI and
    ``rnnjit bench`` print."""
    from engine.latency import summarize

    s = summarize(samples_ns)
    return {"p50_us": s["p50_us"], "p99_us": s["p99_us"], "n": s["n"]}


def table(rows, columns, title=None):
    """A plain aligned table; rows are dicts."""
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    lines = [title] if title else []
    lines.append("  ".join(c.ljust(widths[c]) for c in columns))
    lines.append("  ".join("-" * widths[c] for c in columns))
    for r in rows:
        lines.append("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns))
    return "\n".join(lines)


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def write_json(path, suite, results, info):
    with open(path, "w") as fh:
        json.dump({"suite": suite, "machine": info, "results": results}, fh, indent=1)
