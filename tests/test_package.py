"""Packaging and the call layer: what `import engine` pulls in, the compiled layer is built and used, the
pure-Python twin gives the same results (the streaming and parity suites rerun under it), a missing
extension degrades to the twin with one warning, and the console entry points run."""

import os
import subprocess
import sys
import textwrap

import numpy as np

import engine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code, **env):
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT, env=full_env, timeout=600)


def test_import_engine_does_not_import_onnx_torch_or_keras():
    r = _python("""
        import sys, numpy as np
        import engine
        spec = engine.ModelSpec([engine.GRU(2, 3, {"weight_ih": np.ones((9, 2)), "weight_hh": np.ones((9, 3))})])
        engine.Model(spec).stream().step(np.zeros(2))
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("onnx", "torch", "keras", "onnxruntime",
                                                                      "h5py", "tensorflow"))
        print("HEAVY", heavy)
    """)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout, r.stdout


def test_the_compiled_call_layer_is_built_and_in_use():
    # .ci/run installs with a C compiler and Cython: there the extension must exist, not silently fall back
    assert os.environ.get("RNNJIT_PUREPYTHON", "") in ("", "0"), "run this suite without RNNJIT_PUREPYTHON"
    assert engine.COMPILED
    from engine._ext import _stepcore

    assert isinstance(engine.Model(engine.ModelSpec([engine.Activation("tanh")], input_size=3)).stream(),
                      _stepcore.StepCore)


def test_the_pure_python_twin_passes_the_streaming_and_parity_suites():
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "tests/test_streams.py", "tests/test_parity_torch.py", "tests/test_features.py",
                        "tests/test_graph.py", "tests/test_frontend.py", "tests/test_rate.py",
                        "-k", "not compiled"],
                       capture_output=True, text=True, cwd=ROOT, timeout=1200,
                       env=dict(os.environ, RNNJIT_PUREPYTHON="1"))
    tail = r.stdout[-3000:] + r.stderr[-2000:]
    assert r.returncode == 0, tail
    assert " passed" in r.stdout and " failed" not in r.stdout, tail


def test_twin_is_really_used_under_the_environment_variable():
    r = _python("""
        import engine, numpy as np
        from engine._ext import twin
        s = engine.Model(engine.ModelSpec([engine.Activation("tanh")], input_size=3)).stream()
        print("TWIN", engine.COMPILED, isinstance(s, twin.StepCore), [round(float(v), 4) for v in s.step(np.ones(3))])
    """, RNNJIT_PUREPYTHON="1")
    assert r.returncode == 0, r.stderr
    assert "TWIN False True [0.7616, 0.7616, 0.7616]" in r.stdout, r.stdout


def test_a_missing_extension_falls_back_to_the_twin_with_one_warning():
    r = _python("""
        import sys, warnings
        class Block:  # what an install without a C compiler looks like: the module is not there
            def find_spec(self, name, path=None, target=None):
                if name == "engine._ext._stepcore":
                    raise ImportError("No module named 'engine._ext._stepcore'")
        sys.meta_path.insert(0, Block())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import engine, engine.session, engine.model
            import numpy as np
            y = engine.Model(engine.ModelSpec([engine.Activation("relu")], input_size=2)).stream().step(np.array([-1., 2.]))
        msgs = [str(w.message) for w in caught if "compiled call layer" in str(w.message)]
        print("COUNT", len(msgs), "COMPILED", engine.COMPILED, "Y", y.tolist())
    """)
    assert r.returncode == 0, r.stderr
    assert "COUNT 1 COMPILED False Y [0.0, 2.0]" in r.stdout, r.stdout


def test_the_console_script_and_module_entry_point_run(tmp_path):
    spec = engine.ModelSpec([engine.GRU(2, 3, {"weight_ih": np.ones((9, 2)), "weight_hh": np.ones((9, 3))}),
                             engine.Dense(np.ones((1, 3)))])
    path = spec.save(tmp_path / "m.npz")
    r = subprocess.run([sys.executable, "-m", "engine", "info", path], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "GRU(2, 3, linear_before_reset=1): 2 -> 3" in r.stdout and "Dense(3 -> 1, no bias)" in r.stdout
    r = subprocess.run(["rnnjit", "--version"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith(f"rnnjit {engine.__version__}"), r.stderr
    r = subprocess.run(["rnnjit", "info", str(tmp_path / "missing.npz")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 3 and "no such model file" in r.stderr


def test_a_second_process_loads_the_kernels_from_the_cache_instead_of_compiling(tmp_path):
    code = """
        import numpy as np, engine
        spec = engine.ModelSpec([engine.LSTM(3, 4, {"weight_ih": np.ones((16, 3)), "weight_hh": np.ones((16, 4))})])
        model = engine.Model(spec)
        model.stream().step(np.zeros(3))
        model.run(np.zeros((5, 3)))
    """
    env = dict(NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"), NUMBA_DEBUG_CACHE="1")
    first = _python(code, **env)
    second = _python(code, **env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr

    def events(run, kernel):
        return [line.split(" from ")[0].split(" to ")[0] for line in run.stdout.splitlines()
                if line.startswith("[cache]") and kernel in line]

    for kernel in ("lstm.lstm_fast_entry", "lstm.lstm_sequence"):  # the stepping entry point and a sequence kernel
        assert "[cache] data saved" in events(first, kernel), first.stdout[-2000:]
        assert "[cache] data loaded" in events(second, kernel), second.stdout[-2000:]
        assert "[cache] data saved" not in events(second, kernel), second.stdout[-2000:]
