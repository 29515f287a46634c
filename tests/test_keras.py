"""Keras 3 models (torch backend) saved as .keras and legacy .h5, loaded without Keras, against Keras's own
predictions: randomized stacks of LSTM / GRU (reset_after True and False) / SimpleRNN / Bidirectional /
Dense / TimeDistributed / Activation / Dropout; return_sequences and go_backwards semantics; the gate
permutation checked against Keras's own gate slices; unsupported layers refused by name."""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402  (the [test] extra installs it; missing, this module fails rather than skips)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import converters  # noqa: E402
import engine  # noqa: E402
from tests.tolerances import PARITY_F32, assert_parity  # noqa: E402

L = keras.layers
CELLS = ["LSTM", "GRU", "GRU_reset_before", "SimpleRNN"]
CELL_ACTS = ["tanh", "sigmoid", "hard_sigmoid", "relu", "softsign", "linear"]


def _cell(kind, units, rng, **kw):
    acts = {"activation": str(rng.choice(["tanh", "relu", "softsign"]))}
    if kind != "SimpleRNN":
        acts["recurrent_activation"] = str(rng.choice(["sigmoid", "hard_sigmoid"]))
    if kind == "LSTM":
        return L.LSTM(units, **acts, **kw)
    if kind.startswith("GRU"):
        return L.GRU(units, reset_after=kind == "GRU", **acts, **kw)
    return L.SimpleRNN(units, activation=acts["activation"], **kw)


def random_model(rng):
    """A random stack and how its Keras output relates to Model.run's."""
    I = int(rng.integers(1, 6))
    layers = [keras.Input((None, I))]
    n = int(rng.integers(1, 4))
    for k in range(n):
        kind = str(rng.choice(CELLS))
        units = int(rng.choice([1, 3, 8]))
        last = k == n - 1
        seqs = not (last and rng.random() < 0.3)
        if rng.random() < 0.3 and seqs:
            layers.append(L.Bidirectional(_cell(kind, units, rng, return_sequences=True)))
        else:
            back = bool(not seqs and rng.random() < 0.5)
            layers.append(_cell(kind, units, rng, return_sequences=seqs, go_backwards=back,
                                use_bias=bool(rng.random() < 0.8)))
        if rng.random() < 0.3:
            layers.append(L.Dropout(0.5))
    head = L.Dense(int(rng.integers(1, 4)), activation=str(rng.choice(["linear", "sigmoid", "softmax", "relu"])))
    layers.append(L.TimeDistributed(head) if rng.random() < 0.3 and seqs else head)
    if rng.random() < 0.3:
        layers.append(L.Activation(str(rng.choice(["tanh", "elu", "selu", "softplus"]))))
    model = keras.Sequential(layers)
    for w in model.weights:  # non-trivial weights, biases included, in a stable range
        w.assign(rng.uniform(-0.6, 0.6, w.shape).astype("float32"))
    return model


def _keras_view(spec, Y):
    """Model.run's output (B, T, O) as Keras returns it."""
    out = spec.metadata["keras.output"]
    return {"sequence": Y, "last": Y[:, -1], "first": Y[:, 0]}[out]


@pytest.mark.parametrize("ext", [".keras", ".h5"])
@pytest.mark.parametrize("seed", range(8))
def test_random_keras_models_match_keras_predictions(tmp_path, ext, seed):
    rng = np.random.default_rng(seed + (100 if ext == ".h5" else 0))
    model = random_model(rng)
    X = rng.uniform(-1, 1, (3, 9, model.inputs[0].shape[-1])).astype(np.float32)
    expected = np.asarray(model.predict(X, verbose=0))
    path = str(tmp_path / f"m{ext}")
    model.save(path)
    spec = converters.from_keras(path)
    m = engine.load(path)
    Y = m.run(X)
    assert_parity(_keras_view(spec, Y), expected, PARITY_F32, "float32", f"seed {seed} {ext} run")
    if spec.streamable:  # stepping gives every step; Keras's output is at the steps _keras_view picks
        s = m.stream()
        steps = np.stack([s.step(x) for x in X[0]])[None]
        assert_parity(_keras_view(spec, steps), expected[:1], PARITY_F32, "float32", f"seed {seed} {ext} step")


