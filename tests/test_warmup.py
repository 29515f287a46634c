"""Compiling ahead of time: ``rnnjit warmup`` fills numba's cache, and a second process then compiles nothing
(its first step and run load every kernel); the first use says it is compiling before the seconds go."""

import os
import subprocess
import sys

import numpy as np

import engine

SECOND = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
import numpy as np
from numba.core.event import install_recorder
import engine
from engine.kernels import entry
with install_recorder("numba:compile") as rec:
    m = engine.load(sys.argv[1])
    m.stream().step(np.zeros(3, np.float32))
    m.streams(4).step(np.zeros((4, 3), np.float32))
    m.run(np.zeros((1, 5, 3), np.float32))
    m.run(np.zeros((engine.model.BLAS_MIN_BATCH, 5, 3), np.float32))
print("compiled", sum(1 for _, e in rec.buffer if e.is_start), len(entry.COMPILED))
"""


def test_after_rnnjit_warmup_a_new_process_compiles_nothing(tmp_path):
    rng = np.random.default_rng(0)
    H = 6
    spec = engine.ModelSpec([engine.GRU(3, H, {"weight_ih": rng.normal(size=(3 * H, 3)),
                                               "weight_hh": rng.normal(size=(3 * H, H))}),
                             engine.Dense(rng.normal(size=(2, H))), engine.Activation("sigmoid")])
    path = spec.save(tmp_path / "m.npz")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("RNNJIT_NO_CACHE", None)
    first = subprocess.run([sys.executable, "-m", "engine", "warmup", str(path)], capture_output=True, text=True,
                           env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    assert "rnnjit: compiling the gru kernel for float32" in first.stderr, first.stderr
    assert "step kernels: gru float32" in first.stdout and f"numba cache: {tmp_path / 'cache'}" in first.stdout
    second = subprocess.run([sys.executable, "-c", SECOND, str(path)], capture_output=True, text=True, env=env,
                            timeout=600)
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["compiled", "0", "0"], second.stdout + second.stderr
    assert "compiling" not in second.stderr


def test_warmup_reports_what_it_did_for_models_specs_and_paths(tmp_path):
    rng = np.random.default_rng(1)
    spec = engine.ModelSpec([engine.Dense(rng.normal(size=(2, 3))), engine.Activation("tanh")])
    report = engine.warmup(spec, engine.Model(spec, dtype="float64"), spec.save(tmp_path / "d.npz"))
    assert set(report) == {"kernels compiled", "functions compiled", "seconds"} and report["seconds"] >= 0
