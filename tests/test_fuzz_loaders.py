"""Fuzzing every loader: 10,000 mutated valid files per format (tests/fuzz_loaders.py), each format in its own
process so that a segfault or a hang is reported as this test's failure rather than ending the run. Two
formats run at a time (this machine has 2 cores). Only the engine's own exceptions may come out."""

import os
import subprocess
import sys
import time

import pytest

from tests.fuzz_loaders import FORMATS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 10_000


@pytest.mark.slow
def test_ten_thousand_mutated_files_per_format_raise_only_rnnjit_errors():
    env = dict(os.environ, PYTHONPATH=ROOT, RNNJIT_PARSE_TIMEOUT="3")
    pending, running, results = list(FORMATS), {}, {}
    while pending or running:
        while pending and len(running) < 2:
            fmt = pending.pop(0)
            running[fmt] = subprocess.Popen([sys.executable, "-m", "tests.fuzz_loaders", fmt, str(N)], cwd=ROOT,
                                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for fmt, proc in list(running.items()):
            if proc.poll() is not None:
                out, err = proc.communicate()
                results[fmt] = (proc.returncode, out, err)
                del running[fmt]
        time.sleep(0.5)
    failures = {fmt: (rc, out[-1500:], err[-3000:]) for fmt, (rc, out, err) in results.items() if rc != 0}
    assert not failures, failures  # a negative return code is a signal: -11 a segfault
    for fmt, (_, out, _) in results.items():
        assert f"{fmt}: {N} inputs" in out, out[-500:]