def test_a_functional_chain_loads_and_weights_are_found_by_keras_naming(tmp_path):
    rng = np.random.default_rng(7)
    inp = keras.Input((None, 3))
    x = L.LSTM(4, return_sequences=True, name="encoder")(inp)   # stored as layers/lstm, not by its name
    x = L.GRU(4, return_sequences=True)(x)
    out = L.Dense(2, name="head")(x)
    model = keras.Model(inp, out)
    for w in model.weights:
        w.assign(rng.uniform(-0.6, 0.6, w.shape).astype("float32"))
    X = rng.uniform(-1, 1, (2, 5, 3)).astype(np.float32)
    for ext in (".keras", ".h5"):
        model.save(str(tmp_path / f"f{ext}"))
        assert_parity(engine.load(tmp_path / f"f{ext}").run(X), model.predict(X, verbose=0), PARITY_F32, "float32")


def test_gru_gate_permutation_matches_kerass_own_gate_slices(tmp_path):
    # Keras GRU kernel columns are [z | r | h]; ours rows are [r | z | n]
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((None, 2)), L.GRU(3, return_sequences=True)])
    for w in model.weights:
        w.assign(rng.uniform(-1, 1, w.shape).astype("float32"))
    model.save(str(tmp_path / "g.keras"))
    kernel, recurrent, bias = (np.asarray(w) for w in model.layers[0].cell.weights)
    w = converters.from_keras(tmp_path / "g.keras").layers[0].weights[0]
    H = 3
    for ours, keras_block in ((slice(0, H), slice(H, 2 * H)), (slice(H, 2 * H), slice(0, H)),
                              (slice(2 * H, 3 * H), slice(2 * H, 3 * H))):          # r<-r, z<-z, n<-h
        np.testing.assert_array_equal(w["weight_ih"][ours], kernel[:, keras_block].T)
        np.testing.assert_array_equal(w["weight_hh"][ours], recurrent[:, keras_block].T)
        np.testing.assert_array_equal(w["bias_ih"][ours], bias[0, keras_block])
        np.testing.assert_array_equal(w["bias_hh"][ours], bias[1, keras_block])


def test_keras3_hard_sigmoid_is_not_onnx_hard_sigmoid(tmp_path):
    model = keras.Sequential([keras.Input((None, 1)), L.LSTM(2, recurrent_activation="hard_sigmoid")])
    model.save(str(tmp_path / "h.keras"))
    f = converters.from_keras(tmp_path / "h.keras").layers[0].activations[0][0]
    assert (f.name, f.alpha, f.beta) == ("hard_sigmoid", 1 / 6, 0.5)   # relu6(x + 3) / 6


def test_unsupported_layers_are_all_named_at_once(tmp_path):
    model = keras.Sequential([keras.Input((None, 4)), L.UpSampling1D(2), L.LSTM(2, return_sequences=True),
                              L.Conv1DTranspose(2, 3), L.Dense(1)])
    model.save(str(tmp_path / "u.keras"))
    with pytest.raises(engine.FormatError, match=r"cannot run: up_sampling1d \(UpSampling1D\); conv1d_transpose "
                                                 r"\(Conv1DTranspose\)"):
        converters.from_keras(tmp_path / "u.keras")


@pytest.mark.parametrize("conv, pool", [(dict(padding="causal", dilation_rate=2), dict(pool_size=2)),
                                        (dict(padding="same"), dict(pool_size=3, strides=1, padding="same")),
                                        (dict(padding="valid", strides=2), dict(pool_size=2, strides=1))],
                         ids=["causal+max", "same+same", "valid-strided"])
@pytest.mark.parametrize("pooling", ["MaxPooling1D", "AveragePooling1D"])
def test_conv1d_and_pooling_along_time_match_keras(conv, pool, pooling, tmp_path):
    """Embedding -> Conv1D (causal, same, valid with a stride) + ReLU -> Max/AveragePooling1D -> GRU -> Dense:
    token ids in; Keras's own output through run, and streamed where the model streams."""
    model = keras.Sequential([keras.Input((None,), dtype="int32"), L.Embedding(30, 6),
                              L.Conv1D(5, 3, activation="relu", **conv), getattr(L, pooling)(**pool),
                              L.GRU(4, return_sequences=True), L.Dense(2)])
    rng = np.random.default_rng(3)
    for w in model.weights:
        w.assign(rng.uniform(-0.5, 0.5, w.shape).astype("float32"))
    model.save(str(tmp_path / "c.keras"))
    ids = rng.integers(0, 30, size=(3, 17))
    want = np.asarray(model.predict(ids, verbose=0))
    m = engine.load(tmp_path / "c.keras")
    assert_parity(m.run(ids), want, PARITY_F32, "float32", "conv + pool")
    stride, delay = m.timing[m.spec.outputs[0]]
    s = m.stream()
    got = [y for y in (s.step(int(i)) for i in ids[0]) if y is not None]
    assert_parity(np.array(got), want[0, :len(got)], PARITY_F32, "float32", "streamed conv + pool")
    assert len(got) == len([t for t in range(17) if t >= delay and (t - delay) % stride == 0])


