"""ModelSpec validation (clear errors naming the layer and shapes) and the native .npz format."""

import json
import zipfile

import numpy as np
import pytest

import engine
from engine import io as native
from tests.helpers import random_weights
from tests.reference import naive
from tests.tolerances import REFERENCE_F64


def _full_spec(rng):
    """Every layer kind and every recurrent feature the spec can express."""
    I, H = 4, 6
    return engine.ModelSpec([
        engine.Normalize(rng.uniform(-1, 1, I), rng.uniform(0.5, 2, I), name="norm"),
        engine.LSTM(I, H, [random_weights(rng, "lstm", I, H, Ho=3, peephole=True) for _ in range(2)],
                    direction="bidirectional", proj_size=3, clip=2.5, input_forget=True,
                    activations=[["hard_sigmoid", "tanh", ("scaled_tanh", 1.2, 0.8)], ["sigmoid", "elu", "tanh"]],
                    initial_h=rng.uniform(-1, 1, (2, 3)), initial_c=rng.uniform(-1, 1, (2, H))),
        engine.GRU(6, 5, random_weights(rng, "gru", 6, 5), linear_before_reset=False, direction="reverse"),
        engine.RNN(5, 4, random_weights(rng, "rnn", 5, 4), activations=[("leaky_relu", 0.2)],
                   initial_h=rng.uniform(-1, 1, (1, 4))),
        engine.Dense(rng.uniform(-1, 1, (3, 4)), None),
        engine.Activation("LogSoftmax"),
    ], dtype="float64", name="everything", metadata={"source": "test"})


def test_native_format_round_trips_every_layer_and_feature(tmp_path, rng):
    spec = _full_spec(rng)
    path = spec.save(tmp_path / "m.npz")
    loaded = engine.load_spec(path)
    assert repr(loaded) == repr(spec)
    assert (loaded.name, loaded.metadata, loaded.dtype) == ("everything", {"source": "test"}, "float64")
    X = rng.uniform(-1, 1, (2, 7, 4))
    a = engine.Model(spec).run(X, np.array([7, 3]))
    b = engine.load(path).run(X, np.array([7, 3]))
    np.testing.assert_array_equal(a, b)
    # and the loaded model is the model the spec describes
    ref = naive.run(spec, X.transpose(1, 0, 2)[:, :1])
    np.testing.assert_allclose(b[:1].transpose(1, 0, 2), ref, atol=REFERENCE_F64, rtol=0)


