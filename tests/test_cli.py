"""The ``rnnjit`` command line driven as a user drives it: subprocesses, files in every format, pipes.

Expected outputs come from the framework that made each model (torch for .pt/.safetensors/.onnx/.npz,
Keras for .keras), not from rnnjit itself.
"""

import os
import select
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from tests.tolerances import PARITY_F32, PARITY_F64  # noqa: E402

CLI = [sys.executable, "-m", "engine"]
I, H, O = 3, 8, 2


def rnnjit(*args, input=None, timeout=600):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, input=input, timeout=timeout)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(I, H, num_layers=2, batch_first=True)
        self.fc = nn.Linear(H, O)

    def forward(self, x):
        return torch.sigmoid(self.fc(self.rnn(x)[0]))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The same trained-looking network in every format, and torch's outputs for one input."""
    d = tmp_path_factory.mktemp("cli-models")
    torch.manual_seed(7)
    net = Net().eval()
    torch.save(net.state_dict(), d / "m.pt")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(d / "m.safetensors"))
    torch.onnx.export(net, torch.zeros(1, 4, I), str(d / "m.onnx"), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "b", 1: "t"}})
    r = rnnjit("convert", d / "m.pt", "-o", d / "m.npz", "--head-activation", "sigmoid")
    assert r.returncode == 0, r.stderr
    X = np.random.default_rng(3).standard_normal((40, I)).astype(np.float32)
    with torch.no_grad():
        Y = net(torch.from_numpy(X)[None])[0].numpy()
    np.save(d / "x.npy", X)
    np.savetxt(d / "x.csv", X, delimiter=",", header="a,b,c", comments="", fmt="%.9g")
    np.savetxt(d / "x_noheader.csv", X, delimiter=",", fmt="%.9g")
    return {"dir": d, "X": X, "Y": Y, "net": net}


def _opts(path):
    return ["--head-activation", "sigmoid"] if str(path).endswith((".pt", ".safetensors")) else []


def _csv(text):
    lines = [ln for ln in text.strip().splitlines() if ln and not ln.startswith("y")]
    return np.array([[float(v) for v in ln.split(",")] for ln in lines])


@pytest.mark.parametrize("fmt", ["m.pt", "m.safetensors", "m.onnx", "m.npz"])
def test_info_describes_each_format_and_times_a_step(models, fmt):
    path = models["dir"] / fmt
    r = rnnjit("info", path, *_opts(path))
    assert r.returncode == 0, r.stderr
    expected_format = {"m.pt": "PyTorch checkpoint (zip", "m.safetensors": "safetensors", "m.onnx": "ONNX (opset",
                       "m.npz": "rnnjit native"}[fmt]
    assert f"format: {expected_format}" in r.stdout
    assert "GRU(3, 8, linear_before_reset=1): 3 -> 8" in r.stdout
    assert "GRU: gates r,z,n" in r.stdout and "streaming: yes" in r.stdout
    assert f"input size {I}, output size {O}, dtype float32, " in r.stdout
    us = float(r.stdout.split("speed on this machine: ")[1].split(" µs")[0])
    assert 0 < us < 10_000


@pytest.mark.parametrize("fmt", ["m.pt", "m.safetensors", "m.onnx"])
def test_convert_writes_a_native_model_that_matches_torch(models, fmt, tmp_path):
    src = models["dir"] / fmt
    r = rnnjit("convert", src, "-o", tmp_path / "out.npz", *_opts(src))
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout
    r = rnnjit("run", tmp_path / "out.npz", models["dir"] / "x.npy")
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(_csv(r.stdout), models["Y"], atol=PARITY_F32, rtol=0)


def test_convert_refuses_a_non_npz_output(models, tmp_path):
    r = rnnjit("convert", models["dir"] / "m.onnx", "-o", tmp_path / "out.onnx")
    assert r.returncode == 2 and "native format is an .npz" in r.stderr


@pytest.mark.parametrize("inp", ["x.csv", "x_noheader.csv", "x.npy"])
@pytest.mark.parametrize("mode", ["stream", "sequence"])
def test_run_reads_csv_with_or_without_header_and_npy_in_both_modes(models, inp, mode):
    r = rnnjit("run", models["dir"] / "m.onnx", models["dir"] / inp, "--mode", mode)
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(_csv(r.stdout), models["Y"], atol=PARITY_F32, rtol=0)
    assert "µs per step" in r.stderr and ("p50" in r.stderr or mode == "sequence")


