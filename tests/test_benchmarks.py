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
        assert {"rnnjit step", "onnxruntime io_binding", "torch nn.LSTMCell", "numpy", "C roofline"} <= names
