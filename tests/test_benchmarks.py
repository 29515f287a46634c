"""Smoke test: every benchmark suite runs in its quickest form and reports what it says it reports.
No timing assertions (timing belongs in the benchmark tables); every suite verifies its contenders against
PyTorch before it times them, so a wrong contender fails here."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from benchmarks.suites import SUITES


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_each_benchmark_suite_runs_in_its_quick_form(tmp_path, suite):
    report = tmp_path / f"{suite}.json"
    r = subprocess.run([sys.executable, "-m", "benchmarks", suite, "--quick", "--json", str(report)],
                       capture_output=True, text=True, timeout=900, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[1])})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    data = json.loads(report.read_text())
    assert data["suite"] == suite and data["results"], data
    assert data["machine"]["cores"] and data["machine"]["versions"]["numpy"]
    assert f"{suite}:" in r.stdout  # the table's title line
    if suite == "step":
        names = {row["contender"] for row in data["results"]}
        assert {"rnnjit step", "onnxruntime io_binding", "torch nn.LSTMCell", "numpy", "C roofline",
                "empty call (timer floor)"} <= names
    if suite == "accuracy":
        names = {(row["cell"], row["steps"], row["contender"]) for row in data["results"]}
        assert {(c, t, k) for c in ("lstm 32x128", "gru 32x128") for t in (40, 2000)
                for k in ("rnnjit step", "rnnjit run", "onnxruntime", "torch float32")} <= names
        assert all(0 < row["max abs error"] < 1e-5 for row in data["results"])
    if suite == "layers":
        names = {(row["kind"], row["contender"]) for row in data["results"]}
        assert {(k, c) for k in ("temporal_conv1d", "frame_conv")
                for c in ("rnnjit step(out=)", "C loop (same arithmetic)", "torch Conv1d (one step's window)")} <= names
        assert {("tcn block", c) for c in ("rnnjit step(out=)", "rnnjit, fusions off", "torch (the 31-frame window)",
                                           "onnxruntime (the 31-frame window)")} <= names


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kernel_variants_check_every_variant_before_timing_it(dtype):
    # odd sizes: a partial last panel, K not a multiple of the unrolling, rows left over after six and four
    import numpy as np

    from benchmarks import kernel_variants

    for n in (1, 3, 7, 8, 13):
        rows = kernel_variants._trial(np.random.default_rng(n), np.dtype(dtype), n, 37, 70)
        names = {row["variant"] for row in rows}
        assert {"engine gemm_acc (panels)", "tiled (previous engine)", "numpy BLAS (np.dot)"} <= names
        assert all(row["dtype"] == dtype and row["us"] > 0 for row in rows)