def test_loading_a_newer_format_version_is_refused(tmp_path, rng):
    path = _full_spec(rng).save(tmp_path / "m.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays[native.HEADER_KEY].tobytes())
    header["format_version"] = native.FORMAT_VERSION + 1
    arrays[native.HEADER_KEY] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(tmp_path / "newer.npz", **arrays)
    newer, ours = native.FORMAT_VERSION + 1, native.FORMAT_VERSION
    with pytest.raises(engine.FormatError,
                       match=rf"version {newer}; this rnnjit reads versions up to {ours}\. Upgrade"):
        engine.load(tmp_path / "newer.npz")


def test_wrong_magic_and_foreign_npz_are_refused(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(engine.FormatError, match="not written by rnnjit"):
        engine.load_spec(tmp_path / "plain.npz")
    header = np.frombuffer(json.dumps({"magic": "something-else", "format_version": 1}).encode(), np.uint8)
    np.savez(tmp_path / "magic.npz", **{native.HEADER_KEY: header})
    with pytest.raises(engine.FormatError, match="magic"):
        engine.load_spec(tmp_path / "magic.npz")


def test_object_arrays_are_never_unpickled(tmp_path):
    marker = tmp_path / "ran"
    # an object array pickles its elements; loading it with pickle allowed would call eval here
    evil = np.array([_Evil(str(marker))], dtype=object)
    np.savez(tmp_path / "evil.npz", **{native.HEADER_KEY: evil})
    with pytest.raises(engine.FormatError):
        engine.load_spec(tmp_path / "evil.npz")
    assert not marker.exists()


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (eval, (f"open({self.path!r}, 'w').write('x')",))


def test_truncated_file_is_refused(tmp_path, rng):
    path = _full_spec(rng).save(tmp_path / "m.npz")
    data = open(path, "rb").read()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(engine.FormatError):
        engine.load_spec(tmp_path / "cut.npz")


def test_missing_array_is_refused(tmp_path, rng):
    path = _full_spec(rng).save(tmp_path / "m.npz")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "less.npz", "w") as dst:
        for item in src.infolist():
            if "layers.1.dir0.weight_hh" not in item.filename:
                dst.writestr(item, src.read(item.filename))
    with pytest.raises(engine.FormatError, match="lacks it"):
        engine.load_spec(tmp_path / "less.npz")


def test_save_replaces_atomically_and_adds_the_suffix(tmp_path, rng):
    path = _full_spec(rng).save(tmp_path / "model")
    assert path.endswith("model.npz") and not list(tmp_path.glob("*.tmp"))


def test_load_of_missing_or_unknown_files_says_so(tmp_path):
    with pytest.raises(FileNotFoundError):
        engine.load(tmp_path / "nope.npz")
    (tmp_path / "x.weird").write_bytes(b"hello")
    with pytest.raises(engine.FormatError, match="unrecognized model format"):
        engine.load(tmp_path / "x.weird")


@pytest.mark.parametrize("build,match", [
    (lambda r: engine.LSTM(4, 6, random_weights(r, "lstm", 5, 6)),
     r"LSTM layer direction 0: weight_ih .* must have shape \(24, 4\), got \(24, 5\)"),
    (lambda r: engine.GRU(4, 6, random_weights(r, "gru", 4, 7)),
     r"GRU layer direction 0: weight_ih .* must have shape \(18, 4\), got \(21, 4\)"),
    (lambda r: engine.LSTM(4, 6, [random_weights(r, "lstm", 4, 6)], direction="bidirectional"),
     r"needs 2 weight set\(s\), got 1"),
    (lambda r: engine.LSTM(4, 6, {k: v for k, v in random_weights(r, "lstm", 4, 6, Ho=3).items()
                                  if k != "weight_hr"}, proj_size=3),
     r"proj_size=3 needs weight_hr"),
    (lambda r: engine.GRU(4, 6, dict(random_weights(r, "gru", 4, 6), peephole=np.zeros((3, 6)))),
     r"peepholes are an LSTM feature"),
    (lambda r: engine.RNN(4, 6, random_weights(r, "rnn", 4, 6), activations=["softmax"]),
     r"softmax cannot be a recurrent gate function"),
    (lambda r: engine.LSTM(4, 6, random_weights(r, "lstm", 4, 6), activations=["tanh"]),
     r"takes 3 activation functions per direction"),
    (lambda r: engine.RNN(4, 6, random_weights(r, "rnn", 4, 6), clip=-1),
     r"clip must be > 0"),
    (lambda r: engine.RNN(4, 6, random_weights(r, "rnn", 4, 6), activations=["swishy"]),
     r"unknown activation 'swishy'"),
    (lambda r: engine.RNN(4, 6, dict(random_weights(r, "rnn", 4, 6), bias_ih=[np.nan] * 6)),
     r"bias_ih holds NaN"),
    (lambda r: engine.LSTM(4, 6, random_weights(r, "lstm", 4, 6), initial_h=np.zeros((2, 6))),
     r"initial_h .* must have shape \(1, 6\), got \(2, 6\)"),
    (lambda r: engine.Dense(np.zeros((3, 4)), np.zeros(4)), r"Dense layer: bias .* must have shape \(3,\)"),
])
def test_inconsistent_layers_raise_naming_the_layer_and_shapes(rng, build, match):
    with pytest.raises(engine.SpecError, match=match):
        build(rng)


def test_a_chain_that_does_not_fit_names_the_layer(rng):
    with pytest.raises(engine.SpecError, match=r"layer 1 \(Dense\): Dense weight has shape \(2, 5\).*outputs 6"):
        engine.ModelSpec([engine.GRU(3, 6, random_weights(rng, "gru", 3, 6)), engine.Dense(np.zeros((2, 5)))])


def test_activation_names_accept_onnx_spelling_and_defaults():
    assert engine.Activation("HardSigmoid") == engine.Activation("hard_sigmoid", 0.2, 0.5)
    assert engine.Activation("LeakyRelu").alpha == 0.01
    with pytest.raises(engine.SpecError):
        engine.Activation("relu", alpha="x")


def test_spec_weights_are_read_only_copies(rng):
    w = random_weights(rng, "rnn", 2, 3)
    layer = engine.RNN(2, 3, w)
    w["weight_ih"][:] = 0
    assert np.any(layer.weights[0]["weight_ih"] != 0)
    with pytest.raises(ValueError):
        layer.weights[0]["weight_ih"][0, 0] = 1.0


def test_model_is_immutable_and_describes_itself(rng):
    model = engine.Model(_full_spec(rng))
    with pytest.raises(AttributeError):
        model.dtype = "float32"
    text = model.summary()
    assert "sequence-only" in text and "LSTM(4, 6, direction='bidirectional', proj_size=3" in text
    assert model.input_size == 4 and model.output_size == 3
