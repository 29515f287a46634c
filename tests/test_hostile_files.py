"""The hostile-file corpus (tests/hostile/corpus, written by tests/hostile/make_corpus.py): every file, in every
format, is refused with the engine's own error and the message its manifest names; payloads that would run
code never run (their marker file never appears); and ONNX external data, huge graphs and folding bombs."""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import engine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests", "hostile", "corpus")
MANIFEST = json.load(open(os.path.join(CORPUS, "MANIFEST.json")))["files"]
MARKER = os.path.join(tempfile.gettempdir(), "rnnjit-hostile-marker")
FORMATS = {"torch": (".pt",), "native": (".npz",), "safetensors": (".safetensors",), "onnx": (".onnx",),
           "keras": (".keras", ".h5")}


def test_the_corpus_has_at_least_30_files_and_covers_every_format():
    assert len(MANIFEST) >= 30
    on_disk = set(os.listdir(CORPUS)) - {"MANIFEST.json"}
    assert on_disk == set(MANIFEST)
    for fmt, exts in FORMATS.items():
        assert sum(name.endswith(exts) for name in MANIFEST) >= 4, fmt


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_each_hostile_file_is_refused_with_the_engines_own_error_and_runs_nothing(name, tmp_path, monkeypatch):
    if os.path.exists(MARKER):
        os.remove(MARKER)
    expected = MANIFEST[name]
    monkeypatch.chdir(tmp_path)  # anything written relative to the working directory would land here
    with pytest.raises(engine.RnnjitError) as info:
        engine.load(os.path.join(CORPUS, name))
    classes = [c.__name__ for c in type(info.value).__mro__]
    assert expected["error"] in classes, f"{name}: {type(info.value).__name__}: {info.value}"
    assert expected["match"] in str(info.value), f"{name}: {info.value}"
    assert not os.path.exists(MARKER), f"{name}: a payload ran"
    assert os.listdir(tmp_path) == []


def test_the_corpus_script_regenerates_the_same_files_and_outcomes(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "hostile", "make_corpus.py"), str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    again = json.load(open(tmp_path / "MANIFEST.json"))["files"]
    assert again == MANIFEST
    for name in MANIFEST:   # the very same bytes (seeded templates, fixed zip timestamps and save dates)
        with open(os.path.join(CORPUS, name), "rb") as shipped, open(tmp_path / name, "rb") as made:
            assert shipped.read() == made.read(), f"{name} regenerates differently"


def test_code_carrying_files_are_refused_in_a_fresh_process_too():
    """The same loads in a process that imported nothing else first: no payload runs there either."""
    if os.path.exists(MARKER):
        os.remove(MARKER)
    names = [n for n, e in MANIFEST.items() if e["error"] == "UnsafeFileError"]
    code = ("import sys, engine\nfor p in sys.argv[1:]:\n    try:\n        engine.load(p)\n"
            "    except engine.RnnjitError:\n        pass\n    else:\n        raise SystemExit('loaded ' + p)\n")
    r = subprocess.run([sys.executable, "-c", code, *[os.path.join(CORPUS, n) for n in names]],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not os.path.exists(MARKER)


# ---- ONNX: external data, graph size, folding bombs
def _lstm_onnx(H=3, I=2):
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    W = rng.standard_normal((1, 4 * H, I)).astype(np.float32)
    R = rng.standard_normal((1, 4 * H, H)).astype(np.float32)
    g = helper.make_graph([helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=H)], "g",
                          [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", 1, I])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                          [helper.make_tensor("W", TensorProto.FLOAT, W.shape, W.tobytes(), raw=True),
                           helper.make_tensor("R", TensorProto.FLOAT, R.shape, R.tobytes(), raw=True)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])