def _saved_and_loaded(model, rng, path, X):
    """``model`` with random weights (variances positive), saved to ``path``: Keras's output on ``X`` and the
    engine's Model of the file."""
    _random_weights(model, rng)
    model.save(str(path))
    return np.asarray(model.predict(X, verbose=0)), engine.load(path)


def _random_weights(model, rng):
    for w in model.weights:
        w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32") if "variance" in w.path else
                 rng.uniform(-0.6, 0.6, w.shape).astype("float32"))


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_functional_graphs_with_branches_merges_and_two_inputs_and_outputs_match_keras(ext, tmp_path):
    """Two inputs; an LSTM and a GRU branch concatenated; an Add of a residual Dense; two outputs, one of them
    after Masking-free merges of four edges (Maximum): every node as Keras computes it, streamed too."""
    x, z = keras.Input((None, 3), name="x"), keras.Input((None, 4), name="z")
    a = L.LSTM(5, return_sequences=True, name="a")(x)
    b = L.GRU(5, return_sequences=True, name="b")(x)
    c = L.Concatenate(name="c")([a, b, L.Dense(2, name="zd")(z)])
    d = L.Dense(12, activation="relu", name="d")(c)
    r = L.Add(name="r")([d, L.Dense(12, name="skip")(c)])
    m = L.Maximum(name="m")([a, b, L.Dense(5, name="za")(z), L.Dense(5, name="zb")(z)])
    model = keras.Model([x, z], [L.Dense(1, activation="sigmoid", name="out")(r), m])
    rng = np.random.default_rng(5)
    _random_weights(model, rng)
    model.save(str(tmp_path / f"g{ext}"))
    X, Z = rng.normal(size=(2, 7, 3)).astype(np.float32), rng.normal(size=(2, 7, 4)).astype(np.float32)
    want = [np.asarray(v) for v in model.predict([X, Z], verbose=0)]
    spec = converters.from_keras(tmp_path / f"g{ext}")
    assert [i.name for i in spec.inputs] == ["x", "z"] and spec.outputs == ("out", "m")
    got = engine.Model(spec).run((X, Z))
    for g, w, what in zip(got, want, ("out", "m")):
        assert_parity(g, w, PARITY_F32, "float32", what)
    s = engine.Model(spec).stream()
    steps = [s.step((X[0, t], Z[0, t])) for t in range(7)]
    assert_parity(np.array([y[0] for y in steps]), want[0][0], PARITY_F32, "float32", "streamed out")


def test_a_global_average_pool_over_time_is_the_streams_output_after_the_last_frame(tmp_path):
    """Parallel Conv1D branches (as ecg-quality's OSCNN) concatenated, BatchNormalization, ReLU,
    GlobalAveragePooling1D, Dense: Keras's one output per sequence is run()'s (and a stream's) last frame."""
    inp = keras.Input((None, 1))
    branches = [L.Conv1D(1, k, padding="same")(inp) for k in (1, 2, 3, 5)]
    h = L.ReLU()(L.BatchNormalization()(L.Concatenate()(branches)))
    model = keras.Model(inp, L.Dense(1, activation="sigmoid")(L.GlobalAveragePooling1D()(h)))
    rng = np.random.default_rng(6)
    X = rng.normal(size=(3, 40, 1)).astype(np.float32)
    want, m = _saved_and_loaded(model, rng, tmp_path / "gap.keras", X)
    assert m.spec.metadata["keras.output"] == "last"
    assert_parity(m.run(X)[:, -1], want, PARITY_F32, "float32", "global average pool")