def test_run_writes_npy_and_csv_files(models, tmp_path):
    r = rnnjit("run", models["dir"] / "m.npz", models["dir"] / "x.csv", "-o", tmp_path / "y.npy")
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), models["Y"], atol=PARITY_F32, rtol=0)
    r = rnnjit("run", models["dir"] / "m.npz", models["dir"] / "x.csv", "-o", tmp_path / "y.csv")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "y.csv").read_text()
    assert text.startswith("y0,y1\n")
    np.testing.assert_allclose(_csv(text), models["Y"], atol=PARITY_F32, rtol=0)


def test_run_shows_a_progress_bar_for_long_files_written_to_a_file(models, tmp_path):
    X = np.random.default_rng(0).standard_normal((12_000, I)).astype(np.float32)
    np.save(tmp_path / "long.npy", X)
    r = rnnjit("run", models["dir"] / "m.npz", tmp_path / "long.npy", "-o", tmp_path / "y.npy")
    assert r.returncode == 0, r.stderr
    assert "100% 12000/12000 rows" in r.stderr
    assert np.load(tmp_path / "y.npy").shape == (12_000, O)
    r = rnnjit("run", models["dir"] / "m.npz", tmp_path / "long.npy", "-o", tmp_path / "y2.npy", "--no-progress")
    assert "rows" not in r.stderr


