"""Latency figures, one way everywhere: the CLI's run summary, the demo's, ``rnnjit bench`` and the benchmarks
all report per-call times in microseconds from ``time.perf_counter_ns`` samples through ``summarize``."""

import numpy as np


def summarize(samples_ns):
    """p50, p99 and mean of per-call times given in nanoseconds, in microseconds, and the sample count."""
    us = np.asarray(samples_ns, dtype=np.float64) / 1e3
    p50, p99 = np.percentile(us, [50, 99]) if us.size else (float("nan"), float("nan"))
    return {"p50_us": float(p50), "p99_us": float(p99), "mean_us": float(us.mean()) if us.size else float("nan"),
            "n": int(us.size)}


def describe(samples_ns):
    """'p50 1.23, p99 4.56, mean 1.50' (µs)."""
    s = summarize(samples_ns)
    return f"p50 {s['p50_us']:.2f}, p99 {s['p99_us']:.2f}, mean {s['mean_us']:.2f}"