def test_a_shared_layer_is_refused_by_name(tmp_path):
    inp = keras.Input((None, 3))
    shared = L.Dense(3, name="shared")
    model = keras.Model(inp, L.Add()([shared(inp), shared(L.Dense(3)(inp))]))
    model.save(str(tmp_path / "s.keras"))
    with pytest.raises(engine.FormatError, match=r"shared \(Dense shared by 2 calls"):
        converters.from_keras(tmp_path / "s.keras")


def test_reversed_sequence_output_is_refused_with_the_reason(tmp_path):
    model = keras.Sequential([keras.Input((None, 3)), L.GRU(2, go_backwards=True, return_sequences=True)])
    model.save(str(tmp_path / "r.keras"))
    with pytest.raises(engine.FormatError, match="reversed time order"):
        converters.from_keras(tmp_path / "r.keras")


def test_files_that_are_not_keras_models_are_refused(tmp_path):
    (tmp_path / "x.keras").write_bytes(b"not a zip")
    with pytest.raises(engine.FormatError):
        converters.from_keras(tmp_path / "x.keras")
    model = keras.Sequential([keras.Input((None, 3)), L.GRU(2)])
    model.save_weights(str(tmp_path / "w.weights.h5"))
    with pytest.raises(engine.FormatError, match="no model_config"):
        converters.from_keras(tmp_path / "w.weights.h5")


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_masking_batchnorm_and_activation_layers_match_keras(ext, tmp_path):
    """Masking -> BatchNormalization -> UnitNormalization -> Dense -> ReLU(max_value=6) -> LeakyReLU -> ELU ->
    PReLU -> GRU -> Bidirectional(LSTM) -> Dense: Keras's masking reaches every recurrent layer (a graph with mask
    edges)."""
    model = keras.Sequential([keras.Input((None, 5)), L.Masking(0.0), L.BatchNormalization(), L.UnitNormalization(),
                              L.Dense(6),
                              L.ReLU(max_value=6.0), L.LeakyReLU(negative_slope=0.1), L.ELU(alpha=0.5),
                              L.PReLU(shared_axes=[1]), L.GRU(4, return_sequences=True),
                              L.Bidirectional(L.LSTM(3, return_sequences=True)), L.Dense(2)])
    rng = np.random.default_rng(4)
    for w in model.weights:
        w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32") if "variance" in w.path else
                 rng.uniform(-0.6, 0.6, w.shape).astype("float32"))
    model.save(str(tmp_path / f"m{ext}"))
    X = rng.normal(size=(3, 9, 5)).astype(np.float32)
    X[0, 6:] = 0.0
    X[2, [1, 2]] = 0.0
    want = np.asarray(model.predict(X, verbose=0))
    m = engine.load(tmp_path / f"m{ext}")
    assert [n.inputs for n in m.spec.nodes if isinstance(n.layer, (engine.GRU, engine.LSTM))] == \
        [("layers.6", "mask.0"), ("layers.7", "mask.0")]
    assert_parity(m.run(X), want, PARITY_F32, "float32", "masked")
    plain = np.asarray(engine.Model(engine.ModelSpec([n.layer for n in m.spec.nodes[2:]], input_size=5)).run(X))
    assert np.abs(plain - want).max() > 1e-3   # without the mask the numbers differ: the test can fail


@pytest.mark.parametrize("padding", ["same", "valid"])   # (Keras's SeparableConv1D has no causal padding)
def test_separable_conv1d_matches_keras(padding, tmp_path):
    """SeparableConv1D (depth multiplier 2, dilation 2) as a depthwise and a pointwise temporal convolution."""
    model = keras.Sequential([keras.Input((None, 3)), L.SeparableConv1D(4, 3, padding=padding, depth_multiplier=2,
                                                                        dilation_rate=2, activation="relu"),
                              L.GRU(2, return_sequences=True)])
    rng = np.random.default_rng(7)
    X = rng.normal(size=(2, 12, 3)).astype(np.float32)
    want, m = _saved_and_loaded(model, rng, tmp_path / "s.keras", X)
    assert [type(n.layer).__name__ for n in m.spec.nodes][:2] == ["TemporalConv1d", "TemporalConv1d"]
    assert_parity(m.run(X), want, PARITY_F32, "float32", f"separable {padding}")