def test_external_data_inside_the_models_directory_loads_and_matches(tmp_path):
    import onnx

    model = _lstm_onnx()
    onnx.save(model, str(tmp_path / "plain.onnx"))
    onnx.save(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").exists()
    X = np.random.default_rng(1).standard_normal((7, 2)).astype(np.float32)
    np.testing.assert_array_equal(engine.load(tmp_path / "ext.onnx").run(X), engine.load(tmp_path / "plain.onnx").run(X))


def test_external_data_through_a_symlink_out_of_the_directory_is_refused(tmp_path):
    import onnx

    outside = tmp_path / "outside"
    inside = tmp_path / "model"
    outside.mkdir()
    inside.mkdir()
    onnx.save(_lstm_onnx(), str(outside / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    (inside / "m.onnx").write_bytes((outside / "m.onnx").read_bytes())
    os.symlink(outside / "weights.bin", inside / "weights.bin")
    with pytest.raises(engine.UnsafeFileError, match="outside the model's directory"):
        engine.load(inside / "m.onnx")


def test_external_data_declaring_more_bytes_than_the_file_has_is_refused(tmp_path):
    import onnx

    onnx.save(_lstm_onnx(), str(tmp_path / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    data = (tmp_path / "weights.bin").read_bytes()
    (tmp_path / "weights.bin").write_bytes(data[:40])
    with pytest.raises(engine.FormatError, match="which has 40 bytes"):
        engine.load(tmp_path / "m.onnx")


def test_a_graph_of_more_than_100000_nodes_is_refused_before_it_is_walked(tmp_path):
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Identity", [f"v{i}"], [f"v{i + 1}"]) for i in range(100_001)]
    g = helper.make_graph(nodes, "huge", [helper.make_tensor_value_info("v0", TensorProto.FLOAT, ["T", 1, 2])],
                          [helper.make_tensor_value_info("v100001", TensorProto.FLOAT, None)])
    path = tmp_path / "huge.onnx"
    path.write_bytes(helper.make_model(g).SerializeToString())
    with pytest.raises(engine.FormatError, match="has 100001 nodes; rnnjit reads graphs of up to 100000"):
        engine.load(path)


@pytest.mark.parametrize("op", ["ConstantOfShape", "Expand", "Tile", "Range"])
def test_a_constant_folding_bomb_is_refused_before_allocating(tmp_path, op):
    from onnx import TensorProto, helper

    big = [1 << 20, 1 << 20]
    consts, inputs = {
        "ConstantOfShape": ([("s", TensorProto.INT64, [2], big)], ["s"]),
        "Expand": ([("a", TensorProto.FLOAT, [1], [1.0]), ("s", TensorProto.INT64, [2], big)], ["a", "s"]),
        "Tile": ([("a", TensorProto.FLOAT, [1, 1], [1.0]), ("s", TensorProto.INT64, [2], big)], ["a", "s"]),
        "Range": ([("a", TensorProto.FLOAT, [], [0.0]), ("b", TensorProto.FLOAT, [], [1e12]),
                   ("c", TensorProto.FLOAT, [], [1e-2])], ["a", "b", "c"]),
    }[op]
    model = _lstm_onnx()
    for name, dtype, dims, vals in consts:
        model.graph.initializer.append(helper.make_tensor(name, dtype, dims, vals))
    model.graph.node.append(helper.make_node(op, inputs, ["bomb"]))
    model.graph.output.append(helper.make_tensor_value_info("bomb", TensorProto.FLOAT, None))
    path = tmp_path / "bomb.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(engine.FormatError, match=f"\\({op}\\) would make a tensor of"):
        engine.load(path)


# ---- parsers that hang or crash stay in a child process (Keras/HDF5)
def test_a_keras_file_that_hangs_the_hdf5_library_becomes_a_format_error(monkeypatch):
    """Found by tests/fuzz_loaders.py: one inserted byte sends HDF5's global-heap reader into an endless loop
    inside C code, where no Python signal can interrupt it. The parse runs in a child process that is killed."""
    monkeypatch.setenv("RNNJIT_PARSE_TIMEOUT", "5")
    path = os.path.join(ROOT, "tests", "hostile", "fuzz_findings", "keras_h5_global_heap_hang.h5")
    with pytest.raises(engine.FormatError, match="the HDF5 parser did not finish within 5 s"):
        engine.load(path)


def test_a_parser_crash_in_the_child_becomes_a_format_error(monkeypatch, tmp_path):
    import signal

    from converters import keras as kconv

    def crash(source, dtype, custom_layers=None):
        os.kill(os.getpid(), signal.SIGSEGV)

    monkeypatch.setattr(kconv, "_from_keras", crash)  # the forked child inherits the patch
    (tmp_path / "m.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(engine.FormatError, match=r"the HDF5 library crashed reading this file \(exit code -11\)"):
        engine.load(tmp_path / "m.h5")


def test_unexpected_parser_exceptions_become_format_errors_but_wrong_options_stay_type_errors(tmp_path):
    import numpy.lib.format  # noqa: F401

    from tests.fuzz_loaders import mutate_member, seed_file

    data = mutate_member(seed_file("native", str(tmp_path)), 1, [("set", 12, b"''")])  # a broken .npy header
    (tmp_path / "m.npz").write_bytes(data)
    with pytest.raises(engine.FormatError):
        engine.load(tmp_path / "m.npz")
    with pytest.raises(TypeError, match="got unexpected bogus"):
        engine.load(os.path.join(CORPUS, "torch_zip_truncated.pt"), bogus=1)