def test_run_from_a_live_pipe_answers_each_row_before_the_next_is_sent(models):
    """Rows arrive 50 ms apart; the output for each must be readable before the next row is written."""
    X, Y = models["X"][:8], models["Y"][:8]
    proc = subprocess.Popen([*CLI, "run", str(models["dir"] / "m.onnx"), "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    try:
        proc.stdin.write("a,b,c\n")  # a header line is allowed first
        got = []
        for x in X:
            proc.stdin.write(",".join(f"{v:.9g}" for v in x) + "\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            assert ready, f"no output for row {len(got)} before the next row was due"
            got.append([float(v) for v in proc.stdout.readline().split(",")])
            time.sleep(0.05)
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
        assert "8 steps (stream)" in proc.stderr.read()
    finally:
        proc.kill()
    np.testing.assert_allclose(np.array(got), Y, atol=PARITY_F32, rtol=0)


def test_keras_models_run_from_the_cli(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((None, I)), keras.layers.LSTM(5, return_sequences=True),
                              keras.layers.Dense(2)])
    model.save(str(tmp_path / "k.keras"))
    X = np.random.default_rng(1).standard_normal((1, 12, I)).astype(np.float32)
    want = np.asarray(model.predict(X, verbose=0))[0]
    np.save(tmp_path / "x.npy", X[0])
    r = rnnjit("info", tmp_path / "k.keras", "--no-timing")
    assert r.returncode == 0 and "format: Keras 3 (.keras)" in r.stdout, r.stderr
    r = rnnjit("run", tmp_path / "k.keras", tmp_path / "x.npy")
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(_csv(r.stdout), want, atol=PARITY_F32, rtol=0)
    r = rnnjit("convert", tmp_path / "k.keras", "-o", tmp_path / "k.npz")
    assert r.returncode == 0, r.stderr
    r = rnnjit("run", tmp_path / "k.npz", tmp_path / "x.npy", "--mode", "sequence")
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(_csv(r.stdout), want, atol=PARITY_F32, rtol=0)


@pytest.mark.parametrize("fmt", ["m.onnx", "m.pt"])
def test_bench_times_rnnjit_against_torch_and_onnxruntime(models, fmt):
    path = models["dir"] / fmt
    r = rnnjit("bench", path, "--steps", 300, *_opts(path))
    assert r.returncode == 0, r.stderr + r.stdout
    for name in ("rnnjit step(out=)", "rnnjit step", "torch (module, step)", "onnxruntime"):
        assert any(line.startswith(name) and "x" in line for line in r.stdout.splitlines()), r.stdout
    assert "differ" not in r.stdout and "left out" not in r.stdout


def test_bench_keeps_torch_for_a_dense_layer_without_bias(tmp_path):
    import engine
    from tests.helpers import random_weights

    rng = np.random.default_rng(4)
    spec = engine.ModelSpec([engine.GRU(I, H, random_weights(rng, "gru", I, H)),
                             engine.Dense(rng.uniform(-1, 1, (O, H)))])          # no bias
    spec.save(tmp_path / "nobias.npz")
    r = rnnjit("bench", tmp_path / "nobias.npz", "--steps", 300)
    assert r.returncode == 0, r.stderr + r.stdout
    assert any(line.startswith("torch (module, step)") for line in r.stdout.splitlines()), r.stdout
    assert "differ" not in r.stdout and "left out" not in r.stdout


# ---- the loading flags, each passed through the command line and each shown to matter
class Flagged(nn.Module):
    """A checkpoint that needs every loading flag: a ReLU RNN (the state_dict cannot say so), a hidden
    activation and a head activation (nor those), an auxiliary layer that is not on the scoring path, and the
    weights under an unusual key of the checkpoint dict."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(I, H, nonlinearity="relu", batch_first=True)
        self.fc1 = nn.Linear(H, 6)
        self.fc2 = nn.Linear(6, O)
        self.aux = nn.Linear(4, 4)

    def forward(self, x):
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(self.rnn(x)[0]))))


FLAGS = {"--key": "ema_weights", "--ignore": "aux", "--rnn-nonlinearity": "relu", "--activation": "fc1=relu",
         "--head-activation": "sigmoid", "--dtype": "float64"}


@pytest.fixture(scope="module")
def flagged(tmp_path_factory, models):
    d = tmp_path_factory.mktemp("flagged")
    torch.manual_seed(11)
    net = Flagged().double().eval()
    torch.save({"ema_weights": net.state_dict(), "epoch": 7}, d / "ckpt.pth")
    with torch.no_grad():
        Y = net(torch.from_numpy(models["X"]).double()[None])[0].numpy()
    params = sum(p.numel() for name, p in net.named_parameters() if not name.startswith("aux."))
    return {"path": d / "ckpt.pth", "Y": Y, "params": params, "X": models["dir"] / "x.npy"}


def _flags(drop=(), **override):
    flags = dict(FLAGS, **override)
    return [v for k, val in flags.items() if k not in drop and val is not None for v in (k, val)]


def _run_npy(flagged, tmp_path, flags):
    out = tmp_path / "y.npy"
    r = rnnjit("run", flagged["path"], flagged["X"], "-o", out, "--no-progress", *flags)
    return r, (np.load(out) if r.returncode == 0 else None)


@pytest.mark.parametrize("layers", [[], ["--layers", "rnn,fc1,fc2"]])
def test_every_loading_flag_is_passed_through_and_the_result_is_torchs(flagged, tmp_path, layers):
    r, Y = _run_npy(flagged, tmp_path, _flags() + layers)
    assert r.returncode == 0, r.stderr
    assert Y.dtype == np.float64                       # --dtype float64: the outputs are float64 computations
    np.testing.assert_allclose(Y, flagged["Y"], atol=PARITY_F64, rtol=0)


@pytest.mark.parametrize("flag", ["--rnn-nonlinearity", "--activation", "--head-activation", "--dtype"])
def test_without_each_flag_the_model_is_another_one(flagged, tmp_path, flag):
    r, Y = _run_npy(flagged, tmp_path, _flags(drop=(flag,)))
    assert r.returncode == 0, r.stderr
    if flag == "--dtype":   # the checkpoint's own dtype, float64, as --dtype float64 asked: torch's float64 numbers
        assert Y.dtype == np.float64
        np.testing.assert_allclose(Y, flagged["Y"], atol=PARITY_F64, rtol=0)
        r, Y32 = _run_npy(flagged, tmp_path, _flags(drop=(flag,)) + ["--dtype", "float32"])
        assert r.returncode == 0 and Y32.dtype == np.float32 and np.abs(Y32 - flagged["Y"]).max() > PARITY_F64
    else:
        assert np.abs(Y - flagged["Y"]).max() > 1e-3


@pytest.mark.parametrize("flag,message", [("--key", "say which holds the model's state_dict with key="),
                                          ("--ignore", "do not chain into one model")])
def test_without_key_or_ignore_the_checkpoint_is_refused_with_a_reason(flagged, tmp_path, flag, message):
    r, _ = _run_npy(flagged, tmp_path, _flags(drop=(flag,)))
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert message in r.stderr and r.stderr.startswith("rnnjit: ")


def test_layers_chooses_the_groups_that_form_the_model(flagged, tmp_path):
    r, Y = _run_npy(flagged, tmp_path, _flags() + ["--layers", "rnn,fc1", "--ignore", "fc2"])
    assert r.returncode == 0, r.stderr
    assert Y.shape == (len(flagged["Y"]), 6)          # fc1's width: fc2 left out


def test_info_counts_the_parameters_of_the_chosen_layers(flagged):
    r = rnnjit("info", flagged["path"], "--no-timing", *_flags())
    assert r.returncode == 0, r.stderr
    assert f"dtype float64, {flagged['params']} parameters" in r.stdout
    assert "RNN(3, 8, activations=relu)" in r.stdout


# ---- errors: message and exit code as documented in `rnnjit --help` / engine/cli.py
def test_a_missing_model_file_exits_3(tmp_path):
    r = rnnjit("info", tmp_path / "nope.onnx")
    assert r.returncode == 3 and "no such model file" in r.stderr


def test_an_unsupported_format_exits_3(tmp_path):
    (tmp_path / "m.txt").write_text("hello")
    r = rnnjit("info", tmp_path / "m.txt")
    assert r.returncode == 3 and "unrecognized model format '.txt'" in r.stderr


def test_a_malformed_model_file_exits_3(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07garbage")
    r = rnnjit("run", tmp_path / "m.onnx", "-")
    assert r.returncode == 3 and r.stderr.startswith("rnnjit: ") and "Traceback" not in r.stderr


def test_a_missing_input_file_exits_4(models, tmp_path):
    r = rnnjit("run", models["dir"] / "m.npz", tmp_path / "none.csv")
    assert r.returncode == 4 and "no such input file" in r.stderr


def test_a_csv_row_of_the_wrong_width_names_its_line(models, tmp_path):
    (tmp_path / "bad.csv").write_text("a,b,c\n1,2,3\n4,5,6\n7,8\n")
    r = rnnjit("run", models["dir"] / "m.npz", tmp_path / "bad.csv")
    assert r.returncode == 4
    assert "bad.csv:4: expected 3 comma-separated numbers (the model's input size), got 2" in r.stderr


def test_a_non_numeric_csv_value_names_its_line(models, tmp_path):
    (tmp_path / "bad.csv").write_text("1,2,3\n4,x,6\n")
    r = rnnjit("run", models["dir"] / "m.npz", tmp_path / "bad.csv")
    assert r.returncode == 4 and "bad.csv:2: 'x' is not a number" in r.stderr


def test_a_bad_row_on_stdin_stops_with_its_line_after_the_good_rows_were_answered(models):
    r = rnnjit("run", models["dir"] / "m.npz", "-", input="1,2,3\n1,2\n")
    assert r.returncode == 4 and "<stdin>:2: expected 3" in r.stderr
    assert len(r.stdout.strip().splitlines()) == 1


def test_an_npy_of_the_wrong_shape_exits_4(models, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((5, 4), np.float32))
    r = rnnjit("run", models["dir"] / "m.npz", tmp_path / "x.npy")
    assert r.returncode == 4 and "expected shape (T, 3) (the model's input size), got (5, 4)" in r.stderr


def test_streaming_a_bidirectional_model_exits_5_and_sequence_mode_works(tmp_path):
    torch.manual_seed(0)
    rnn = nn.LSTM(2, 3, bidirectional=True, batch_first=True).eval()
    torch.save(rnn.state_dict(), tmp_path / "bi.pt")
    X = np.random.default_rng(0).standard_normal((6, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    r = rnnjit("run", tmp_path / "bi.pt", tmp_path / "x.npy")
    assert r.returncode == 5 and "use --mode sequence" in r.stderr
    r = rnnjit("run", tmp_path / "bi.pt", tmp_path / "x.npy", "--mode", "sequence")
    assert r.returncode == 0, r.stderr
    with torch.no_grad():
        want = rnn(torch.from_numpy(X)[None])[0][0].numpy()
    np.testing.assert_allclose(_csv(r.stdout), want, atol=PARITY_F32, rtol=0)


def test_a_bad_option_value_exits_2(models):
    r = rnnjit("info", models["dir"] / "m.pt", "--activation", "fc")
    assert r.returncode == 2 and "--activation expects LAYER=ACT" in r.stderr
    r = rnnjit("run", models["dir"] / "m.npz", "-", "--mode", "fast")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_the_console_script_is_installed():
    r = subprocess.run(["rnnjit", "info", "--help"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "--head-activation" in r.stdout


def test_a_graph_model_is_described_converted_and_refused_by_run_with_the_reason(tmp_path):
    import engine

    rng = np.random.default_rng(0)
    gru = engine.GRU(4, 4, {"weight_ih": rng.uniform(-1, 1, (12, 4)), "weight_hh": rng.uniform(-1, 1, (12, 4))})
    spec = engine.ModelSpec.graph({"x": 4, "mask": 4}, [engine.Node("gru", gru, "x"),
                                                         engine.Node("masked", engine.Mul(), ["gru", "mask"])],
                                  ["masked", "gru"])
    path = spec.save(tmp_path / "graph.npz")
    r = rnnjit("info", path)
    assert r.returncode == 0, r.stderr
    assert "format version 2" in r.stdout
    assert "inputs x (4,) float32, mask (4,) float32; outputs masked (4,), gru (4,)" in r.stdout
    assert "masked = Mul()(gru (4,), mask (4,)) -> (4,)" in r.stdout and "µs per step" in r.stdout
    r = rnnjit("convert", path, "-o", tmp_path / "g64.npz", "--dtype", "float64")
    assert r.returncode == 0, r.stderr
    assert engine.load(tmp_path / "g64.npz").dtype == np.float64
    np.save(tmp_path / "x.npy", np.zeros((3, 4), np.float32))
    r = rnnjit("run", path, tmp_path / "x.npy")
    assert r.returncode == 5
    assert "run takes models of one input and one output" in r.stderr and "inputs x (4,) float32" in r.stderr


def test_streaming_a_strided_model_writes_a_row_per_output_that_came_due(tmp_path):
    """A Conv1d of stride 2 then MaxPool1d(3): one output row per 6 input rows once the windows fill, the rows
    torch gives over the whole recording; info says when each output comes."""
    import engine

    torch.manual_seed(3)
    conv, pool = nn.Conv1d(I, 4, 3, stride=2).double(), nn.MaxPool1d(3)
    spec = engine.ModelSpec([engine.TemporalConv1d(conv.weight.detach().numpy(), conv.bias.detach().numpy(),
                                                   stride=2, padding=0), engine.TemporalPool("max", 3)])
    spec.save(tmp_path / "strided.npz")
    X = np.random.default_rng(3).normal(size=(40, I))
    np.save(tmp_path / "x.npy", X)
    with torch.inference_mode():
        ref = pool(conv(torch.from_numpy(X).T[None]))[0].T.numpy()       # (6, 4)
    r = rnnjit("run", tmp_path / "strided.npz", tmp_path / "x.npy", "--mode", "stream", "--dtype", "float64")
    assert r.returncode == 0, r.stderr
    got = np.loadtxt(r.stdout.splitlines(), delimiter=",", ndmin=2)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)   # (CSV text carries the digits it prints)
    r = rnnjit("info", tmp_path / "strided.npz", "--no-timing")
    assert "timing: output 'layers.1' gives frame j after input frame j * 6 + 6" in r.stdout, r.stdout


def test_info_shows_the_state_the_plans_fusions_and_the_converters_notes(tmp_path):
    import engine

    rng = np.random.default_rng(4)
    spec = engine.ModelSpec([engine.TemporalConv1d(rng.normal(size=(4, I, 3)), stride=2),
                             engine.BatchNorm(rng.normal(size=4), rng.uniform(0.5, 2, 4)), engine.Activation("relu"),
                             engine.GRU(4, 3, {"weight_ih": rng.normal(size=(9, 4)),
                                               "weight_hh": rng.normal(size=(9, 3))})],
                            metadata={"keras.output": "last"})
    spec.save(tmp_path / "m.npz")
    r = rnnjit("info", tmp_path / "m.npz", "--no-timing")
    assert r.returncode == 0, r.stderr
    assert "state per stream: layers.0.frames (6), layers.0.phase (1), layers.3.h (3)" in r.stdout, \
        r.stdout
    assert "planned: layers.1 folded into layers.0; layers.2 run inside layers.0's kernel" in r.stdout, r.stdout
    assert "note: keras.output = last" in r.stdout and "timing: output 'layers.3' gives frame j after input " \
        "frame j * 2 + 0" in r.stdout