@pytest.mark.parametrize("mode", ["sum", "mul", "ave"])
def test_bidirectional_merge_modes_match_keras(mode, tmp_path):
    model = keras.Sequential([keras.Input((None, 3)), L.Bidirectional(L.GRU(4, return_sequences=True),
                                                                      merge_mode=mode), L.Dense(2)])
    rng = np.random.default_rng(8)
    X = rng.normal(size=(2, 6, 3)).astype(np.float32)
    want, m = _saved_and_loaded(model, rng, tmp_path / "b.keras", X)
    assert_parity(m.run(X), want, PARITY_F32, "float32", f"merge_mode={mode}")


def _keras2_h5(path, layers, weights):
    """A Keras 2 .h5 written as Keras 2 writes one: model_config (a Sequential), model_weights/<layer> with its
    weight_names; ``weights``: layer name -> [(weight name, array)]."""
    import h5py

    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["keras_version"] = b"2.3.1"
        f.attrs["backend"] = b"tensorflow"
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [layer["config"]["name"].encode() for layer in layers]
        for layer in layers:
            name = layer["config"]["name"]
            lg = g.create_group(name)
            lg.attrs["weight_names"] = [f"{name}/{w}".encode() for w, _ in weights.get(name, [])]
            for w, arr in weights.get(name, []):
                lg.create_dataset(f"{name}/{w}", data=arr)


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_keras2_cudnn_layers_load_as_the_lstm_and_gru_they_compute(cell, tmp_path):
    """Keras 2's CuDNNLSTM / CuDNNGRU (GPU-trained files): tanh and sigmoid, an input and a recurrent bias per
    gate ((8H,) / (6H,)), the GRU's reset after the recurrent product. Checked against Keras 3's LSTM / GRU with
    the same kernels and the two biases (the LSTM's summed; the GRU's as reset_after's (2, 3H))."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    rng = np.random.default_rng(6)
    n_in, H, G = 3, 5, 4 if cell == "LSTM" else 3
    kernel, recurrent = rng.uniform(-0.5, 0.5, (n_in, G * H)), rng.uniform(-0.5, 0.5, (H, G * H))
    b_in, b_rec = rng.uniform(-0.5, 0.5, G * H), rng.uniform(-0.5, 0.5, G * H)
    dense_w, dense_b = rng.uniform(-0.5, 0.5, (H, 2)), rng.uniform(-0.5, 0.5, 2)
    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, None, n_in], "name": "in"}},
              {"class_name": f"CuDNN{cell}", "config": {"name": "cu", "units": H, "return_sequences": True,
                                                        "go_backwards": False, "stateful": False}},
              {"class_name": "Dense", "config": {"name": "out", "units": 2, "activation": "linear",
                                                 "use_bias": True}}]
    path = tmp_path / "cudnn.h5"
    _keras2_h5(path, layers, {"cu": [("kernel:0", kernel), ("recurrent_kernel:0", recurrent),
                                     ("bias:0", np.concatenate([b_in, b_rec]))],
                              "out": [("kernel:0", dense_w), ("bias:0", dense_b)]})
    model = engine.load(path)
    ref_cell = keras.layers.LSTM(H, return_sequences=True) if cell == "LSTM" else \
        keras.layers.GRU(H, return_sequences=True, reset_after=True)
    ref = keras.Sequential([keras.Input((None, n_in)), ref_cell, keras.layers.Dense(2)])
    bias = b_in + b_rec if cell == "LSTM" else np.stack([b_in, b_rec])
    ref_cell.set_weights([kernel, recurrent, bias])
    ref.layers[-1].set_weights([dense_w, dense_b])
    X = rng.normal(size=(2, 9, n_in)).astype(np.float32)
    assert_parity(model.run(X), np.asarray(ref.predict(X, verbose=0)), PARITY_F32, "float32", f"CuDNN{cell}")


def test_a_custom_layer_is_named_and_can_be_said(tmp_path):
    """A layer class of the user's own is refused by name with the way to say what it is; custom_layers= gives it
    (here a "Scale" layer multiplying by its config's factor, as an engine Activation), then the model matches the
    same GRU in Keras 3 fed the scaled input."""
    rng = np.random.default_rng(9)
    n_in, H = 3, 4
    kernel, recurrent, bias = rng.uniform(-0.5, 0.5, (n_in, 3 * H)), rng.uniform(-0.5, 0.5, (H, 3 * H)), \
        rng.uniform(-0.5, 0.5, (2, 3 * H))
    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, None, n_in], "name": "in"}},
              {"class_name": "Scale", "config": {"name": "scale", "factor": 2.5}},
              {"class_name": "GRU", "config": {"name": "gru", "units": H, "return_sequences": True,
                                               "activation": "tanh", "recurrent_activation": "sigmoid",
                                               "reset_after": True, "use_bias": True}}]
    path = tmp_path / "custom.h5"
    _keras2_h5(path, layers, {"gru": [("kernel:0", kernel), ("recurrent_kernel:0", recurrent), ("bias:0", bias)]})
    with pytest.raises(engine.FormatError, match=r"scale \(Scale\).*custom_layers=\{'ClassName'"):
        engine.load(path)
    model = engine.load(path, custom_layers={"Scale": lambda cfg: engine.Activation("affine", cfg["factor"], 0.0)})
    assert model.spec.metadata["keras.custom_layers"] == "Scale"
    assert engine.load(path, custom_layers={"Scale": None}).spec.nodes[0].layer.__class__.__name__ == "GRU"
    gru = keras.layers.GRU(H, return_sequences=True, reset_after=True)
    ref = keras.Sequential([keras.Input((None, n_in)), gru])
    gru.set_weights([kernel, recurrent, bias])
    X = rng.normal(size=(1, 9, n_in)).astype(np.float32)
    want = np.asarray(ref.predict(2.5 * X, verbose=0))
    assert_parity(model.run(X), want, PARITY_F32, "float32", "custom Scale layer")


@pytest.mark.parametrize("pad", [(2, 0), (1, 1)])
def test_zero_padding_before_a_valid_conv1d_is_the_convolutions_own_padding(pad, tmp_path):
    """ZeroPadding1D((2, 0)) + Conv1D(k=3, 'valid') is the usual way to write a causal convolution in Keras: one
    TemporalConv1d, streamable, matching Keras over the sequence and when streamed. (1, 1) pads the future too: a
    look-ahead the stream gives a frame late."""
    rng = np.random.default_rng(21)
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.ZeroPadding1D(pad),
                              keras.layers.Conv1D(4, 3, padding="valid"), keras.layers.GRU(5, return_sequences=True)])
    X = rng.normal(size=(2, 11, 3)).astype(np.float32)
    want, m = _saved_and_loaded(model, rng, tmp_path / "zp.keras", X)
    assert [type(n.layer).__name__ for n in m.spec.nodes] == ["TemporalConv1d", "GRU"]
    assert_parity(m.run(X), want, PARITY_F32, "float32", f"ZeroPadding1D{pad} + Conv1D")
    if pad == (2, 0):
        s = m.stream()
        assert_parity(np.array([s.step(x) for x in X[0]]), want[0], PARITY_F32, "float32", "streamed")


def _streamed(model, X):
    """The frames a stream gives for X (one sequence), in order."""
    s = model.stream()
    return np.array([y for y in (s.step(x) for x in X) if y is not None])


@pytest.mark.parametrize("layer, length", [(lambda: keras.layers.ZeroPadding1D((2, 1)), 14),
                                           (lambda: keras.layers.Cropping1D((1, 2)), 8),
                                           (lambda: keras.layers.Cropping1D(0), 11)])
def test_zero_padding_and_cropping_alone_shift_time_as_keras_does(layer, length, tmp_path):
    """A ZeroPadding1D or Cropping1D with no convolution to fold into: Keras's longer or shorter sequence from run,
    and from a stream the frames it can give (a padded start at once, a cropped frame once the frames cropped
    after it are in), each the same as Keras's frame."""
    rng = np.random.default_rng(22)
    model = keras.Sequential([keras.Input((None, 3)), layer(), keras.layers.GRU(5, return_sequences=True)])
    X = rng.normal(size=(2, 11, 3)).astype(np.float32)
    want, m = _saved_and_loaded(model, rng, tmp_path / "shift.keras", X)
    assert want.shape[1] == length
    assert_parity(m.run(X), want, PARITY_F32, "float32", "run")
    got = _streamed(m, X[0])
    assert len(got) >= length - 3
    assert_parity(got, want[0, :len(got)], PARITY_F32, "float32", "streamed")


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_time_distributed_per_timestep_layers_and_layer_norm_match_keras(ext, tmp_path):
    rng = np.random.default_rng(23)
    td = keras.layers.TimeDistributed
    model = keras.Sequential([keras.Input((None, 4)), td(keras.layers.BatchNormalization()),
                              td(keras.layers.Dense(6, activation="tanh")), td(keras.layers.Dropout(0.3)),
                              td(keras.layers.LayerNormalization()), td(keras.layers.Activation("relu")),
                              keras.layers.LayerNormalization(epsilon=1e-2),
                              keras.layers.LSTM(5, return_sequences=True)])
    X = rng.normal(size=(2, 9, 4)).astype(np.float32)
    want, m = _saved_and_loaded(model, rng, tmp_path / f"td{ext}", X)
    assert [type(n.layer).__name__ for n in m.spec.nodes] == ["BatchNorm", "Dense", "Activation", "LayerNorm",
                                                              "Activation", "LayerNorm", "LSTM"]
    assert_parity(m.run(X), want, PARITY_F32, "float32", "TimeDistributed")


def test_time_distributed_over_frames_of_more_than_one_axis_is_refused_by_name(tmp_path):
    flat = keras.Sequential([keras.Input((None, 4)), keras.layers.TimeDistributed(keras.layers.Reshape((2, 2))),
                             keras.layers.TimeDistributed(keras.layers.Flatten()), keras.layers.GRU(4)])
    flat.save(str(tmp_path / "tdreshape.keras"))
    with pytest.raises(engine.FormatError, match=r"TimeDistributed\(Reshape\) needs frames of more than one axis"):
        engine.load(tmp_path / "tdreshape.keras")
    model = keras.Sequential([keras.Input((None, 8, 2)), keras.layers.TimeDistributed(keras.layers.Conv1D(3, 2)),
                              keras.layers.TimeDistributed(keras.layers.Flatten()), keras.layers.GRU(4)])
    model.save(str(tmp_path / "tdconv.keras"))
    with pytest.raises(engine.FormatError, match=r"TimeDistributed\(Conv1D\) over frames of \(frequency, channels\)"):
        engine.load(tmp_path / "tdconv.keras")


def test_zero_padding_in_a_functional_graph_matches_keras(tmp_path):
    rng = np.random.default_rng(24)
    inp = keras.Input((None, 3))
    a = keras.layers.Conv1D(4, 3, padding="valid")(keras.layers.ZeroPadding1D((2, 0))(inp))
    b = keras.layers.Dense(4)(inp)
    out = keras.layers.GRU(5, return_sequences=True)(keras.layers.Concatenate()([a, b]))
    model = keras.Model(inp, out)
    X = rng.normal(size=(2, 10, 3)).astype(np.float32)
    want, m = _saved_and_loaded(model, rng, tmp_path / "zpg.keras", X)
    assert_parity(m.run(X), want, PARITY_F32, "float32", "run")
    assert_parity(_streamed(m, X[0]), want[0], PARITY_F32, "float32", "streamed")


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_a_conv2d_spectrogram_front_end_matches_keras(ext, tmp_path):
    """(batch, time, 16 bins, 1 channel) through Conv2D ('same', ReLU), BatchNormalization, MaxPooling2D over
    frequency, Conv2D ('valid', strided in frequency), MaxPooling2D over time and frequency, the Reshape that joins
    frequency and channels, a GRU and a Dense: Keras's own output through run, and streamed."""
    rng = np.random.default_rng(25)
    L_ = keras.layers
    model = keras.Sequential([keras.Input((None, 16, 1)), L_.Conv2D(4, (3, 3), padding="same", activation="relu"),
                              L_.BatchNormalization(), L_.MaxPooling2D((1, 2)),
                              L_.Conv2D(6, (3, 2), strides=(1, 2), padding="valid"), L_.MaxPooling2D((2, 1)),
                              L_.Reshape((-1, 24)), L_.GRU(5, return_sequences=True), L_.Dense(2)])
    X = rng.normal(size=(2, 13, 16, 1)).astype(np.float32)
    want, m = _saved_and_loaded(model, rng, tmp_path / f"crnn{ext}", X)
    assert m.inputs == {"input": ((16, 1), "float32")}
    assert_parity(m.run(X), want, PARITY_F32, "float32", "run")
    got = _streamed(m, X[0])
    assert len(got) >= 4
    assert_parity(got, want[0, :len(got)], PARITY_F32, "float32", "streamed")
