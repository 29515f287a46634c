"""The one table of model formats (converters/formats.py): a file is recognized by its content whatever its
name, the extension is a fallback only, and a loading option a format does not take is a usage error
(TypeError; the CLI's exit 2) on every format, raised before the file is read.

Files are written by the frameworks that own the formats (torch.save, torch.onnx.export, Keras, safetensors);
expected outputs come from torch or Keras, not from rnnjit.
"""

import os
import re
import shutil

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import converters  # noqa: E402
import engine  # noqa: E402
from converters.formats import BY_NAME, FORMATS, identify  # noqa: E402
from tests.test_cli import rnnjit  # noqa: E402
from tests.tolerances import PARITY_F32  # noqa: E402

I, H = 3, 5


def _save_torch_formats(net, d, dtype):
    """``net``'s weights as a zip and a legacy checkpoint, safetensors, an .npz of arrays, and an ONNX export."""
    torch.save(net.state_dict(), d / "m.pt")
    torch.save(net.state_dict(), d / "legacy.pt", _use_new_zipfile_serialization=False)
    from safetensors.torch import save_file

    save_file(dict(net.state_dict()), str(d / "m.safetensors"))
    np.savez(d / "arrays.npz", **{k: v.numpy() for k, v in net.state_dict().items()})
    torch.onnx.export(net, torch.zeros(1, 4, I, dtype=dtype), str(d / "m.onnx"), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "b", 1: "t"}})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One small GRU model in every format, under its usual name, plus the input and torch's/Keras's output."""
    d = tmp_path_factory.mktemp("formats")
    torch.manual_seed(3)
    net = nn.GRU(I, H, batch_first=True).eval()
    X = np.random.default_rng(5).uniform(-1, 1, (7, I)).astype(np.float32)
    with torch.no_grad():
        Y = net(torch.from_numpy(X)[None])[0][0].numpy()
    _save_torch_formats(net, d, torch.float32)
    engine.load(d / "m.pt").save(d / "native.npz")
    kmodel = keras.Sequential([keras.Input((None, I)), keras.layers.GRU(H, return_sequences=True)])
    kmodel.save(str(d / "m.keras"))
    kmodel.save(str(d / "m.h5"))
    kY = np.asarray(kmodel.predict(X[None], verbose=0))[0]
    return {"dir": d, "X": X, "Y": Y, "kY": kY}


# file written under its usual name -> (the name it is given here, the format its content shows)
RENAMED = {
    "m.pt": ("checkpoint.pkl", "torch-zip"),
    "legacy.pt": ("weights.model", "torch-legacy"),
    "m.h5": ("model.bin", "keras-h5"),
    "m.onnx": ("model", "onnx"),
    "m.safetensors": ("weights.ckpt", "safetensors"),
    "m.keras": ("exported", "keras"),
    "arrays.npz": ("arrays.data", "npz-arrays"),
    "native.npz": ("native.pt", "native"),
}


@pytest.mark.parametrize("original", sorted(RENAMED))
def test_a_file_is_recognized_by_its_content_whatever_its_name(files, original, tmp_path):
    name, fmt = RENAMED[original]
    path = tmp_path / name
    shutil.copy(files["dir"] / original, path)
    assert identify(path).name == fmt
    assert identify(files["dir"] / original).name == fmt   # and under its usual name too
    expected = files["kY"] if fmt.startswith("keras") else files["Y"]
    np.testing.assert_allclose(engine.load(path).run(files["X"]), expected, atol=PARITY_F32, rtol=0)


def test_every_format_in_the_table_is_sniffed_by_a_test():
    assert {fmt for _, fmt in RENAMED.values()} == set(BY_NAME)


def test_from_torch_reads_a_renamed_checkpoint_and_refuses_another_format_by_name(files, tmp_path):
    shutil.copy(files["dir"] / "legacy.pt", tmp_path / "m.model")
    np.testing.assert_allclose(engine.Model(converters.from_torch(tmp_path / "m.model")).run(files["X"]),
                               files["Y"], atol=PARITY_F32, rtol=0)
    with pytest.raises(engine.FormatError, match="ONNX file, not a PyTorch checkpoint"):
        converters.from_torch(files["dir"] / "m.onnx")


def test_content_wins_over_a_misleading_extension(files, tmp_path):
    shutil.copy(files["dir"] / "m.pt", tmp_path / "really_a_checkpoint.onnx")
    assert identify(tmp_path / "really_a_checkpoint.onnx").name == "torch-zip"


def test_unrecognizable_content_falls_back_to_the_extension_whose_reader_says_what_is_wrong(tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"\x00" * 64)
    assert identify(tmp_path / "broken.onnx").name == "onnx"
    with pytest.raises(engine.FormatError, match="broken.onnx"):
        engine.load(tmp_path / "broken.onnx")
    (tmp_path / "noise").write_bytes(b"\x00" * 64)
    with pytest.raises(engine.FormatError, match=r"unrecognized model format '\(no extension\)'.*ONNX"):
        engine.load(tmp_path / "noise")
    # a pickle that is not a torch.save file is not taken for one
    import pickle

    (tmp_path / "other").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    with pytest.raises(engine.FormatError, match="unrecognized model format"):
        engine.load(tmp_path / "other")


# one file per format and an option that format does not take
WRONG_OPTION = {"m.onnx": "layers", "m.keras": "key", "m.h5": "head_activation", "native.npz": "ignore",
                "m.pt": "isolate", "m.safetensors": "order", "arrays.npz": "bogus", "legacy.pt": "source"}


@pytest.mark.parametrize("name", sorted(WRONG_OPTION))
def test_a_wrong_option_is_a_type_error_naming_what_the_format_takes(files, name):
    option = WRONG_OPTION[name]
    fmt = identify(files["dir"] / name)
    with pytest.raises(TypeError, match=f"{re.escape(fmt.title)}.*got unexpected {option}") as info:
        engine.load(files["dir"] / name, **{option: "x"})
    assert not isinstance(info.value, engine.FormatError)
    for takes in fmt.options:
        assert takes in str(info.value)


@pytest.mark.parametrize("name,flag", [("m.onnx", ["--layers", "rnn"]), ("m.keras", ["--key", "model"]),
                                       ("m.h5", ["--ignore", "x"]), ("native.npz", ["--head-activation", "relu"])])
def test_a_wrong_option_on_the_command_line_is_a_usage_error(files, name, flag):
    r = rnnjit("info", files["dir"] / name, "--no-timing", *flag)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "got unexpected" in r.stderr and "malformed" not in r.stderr


def test_each_format_lists_the_options_its_reader_really_takes():
    torch_options = {"key", "layers", "activations", "head_activation", "rnn_nonlinearity", "ignore", "dtype"}
    for fmt in FORMATS:
        expected = {"native": set(), "onnx": {"dtype", "time_axis", "batch_axis", "fixed_inputs", "frame_shape",
                                              "frame_context", "state_pairs"}, "keras": {"dtype", "custom_layers"},
                    "keras-h5": {"dtype", "custom_layers"}}.get(
            fmt.name, torch_options)
        assert set(fmt.options) == expected, fmt.name


def test_info_describes_a_renamed_file_by_its_content(files, tmp_path):
    shutil.copy(files["dir"] / "m.onnx", tmp_path / "model")
    r = rnnjit("info", tmp_path / "model", "--no-timing")
    assert r.returncode == 0, r.stderr
    assert "format: ONNX (opset" in r.stdout


@pytest.fixture(scope="module")
def files64(tmp_path_factory):
    """The same GRU trained in float64, in every format that can hold float64 weights."""
    d = tmp_path_factory.mktemp("formats64")
    torch.manual_seed(4)
    net = nn.GRU(I, H, batch_first=True).double().eval()
    X = np.random.default_rng(6).uniform(-1, 1, (9, I))
    with torch.no_grad():
        Y = net(torch.from_numpy(X)[None])[0][0].numpy()
    _save_torch_formats(net, d, torch.float64)
    kmodel = keras.Sequential([keras.Input((None, I), dtype="float64"),
                               keras.layers.GRU(H, return_sequences=True, dtype="float64")])
    kmodel.save(str(d / "m.keras"))
    with torch.no_grad():   # (predict() would feed the input as float32)
        kY = kmodel(torch.from_numpy(X[None])).numpy()[0]
    return {"dir": d, "X": X, "Y": Y, "net": net, "kY": kY}


@pytest.mark.parametrize("name", ["m.pt", "legacy.pt", "m.safetensors", "arrays.npz", "m.onnx", "m.keras"])
def test_a_float64_file_loads_as_a_float64_model_unless_dtype_says_otherwise(files64, name):
    """Its weights all float64, a file becomes a float64 model (the framework's float64 to 1e-12, where float32
    would be ~1e-7 off); dtype="float32" still asks for float32; a float32 file stays float32."""
    path = files64["dir"] / name
    want = files64["kY"] if name == "m.keras" else files64["Y"]
    model = engine.load(path)
    assert model.dtype == np.float64, f"{name} loaded as {model.dtype}"
    np.testing.assert_allclose(model.run(files64["X"]), want, rtol=0, atol=1e-12)
    assert engine.load(path, dtype="float32").dtype == np.float32
    assert engine.load(path).save(files64["dir"] / f"{name}.native.npz") and \
        engine.load(files64["dir"] / f"{name}.native.npz").dtype == np.float64


def test_a_float32_file_and_a_live_module_keep_their_own_dtype(files, files64):
    assert engine.load(files["dir"] / "m.pt").dtype == np.float32
    assert engine.load(files["dir"] / "m.onnx").dtype == np.float32
    assert engine.Model(converters.from_torch(files64["net"])).dtype == np.float64
