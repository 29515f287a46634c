"""ONNX import: the official node tests through converters.onnx_backend; single-node models with random
weights for every RNN attribute against onnxruntime (and the layout round trip); graphs exported by
torch.onnx.export against PyTorch; the LSTM inside silero-vad against onnxruntime; refusals naming nodes."""

import io
import os
import unittest
import warnings
import zlib

import numpy as np
import onnx
import onnx.backend.test
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx.backend.test.loader import load_model_tests
from onnx.backend.test.runner import Runner

import converters
import converters.onnx_backend as backend
import engine
from converters.onnx import UnsupportedOperatorError, convert
from tests.helpers import random_weights
from tests.onnx_oracle import layer_to_onnx, run_in_onnxruntime
from tests.reference import naive
from tests.tolerances import PARITY_F32, assert_parity

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "conformance", "onnx_node_allowlist.txt")) as _fh:
    ALLOWLIST = [line.strip() for line in _fh if line.strip() and not line.startswith("#")]
RECURRENT_PREFIXES = ("test_lstm", "test_gru", "test_simple_rnn", "test_rnn")
torch.set_num_threads(1)


def _node_cases():
    return {c.name: c for c in load_model_tests(kind="node") if c.name.startswith(RECURRENT_PREFIXES)}


# ----------------------------------------------------------------------------------------------------
# Official conformance
# ----------------------------------------------------------------------------------------------------

def test_the_allowlist_holds_every_recurrent_node_test_onnx_generates():
    assert sorted(_node_cases()) == sorted(ALLOWLIST)
    assert len(ALLOWLIST) == 18


@pytest.mark.parametrize("name", ALLOWLIST)
def test_official_node_test_passes_through_the_backend(name):
    case = _node_cases()[name]
    for inputs, expected in case.data_sets:
        outputs = backend.prepare(case.model).run(inputs)
        Runner.assert_similar_outputs(expected, outputs, rtol=case.rtol, atol=case.atol)


def test_onnx_backend_test_runner_passes_the_allowlist():
    suite = onnx.backend.test.BackendTest(backend, __name__)
    for name in ALLOWLIST:
        suite.include(rf"^{name}_cpu$")
    loader = unittest.TestLoader()
    tests = unittest.TestSuite(loader.loadTestsFromTestCase(cls) for cls in suite.test_cases.values())
    result = unittest.TestResult()
    tests.run(result)
    ran = result.testsRun - len(result.skipped)
    assert not result.failures and not result.errors, (result.failures + result.errors)[:2]
    assert ran == len(ALLOWLIST), f"ran {ran} tests, expected {len(ALLOWLIST)}"


@pytest.mark.parametrize("name", ALLOWLIST)
def test_float32_kernels_meet_the_parity_bar_on_the_node_tests(name, monkeypatch):
    monkeypatch.setattr(backend, "DTYPE", "float32")
    case = _node_cases()[name]
    for inputs, expected in case.data_sets:
        for got, want in zip(backend.prepare(case.model).run(inputs), expected):
            assert_parity(got, want, PARITY_F32, "float32", name)


# ----------------------------------------------------------------------------------------------------
# Single-node models, random weights, every attribute, against onnxruntime
# ----------------------------------------------------------------------------------------------------

CELL = {"lstm": engine.LSTM, "gru": engine.GRU, "rnn": engine.RNN}
FEATURES = {
    "plain": ("lstm gru rnn", {}),
    "reverse": ("lstm gru rnn", {"direction": "reverse"}),
    "bidirectional": ("lstm gru rnn", {"direction": "bidirectional"}),
    "clip": ("lstm gru rnn", {"clip": 0.5}),
    "peepholes": ("lstm", {"peephole": True}),
    "input_forget": ("lstm", {"input_forget": True}),
    "linear_before_reset_0": ("gru", {"linear_before_reset": False}),
    "linear_before_reset_1": ("gru", {"linear_before_reset": True}),
    "activations": ("lstm gru rnn", {"activations": "random"}),
}
GATE_FUNCTIONS = [("relu", None, None), ("tanh", None, None), ("sigmoid", None, None), ("affine", 0.8, 0.1),
                  ("leaky_relu", 0.07, None), ("thresholded_relu", 0.1, None), ("scaled_tanh", 1.3, 0.7),
                  ("hard_sigmoid", 0.3, 0.45), ("elu", 0.6, None), ("softsign", None, None), ("softplus", None, None)]


def _random_layer(cell, feature, rng, I=4, H=5):
    kwargs = dict(FEATURES[feature][1])
    D = 2 if kwargs.get("direction") == "bidirectional" else 1
    peephole = kwargs.pop("peephole", False)
    if kwargs.get("activations") == "random":
        n = len(CELL[cell].default_activations)
        kwargs["activations"] = [[engine.Activation(*GATE_FUNCTIONS[i]) for i in rng.choice(len(GATE_FUNCTIONS), n)]
                                 for _ in range(D)]
    weights = [random_weights(rng, cell, I, H, peephole=peephole) for _ in range(D)]
    return CELL[cell](I, H, weights, **kwargs)


CASES = [(cell, feature) for feature, (cells, _) in FEATURES.items() for cell in cells.split()]


@pytest.mark.parametrize("opset", [7, 14, 22, 26])  # 26: the newest onnxruntime 1.31 loads
@pytest.mark.parametrize("cell,feature", CASES)
def test_single_node_models_convert_back_exactly_and_match_onnxruntime(cell, feature, opset):
    rng = np.random.default_rng(zlib.crc32(f"{cell}/{feature}/{opset}".encode()))
    layer = _random_layer(cell, feature, rng)
    D, T, B = layer.num_directions, 7, 3
    X = rng.uniform(-1, 1, (T, B, layer.input_size)).astype(np.float32)
    lengths = np.array([7, 2, 5], np.int32)
    h0 = rng.uniform(-0.5, 0.5, (D, B, layer.hidden_size)).astype(np.float32)
    c0 = rng.uniform(-0.5, 0.5, (D, B, layer.hidden_size)).astype(np.float32)
    c0 = c0 if cell == "lstm" else None
    blob = layer_to_onnx(layer, T, B, lengths=lengths, h0=h0, c0=c0, opset=opset,
                         runtime=("sequence_lens", "initial_h", "initial_c"))
    program = convert(blob)
    # the layout translation round-trips: ONNX (i,o,f,c / z,r,h, stacked biases) back to ours, exactly
    back = program.spec.layers[0]
    for d in range(D):
        for key, arr in layer.weights[d].items():
            np.testing.assert_array_equal(back.weights[d][key], arr.astype(np.float32), err_msg=f"{key} dir {d}")
    assert back.activations == tuple(tuple(engine.Activation(a.name, np.float32(a.alpha), np.float32(a.beta))
                                           for a in acts) for acts in layer.activations)
    feeds = {"X": X, "sequence_lens": lengths, "initial_h": h0}
    if c0 is not None:
        feeds["initial_c"] = c0
    ours = program.run(feeds)
    sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    theirs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    for name in theirs:
        assert_parity(ours[name], theirs[name], PARITY_F32, "float32", f"{name} ({cell} {feature} opset {opset})")


@pytest.mark.parametrize("cell,feature", CASES)
def test_the_newest_opset_onnx_ships_converts_and_matches_the_reference(cell, feature):
    # onnxruntime stops at opset 26; the newest opset's models are checked against the NumPy reference
    opset = onnx.defs.onnx_opset_version()
    assert opset >= 26
    rng = np.random.default_rng(zlib.crc32(f"newest/{cell}/{feature}".encode()))
    layer = _random_layer(cell, feature, rng)
    X = rng.uniform(-1, 1, (6, 2, layer.input_size)).astype(np.float32)
    out = convert(layer_to_onnx(layer, 6, 2, opset=opset)).run({"X": X})
    Y, hT, _ = naive.recurrent(layer, X)
    D, H = layer.num_directions, layer.hidden_size
    assert_parity(out["Y"], Y.reshape(6, 2, D, H).transpose(0, 2, 1, 3), PARITY_F32, "float32", f"Y opset {opset}")
    assert_parity(out["Y_h"], hT, PARITY_F32, "float32", f"Y_h opset {opset}")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_layout_1_models_match_the_time_major_reference(cell):
    # onnxruntime does not run layout=1 for these ops, so the batch-major model is checked against the
    # NumPy reference on the same inputs
    rng = np.random.default_rng(zlib.crc32(f"layout1/{cell}".encode()))
    layer = _random_layer(cell, "bidirectional", rng)
    T, B, D, H = 6, 3, 2, layer.hidden_size
    X = rng.uniform(-1, 1, (B, T, layer.input_size)).astype(np.float32)
    h0 = rng.uniform(-0.5, 0.5, (B, D, H)).astype(np.float32)
    blob = layer_to_onnx(layer, T, B, h0=h0, opset=14, layout=1, runtime=("initial_h",))
    out = convert(blob).run({"X": X, "initial_h": h0})
    Y, hT, _ = naive.recurrent(layer, X.transpose(1, 0, 2), h0=h0.transpose(1, 0, 2))
    assert_parity(out["Y"], Y.reshape(T, B, D, H).transpose(1, 0, 2, 3), PARITY_F32, "float32", "Y")
    assert_parity(out["Y_h"], hT.transpose(1, 0, 2), PARITY_F32, "float32", "Y_h")


def test_onnxruntime_oracle_agrees_on_constant_initial_states_too():
    rng = np.random.default_rng(3)
    layer = engine.LSTM(4, 5, random_weights(rng, "lstm", 4, 5), initial_h=rng.uniform(-1, 1, (1, 5)),
                        initial_c=rng.uniform(-1, 1, (1, 5)))
    X = rng.uniform(-1, 1, (6, 2, 4)).astype(np.float32)
    h0 = np.repeat(layer.initial_h[:, None], 2, axis=1).astype(np.float32)
    c0 = np.repeat(layer.initial_c[:, None], 2, axis=1).astype(np.float32)
    spec = converters.from_onnx(layer_to_onnx(layer, 6, 2, h0=h0, c0=c0))
    assert_parity(engine.Model(spec).run(X, batch_first=False).reshape(6, 2, 1, 5).transpose(0, 2, 1, 3),
                  run_in_onnxruntime(layer, X, h0=h0, c0=c0)[0].reshape(6, 2, 1, 5).transpose(0, 2, 1, 3),
                  PARITY_F32, "float32")


# ----------------------------------------------------------------------------------------------------
# What torch.onnx.export writes
# ----------------------------------------------------------------------------------------------------

class _Exported(torch.nn.Module):
    def __init__(self, kind, bidirectional, batch_first, layers=2):
        super().__init__()
        kw = dict(num_layers=layers, batch_first=batch_first, bidirectional=bidirectional)
        self.rnn = {"lstm": torch.nn.LSTM(3, 6, **kw), "gru": torch.nn.GRU(3, 6, **kw),
                    "rnn": torch.nn.RNN(3, 6, nonlinearity="relu", **kw)}[kind]
        self.fc1 = torch.nn.Linear((2 if bidirectional else 1) * 6, 5)
        self.fc2 = torch.nn.Linear(5, 2)

    def forward(self, x):
        return torch.softmax(self.fc2(torch.relu(self.fc1(self.rnn(x)[0]))), dim=-1)


def _export(module, args, names_in, names_out, dynamic):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buf, dynamo=False, input_names=names_in, output_names=names_out,
                          dynamic_axes=dynamic, opset_version=17)
    return buf.getvalue()


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_torch_exports_match_torch(tmp_path, kind, bidirectional, batch_first):
    torch.manual_seed(zlib.crc32(f"{kind}{bidirectional}{batch_first}".encode()))
    net = _Exported(kind, bidirectional, batch_first).eval()
    X = torch.randn(4, 9, 3) if batch_first else torch.randn(9, 4, 3)
    blob = _export(net, (X,), ["x"], ["y"], {"x": {0: "a", 1: "b"}, "y": {0: "a", 1: "b"}})
    with torch.inference_mode():
        expected = net(X).numpy()
    path = tmp_path / "m.onnx"
    path.write_bytes(blob)
    model = engine.load(path)
    got = model.run(X.numpy(), batch_first=batch_first)
    assert_parity(got, expected, PARITY_F32, "float32", "run")
    if not bidirectional:  # stream one sequence step by step
        seq = X[0] if batch_first else X[:, 0]
        s = model.stream()
        steps = np.stack([s.step(x) for x in seq.numpy()])
        assert_parity(steps, expected[0] if batch_first else expected[:, 0], PARITY_F32, "float32", "step")


@pytest.mark.parametrize("kind,bidirectional", [("lstm", False), ("gru", False), ("lstm", True), ("rnn", False)])
def test_torch_exports_with_explicit_state_inputs_and_outputs_match_torch(kind, bidirectional):
    torch.manual_seed(11)
    D = 2 if bidirectional else 1
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind](3, 6, num_layers=2,
                                                                                   bidirectional=bidirectional)

    class Streaming(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.fc = rnn, torch.nn.Linear(6 * D, 2)

        def forward(self, x, h0, c0=None):
            y, state = self.rnn(x, (h0, c0) if kind == "lstm" else h0)
            return (self.fc(y), *state) if kind == "lstm" else (self.fc(y), state)

    net = Streaming().eval()
    args = (torch.randn(7, 4, 3), torch.randn(2 * D, 4, 6), torch.randn(2 * D, 4, 6))[:3 if kind == "lstm" else 2]
    names_in, names_out = ["x", "h0", "c0"][:len(args)], ["y", "hn", "cn"][:len(args)]
    blob = _export(net, args, names_in, names_out, {n: {1: "b"} for n in names_in + names_out})
    with torch.inference_mode():
        expected = [t.numpy() for t in net(*args)]
    out = convert(blob).run(dict(zip(names_in, (a.numpy() for a in args))))
    for name, want in zip(names_out, expected):
        assert_parity(out[name], want, PARITY_F32, "float32", name)


# ----------------------------------------------------------------------------------------------------
# A real model: the LSTM of silero-vad
# ----------------------------------------------------------------------------------------------------

def _silero_audio(seconds=3.0, seed=0):
    """Noise, then a voiced stretch (a 150 Hz pulse train with harmonics), then noise; 16 kHz, in 512-sample
    chunks (what silero's wrapper feeds its model)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000.0
    voiced = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20)) * ((t > 0.8) & (t < 2.0))
    audio = (0.01 * rng.standard_normal(t.size) + 0.3 * voiced).astype(np.float32)
    return audio[:len(audio) // 512 * 512].reshape(-1, 512)


@pytest.mark.parametrize("name", ["silero_vad.onnx", "silero_vad_op18_ifless.onnx", "silero_vad_16k_op15.onnx"])
def test_silero_vad_whole_model_streams_with_its_state_and_context_owned_by_the_stream(name):
    """The silero-vad package's own ONNX files, whole: an STFT written as a strided Conv1d, its magnitude
    (Slice, Pow, Add, Sqrt), four Conv1d inside each chunk, an LSTM cell (an LSTM node inside nested Ifs on the
    sample rate and on the state's shape in silero_vad.onnx; Gemms, Split, sigmoids and tanhs in the ifless
    export, fused back) and a decoder, with the LSTM state passed in and out. The package's wrapper prepends
    the last 64 samples of the previous chunk and feeds the state back; loaded with the options the file cannot
    answer (the batch axis, the sample rate input, the chunk size and that context), the stream does both itself:
    stepped chunk by chunk from a cold start it gives onnxruntime's probabilities under the wrapper's protocol,
    and so does Model.run over the recording."""
    import silero_vad

    path = os.path.join(os.path.dirname(silero_vad.__file__), "data", name)
    chunks = _silero_audio()
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    state, context, want = np.zeros((2, 1, 128), np.float32), np.zeros((1, 64), np.float32), []
    for c in chunks:
        x = np.concatenate([context, c[None]], axis=1)
        feeds = {"input": x, "state": state}
        if any(i.name == "sr" for i in sess.get_inputs()):
            feeds["sr"] = np.array(16000, np.int64)
        prob, state = sess.run(None, feeds)
        context = x[:, -64:]
        want.append(prob[0, 0])
    want = np.array(want)
    assert want.max() > 0.5 > want.min()                    # the voiced stretch is found
    model = engine.load(path, batch_axis=0, fixed_inputs={"sr": 16000}, frame_shape=512, frame_context=64)
    assert "state -> stateN" in model.spec.metadata["onnx.state_loops"] and model.streamable
    s = model.stream()
    got = np.array([s.step(c)[0] for c in chunks])
    assert_parity(got, want, PARITY_F32, "float32", f"{name} streamed")
    assert_parity(model.run(chunks)[:, 0], want, PARITY_F32, "float32", f"{name} Model.run")


def test_silero_vad_options_are_checked_against_the_file():
    import silero_vad

    path = os.path.join(os.path.dirname(silero_vad.__file__), "data", "silero_vad.onnx")
    with pytest.raises(engine.FormatError, match="fixed_inputs names 'rate', which is not a graph input"):
        engine.load(path, batch_axis=0, fixed_inputs={"rate": 16000}, frame_shape=512)
    with pytest.raises(UnsupportedOperatorError, match=r"Equal on run-time input 'sr'.*fixed_inputs=\{'sr': value\}"):
        engine.load(path, batch_axis=0, frame_shape=512)


# ----------------------------------------------------------------------------------------------------
# Refusals name the node, its op and the reason, all at once
# ----------------------------------------------------------------------------------------------------

def _graph_after_lstm(extra_nodes, extra_inits=(), out="z", opset=17):
    """X (T, B, 4) -> LSTM(3) -> Squeeze -> extra_nodes -> out."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.uniform(-1, 1, s).astype(np.float32), n)
             for n, s in (("W", (1, 12, 4)), ("R", (1, 12, 3)))]
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
    nodes = [helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=3, name="lstm"),
             helper.make_node("Squeeze", ["Y", "axis1"], ["y"], name="squeeze")] + list(extra_nodes)
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", 4])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                              initializer=inits + list(extra_inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def _const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


REFUSALS = {
    "unsupported ops, all listed": (
        [helper.make_node("Hardmax", ["y"], ["n"], name="hmax"),
         helper.make_node("Erf", ["n"], ["z"], name="erf")], [],
        [("hmax", "Hardmax", "no converter"), ("erf", "Erf", "no converter")]),
    "an add that broadcasts data over time": (
        [helper.make_node("ReduceMax", ["y", "ax0"], ["m"], name="rmax", keepdims=1),
         helper.make_node("Add", ["y", "m"], ["z"], name="res")], [_const("ax0", np.array([0], np.int64))],
        [("rmax", "ReduceMax", "no converter")]),
    "softmax over the batch": (
        [helper.make_node("Softmax", ["y"], ["z"], axis=1, name="sm")], [], [("sm", "Softmax", "not the features")]),
    "a constant on the left of MatMul": (
        [helper.make_node("MatMul", ["m", "y"], ["z"], name="mm")], [_const("m", np.ones((2, 2), np.float32))],
        [("mm", "MatMul", "first operand is not the data")]),
    "a slice of the data along time": (
        [helper.make_node("Slice", ["y", "s0", "s1", "s2"], ["z"], name="cut")],
        [_const("s0", [0]), _const("s1", [1]), _const("s2", [0])], [("cut", "Slice", "slicing the data")]),
    "a bias that is not per feature": (
        [helper.make_node("Add", ["y", "bb"], ["z"], name="badd")], [_const("bb", np.ones((5, 1, 3), np.float32))],
        [("badd", "Add", "does not broadcast along the features alone")]),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_name_every_node_and_op_with_the_reason(case):
    nodes, inits, expected = REFUSALS[case]
    with pytest.raises(UnsupportedOperatorError) as info:
        converters.from_onnx(_graph_after_lstm(nodes, inits))
    found = info.value.nodes
    for name, op, reason in expected:
        assert any(n == name and o == op and reason in r for n, o, r in found), found
        assert f"node {name!r} ({op})" in str(info.value)


def _single_lstm(extra_inputs=(), inits=(), attrs=None, graph_inputs=()):
    rng = np.random.default_rng(1)
    base = [numpy_helper.from_array(rng.uniform(-1, 1, s).astype(np.float32), n)
            for n, s in (("W", (1, 12, 4)), ("R", (1, 12, 3)))]
    node = helper.make_node("LSTM", ["X", "W", "R", *extra_inputs], ["Y"], name="lstm", **{"hidden_size": 3, **(attrs or {})})
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", 4]),
                                            *graph_inputs],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], initializer=base + list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


@pytest.mark.parametrize("model,reason", [
    (lambda: _single_lstm(["", "lens"], [_const("lens", np.array([3, 3], np.int32))]), "constant sequence_lens"),
    (lambda: _single_lstm(["", "", "h0"], [_const("h0", np.arange(6, dtype=np.float32).reshape(1, 2, 3))]),
     "same for every sequence in the batch"),
    (lambda: _single_lstm(attrs={"direction": "sideways"}), "direction 'sideways'"),
    (lambda: _single_lstm(attrs={"activations": ["Sigmoid", "Tanh"]}), "takes 3"),
    (lambda: _single_lstm(attrs={"activations": ["Sigmoid", "Gaussian", "Tanh"]}), "unknown activation 'Gaussian'"),
    (lambda: _single_lstm(attrs={"activations": ["Sigmoid", "Gelu", "Tanh"]}),
     "Gelu cannot be a recurrent gate function"),
    (lambda: _single_lstm(attrs={"layout": 2}), "layout must be 0 or 1"),
    (lambda: _single_lstm(attrs={"hidden_size": 5}), "hidden_size=5"),
    (lambda: _single_lstm(attrs={"linear_before_reset": 1}), "linear_before_reset"),
    (lambda: _single_lstm(["B"], [_const("B", np.zeros((1, 8), np.float32))]), "B must be (1, 24)"),
])
def test_recurrent_node_refusals_name_the_node_and_the_problem(model, reason):
    with pytest.raises(UnsupportedOperatorError) as info:
        converters.from_onnx(model())
    assert info.value.nodes[0][:2] == ("lstm", "LSTM")
    assert reason in info.value.nodes[0][2], info.value.nodes


def test_files_that_are_not_onnx_are_refused(tmp_path):
    (tmp_path / "x.onnx").write_bytes(b"\x00\x01 definitely not protobuf \xff" * 3)
    with pytest.raises(engine.FormatError, match="not an ONNX model"):
        engine.load(tmp_path / "x.onnx")


# ----------------------------------------------------------------------------------------------------
# The dynamo exporter (torch.onnx.export(dynamo=True), needs onnxscript)
# ----------------------------------------------------------------------------------------------------

def _dynamo_export(net, X):
    import logging

    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.onnx.export(net, (X,), dynamo=True, input_names=["x"], output_names=["y"], verbose=False,
                                     dynamic_shapes=({0: torch.export.Dim("b"), 1: torch.export.Dim("t")},)).model_proto
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_dynamo_exports_match_torch(kind, bidirectional):
    torch.manual_seed(5)
    net = _Exported(kind, bidirectional, batch_first=True).eval()
    X = torch.randn(3, 8, 3)
    proto = _dynamo_export(net, X)
    with torch.inference_mode():
        expected = net(X).numpy()
    assert_parity(convert(proto).run({"x": X.numpy()})["y"], expected, PARITY_F32, "float32", "dynamo")
    assert_parity(engine.Model(converters.from_onnx(proto)).run(X.numpy()), expected, PARITY_F32, "float32", "run")


def test_dynamo_unrolls_nn_rnn_into_per_step_slices_which_are_refused_by_name():
    net = _Exported("rnn", False, batch_first=True).eval()
    proto = _dynamo_export(net, torch.randn(2, 4, 3))
    with pytest.raises(UnsupportedOperatorError) as info:
        converters.from_onnx(proto)
    assert any(op == "Slice" and "slicing the data" in reason for _, op, reason in info.value.nodes)


# every other refusal path of the op converters, each naming its node and op
def _i64(name, values):
    return _const(name, np.array(values, np.int64))


MORE_REFUSALS = {
    "Squeeze of a non-unit axis": (
        [helper.make_node("Squeeze", ["y", "ax0"], ["z"], name="sq")], [_i64("ax0", [0])], "Squeeze",
        "not of size 1"),
    "Gather on the data": (
        [helper.make_node("Gather", ["y", "i0"], ["z"], axis=0, name="ga")], [_i64("i0", [0])], "Gather",
        "only on shape vectors"),
    "Concat of data along time": (
        [helper.make_node("Concat", ["y", "y"], ["z"], axis=0, name="cat")], [], "Concat",
        "rnnjit joins data along a frame axis"),
    "ConstantOfShape filled with ones": (
        [helper.make_node("Shape", ["y"], ["s"], name="shp"),
         helper.make_node("ConstantOfShape", ["s"], ["z"], name="cos",
                          value=numpy_helper.from_array(np.ones(1, np.float32)))], [], "ConstantOfShape",
        "only zeros"),
    "Reshape merging time and batch": (
        [helper.make_node("Reshape", ["y", "shp"], ["z"], name="rs")], [_i64("shp", [-1, 3])], "Reshape",
        "keep time and batch apart"),
    "Expand of the data": (
        [helper.make_node("Expand", ["y", "shp"], ["z"], name="ex")], [_i64("shp", [1, 1, 3])], "Expand",
        "Expand of a Dyn"),
    "Split of the data": (
        [helper.make_node("Split", ["y"], ["z", "z2"], axis=2, name="sp", num_outputs=2)], [], "Split",
        "only zero states"),
    "Cast of the data to int": (
        [helper.make_node("Cast", ["y"], ["z"], to=TensorProto.INT64, name="ca")], [], "Cast", "INT64"),
    "Dropout with its mask used": (
        [helper.make_node("Dropout", ["y"], ["z", "mask"], name="do")], [], "Dropout", "mask output"),
    "Div of a constant by the data": (
        [helper.make_node("Div", ["one", "y"], ["z"], name="dv")], [_const("one", np.ones(3, np.float32))], "Div",
        "a constant divided by the data"),
    "MatMul with a weight that does not fit": (
        [helper.make_node("MatMul", ["y", "w5"], ["z"], name="mm5")], [_const("w5", np.ones((5, 2), np.float32))],
        "MatMul", "does not fit"),
    "Gemm with transA": (
        [helper.make_node("Gemm", ["y", "w3"], ["z"], transA=1, name="gm")], [_const("w3", np.ones((3, 2), np.float32))],
        "Gemm", "transA=1"),
    "Relu with an unknown attribute": (
        [helper.make_node("Relu", ["y"], ["z"], name="re", strange=1)], [], "Relu", "['strange']"),
    "Flatten merging time and batch": (
        [helper.make_node("Flatten", ["y"], ["z"], axis=2, name="fl")], [], "Flatten", "merges"),
}


@pytest.mark.parametrize("case", sorted(MORE_REFUSALS))
def test_each_refusal_path_names_its_node_and_op(case):
    nodes, inits, op, reason = MORE_REFUSALS[case]
    name = nodes[-1].name
    with pytest.raises(UnsupportedOperatorError) as info:
        converters.from_onnx(_graph_after_lstm(nodes, inits, opset=18))
    assert any(o == op and reason in r for _, o, r in info.value.nodes), info.value.nodes
    assert any(n in (name, nodes[0].name) for n, _, _ in info.value.nodes)


def test_a_graph_with_a_residual_branch_and_an_output_from_inside_matches_onnxruntime():
    """Add of two data tensors (a residual), Mul of two (a gate), and a graph output taken from before the last
    node: a graph ModelSpec whose outputs are the graph's, each as onnxruntime computes it."""
    nodes = [helper.make_node("Relu", ["y"], ["r"], name="relu"), helper.make_node("Tanh", ["r"], ["t"], name="tanh"),
             helper.make_node("Add", ["t", "y"], ["a"], name="res"), helper.make_node("Sigmoid", ["a"], ["s"]),
             helper.make_node("Mul", ["a", "s"], ["z"], name="gate")]
    model = _graph_after_lstm(nodes, out="z")
    model.graph.output.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, None))
    program = convert(model)
    assert len(program.spec.outputs) == 2 and not program.spec.is_chain
    X = np.random.default_rng(5).normal(size=(7, 2, 4)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"X": X})
    got = program.run({"X": X})
    assert_parity(got["z"], want[0], PARITY_F32, "float32", "residual graph, z")
    assert_parity(got["r"], want[1], PARITY_F32, "float32", "residual graph, r")


@pytest.mark.parametrize("cell", [torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN])
def test_an_unbatched_time_by_features_export_converts_and_matches_onnxruntime(cell, tmp_path):
    """torch exports a model called on (T, F) without a batch axis as Unsqueeze -> LSTM/GRU/RNN -> Squeeze:
    a rank-2 graph input is (time, features); engine.load and convert(...).run give onnxruntime's output."""
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.fc = cell(3, 5, num_layers=2), torch.nn.Linear(5, 2)

        def forward(self, x):
            return torch.tanh(self.fc(self.rnn(x)[0]))

    torch.manual_seed(3)
    net = Net().eval()
    path = tmp_path / "unbatched.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.zeros(5, 3), str(path), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "t"}})
    X = np.random.default_rng(3).normal(size=(9, 3)).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": X})[0]
    program = convert(path)
    (got,) = program.run({"x": X}).values()
    assert got.shape == want.shape == (9, 2)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    model = engine.load(path)
    np.testing.assert_allclose(model.run(X), want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(model.stream().step_n(X), want, rtol=0, atol=1e-5)


class _ConvNormGRU(torch.nn.Module):
    """(batch, channels, time) through a Conv1d padded on both sides, a residual pointwise Conv1d, LayerNorm over
    the channels, a GRU and a head: the shape of a typical front end before a recurrent core."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 8, 3, padding=1)
        self.point = torch.nn.Conv1d(8, 8, 1)
        self.norm = torch.nn.LayerNorm(8)
        self.gru = torch.nn.GRU(8, 6, batch_first=True)
        self.head = torch.nn.Linear(6, 3)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        h = (h + self.point(h)).transpose(1, 2)
        return self.head(self.gru(self.norm(h))[0])


@pytest.mark.parametrize("opset", [14, 17])
def test_a_conv_layernorm_gru_export_converts_to_a_graph_and_matches_torch(opset, tmp_path):
    """torch.onnx.export of Conv1d -> residual -> LayerNorm -> GRU -> Linear over (batch, channels, time): at opset
    14 the layer norm is written as ReduceMean/Sub/Pow/Sqrt/Div ops (fused back into one LayerNorm), at 17 it is a
    LayerNormalization node. engine.load finds time and batch from the axis names; Model.run matches torch."""
    torch.manual_seed(opset)
    net = _ConvNormGRU().eval()
    X = torch.randn(2, 4, 11)
    path = tmp_path / "m.onnx"
    path.write_bytes(_export(net, (X,), ["x"], ["y"], {"x": {0: "batch", 2: "time"}, "y": {0: "batch", 1: "time"}}
                             ) if opset == 17 else _export_at(net, X, opset))
    with torch.inference_mode():
        want = net(X).numpy()
    model = engine.load(path)
    kinds = [type(n.layer).__name__ for n in model.spec.nodes]
    # (the pointwise Conv1d is a Dense: a kernel of one tap, no padding, no stride)
    assert kinds.count("LayerNorm") == 1 and kinds.count("TemporalConv1d") == 1 and kinds.count("Dense") == 2 \
        and "Elementwise" in kinds
    assert_parity(model.run(X.numpy().transpose(0, 2, 1)), want, PARITY_F32, "float32", f"opset {opset}")


def _export_at(net, X, opset):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (X,), buf, dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch", 2: "time"}, "y": {0: "batch", 1: "time"}},
                          opset_version=opset)
    return buf.getvalue()


def test_time_and_batch_axes_the_graph_cannot_name_are_given_by_the_caller(tmp_path):
    """The same front end exported with neutral axis names ("a", "b"): the converter cannot tell time from the
    channels, says so and how to tell it; with time_axis=2, batch_axis=0 it converts and matches torch."""
    torch.manual_seed(1)
    net = _ConvNormGRU().eval()
    X = torch.randn(2, 4, 9)
    path = tmp_path / "m.onnx"
    path.write_bytes(_export(net, (X,), ["x"], ["y"], {"x": {0: "a", 2: "b"}, "y": {0: "a", 1: "b"}}))
    with pytest.raises(UnsupportedOperatorError, match="pass time_axis= and batch_axis= to engine.load"):
        engine.load(path)
    with pytest.raises(engine.FormatError, match="time_axis=3 is not an axis of a rank-3 input"):
        engine.load(path, time_axis=3, batch_axis=0)
    model = engine.load(path, time_axis=2, batch_axis=0)
    with torch.inference_mode():
        want = net(X).numpy()
    assert_parity(model.run(X.numpy().transpose(0, 2, 1)), want, PARITY_F32, "float32", "time_axis=2")


# ----------------------------------------------------------------------------------------------------
# Front-end ops in graphs, each against onnxruntime: (batch, channels, time) data through the op and a GRU
# ----------------------------------------------------------------------------------------------------

def _front_end_graph(ops, inits, channels=4, out_channels=None, opset=17, frame=None):
    """x (batch, C, time) [or (batch, C, frame, time)] -> ops (reading "x", writing "f") -> Transpose to
    (time, batch, C') -> GRU(6) -> y."""
    rng = np.random.default_rng(8)
    cp = out_channels or channels
    spatial = ["time"] if frame is None else [frame, "time"]
    nodes = list(ops)
    if frame is not None:   # (batch, C', F', time) -> (batch, time, C' * F') -> (time, batch, C' * F')
        nodes += [helper.make_node("Transpose", ["f"], ["f1"], perm=[0, 3, 1, 2]),
                  helper.make_node("Reshape", ["f1", "flat_shape"], ["f2"]),
                  helper.make_node("Transpose", ["f2"], ["ft"], perm=[1, 0, 2])]
        inits = list(inits) + [numpy_helper.from_array(np.array([0, 0, -1], np.int64), "flat_shape")]
    else:
        nodes.append(helper.make_node("Transpose", ["f"], ["ft"], perm=[2, 0, 1]))
    squeeze = helper.make_node("Squeeze", ["Y", "one"], ["y"]) if opset >= 13 else \
        helper.make_node("Squeeze", ["Y"], ["y"], axes=[1])
    nodes += [helper.make_node("GRU", ["ft", "W", "R"], ["Y"], hidden_size=6, linear_before_reset=1), squeeze]
    inits = list(inits) + [numpy_helper.from_array(rng.uniform(-0.5, 0.5, (1, 18, cp)).astype(np.float32), "W"),
                           numpy_helper.from_array(rng.uniform(-0.5, 0.5, (1, 18, 6)).astype(np.float32), "R"),
                           numpy_helper.from_array(np.array([1], np.int64), "one")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         ["batch", channels] + spatial)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _f32(name, a):
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


_RNG = np.random.default_rng(12)
FRONT_ENDS = {
    "BatchNormalization": (lambda: [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["f"],
                                                     epsilon=1e-3)],
                           lambda: [_f32("s", _RNG.uniform(0.5, 2, 4)), _f32("b", _RNG.normal(size=4)),
                                    _f32("m", _RNG.normal(size=4)), _f32("v", _RNG.uniform(0.5, 2, 4))], {}),
    "PRelu per channel": (lambda: [helper.make_node("PRelu", ["x", "sl"], ["f"])],
                          lambda: [_f32("sl", _RNG.uniform(0, 0.5, (4, 1)))], {}),
    "Clip": (lambda: [helper.make_node("Clip", ["x", "lo", "hi"], ["f"])], lambda: [_f32("lo", -0.5), _f32("hi", 0.7)],
             {}),
    "MaxPool along time": (lambda: [helper.make_node("MaxPool", ["x"], ["f"], kernel_shape=[3], strides=[1],
                                                     pads=[2, 0])], lambda: [], {}),
    "AveragePool along time, strided": (lambda: [helper.make_node("AveragePool", ["x"], ["f"], kernel_shape=[2],
                                                                  strides=[2])], lambda: [], {"stride": 2}),
    "MaxPool over a frame axis": (lambda: [helper.make_node("MaxPool", ["x"], ["f"], kernel_shape=[2, 1],
                                                            strides=[2, 1])], lambda: [],
                                  {"frame": 6, "out_channels": 12}),
    "AveragePool over a frame axis, padded": (lambda: [helper.make_node("AveragePool", ["x"], ["f"],
                                                                        kernel_shape=[3, 1], pads=[1, 0, 1, 0])],
                                              lambda: [], {"frame": 5, "out_channels": 20}),
}


@pytest.mark.parametrize("case", sorted(FRONT_ENDS))
def test_front_end_ops_in_a_graph_match_onnxruntime(case):
    ops, inits, opts = FRONT_ENDS[case]
    frame = opts.get("frame")
    model = _front_end_graph(ops(), inits(), frame=frame, out_channels=opts.get("out_channels"))
    X = np.random.default_rng(3).normal(size=(2, 4) + ((frame,) if frame else ()) + (12,)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": X})[0]
    got = convert(model).run({"x": X})["y"]
    assert got.shape == want.shape, (got.shape, want.shape)
    assert_parity(got, want, PARITY_F32, "float32", case)


def test_pooling_or_normalizing_over_the_whole_sequence_is_refused_with_the_reason():
    for op, reason in (("GlobalAveragePool", "pools the whole sequence"), ("InstanceNormalization",
                                                                          "statistics of the whole sequence")):
        inits = [_f32("s", np.ones(4)), _f32("b", np.zeros(4))] if op == "InstanceNormalization" else []
        ins = ["x", "s", "b"] if inits else ["x"]
        model = _front_end_graph([helper.make_node(op, ins, ["f"], name="n")], inits)
        with pytest.raises(UnsupportedOperatorError, match=reason):
            convert(model)


class _TokenTagger(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(30, 8)
        self.gru = torch.nn.GRU(8, 6, batch_first=True)
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, ids):
        return self.fc(self.gru(self.emb(ids))[0])


def test_an_embedding_export_takes_integer_ids_and_checks_them():
    """torch's Embedding exports as Gather(table, ids): the model's input becomes int64 token ids (one per frame),
    matched against torch; an id past the table is refused before any kernel runs."""
    torch.manual_seed(2)
    net = _TokenTagger().eval()
    ids = torch.randint(0, 30, (3, 7))
    blob = _export(net, (ids,), ["ids"], ["y"], {"ids": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}})
    model = engine.Model(converters.from_onnx(blob))
    assert model.spec.inputs[0].dtype == "int64" and model.streamable
    with torch.inference_mode():
        want = net(ids).numpy()
    assert_parity(model.run(ids.numpy()), want, PARITY_F32, "float32", "embedding export")
    s = model.stream()
    assert_parity(np.array([s.step(np.int64(i)) for i in ids[0].numpy()]), want[0], PARITY_F32, "float32",
                  "embedding export, streamed")
    with pytest.raises(engine.RnnjitError, match="30"):
        model.run(np.array([[1, 2, 30]]))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_written_with_erf_or_tanh_converts_to_one_activation(approximate):
    """torch exports nn.GELU() at opset 17 as x * 0.5 * (1 + Erf(x / sqrt 2)), fused back into one gelu activation
    (and the tanh form as its own ops, converted op by op); both against torch."""
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.GELU(approximate=approximate))
    rnn = _Exported("gru", False, True)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.front, self.rnn = net, rnn

        def forward(self, x):
            return self.rnn(self.front(x)[..., :3])

    torch.manual_seed(5)
    model_t = Net().eval()
    X = torch.randn(2, 9, 3)
    blob = _export(model_t, (X,), ["x"], ["y"], {"x": {0: "batch", 1: "time"}, "y": {0: "batch", 1: "time"}})
    try:
        spec = converters.from_onnx(blob)
    except UnsupportedOperatorError as exc:
        assert approximate == "tanh", exc          # the tanh form's Pow/Tanh ops are all converters have
        raise
    if approximate == "none":
        assert "gelu" in spec.metadata.get("onnx.fused", "")
    with torch.inference_mode():
        want = model_t(X).numpy()
    assert_parity(engine.Model(spec).run(X.numpy()), want, PARITY_F32, "float32", f"gelu {approximate}")


# ----------------------------------------------------------------------------------------------------
# Where on a known mask, Einsum with a constant, Resize on frame axes, ConvTranspose inside a frame
# ----------------------------------------------------------------------------------------------------

def _features_graph(ops, inits, features=4, out_features=None, opset=17):
    """x (batch, time, F) -> Transpose to (time, batch, F) as "xt" -> ops (writing "f") -> GRU(6) -> y."""
    rng = np.random.default_rng(9)
    fp = out_features or features
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]), *ops,
             helper.make_node("GRU", ["f", "W", "R"], ["Y"], hidden_size=6, linear_before_reset=1),
             helper.make_node("Squeeze", ["Y", "one"], ["y"])]
    inits = list(inits) + [numpy_helper.from_array(rng.uniform(-0.5, 0.5, (1, 18, fp)).astype(np.float32), "W"),
                           numpy_helper.from_array(rng.uniform(-0.5, 0.5, (1, 18, 6)).astype(np.float32), "R"),
                           numpy_helper.from_array(np.array([1], np.int64), "one")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         ["batch", "time", features])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _bool(name, a):
    return numpy_helper.from_array(np.asarray(a, bool), name)


MASK = [True, False, True, False]


def _reduced_away():
    """(batch, 4, 5 bins, time) -> ReduceMean over the bins without keepdims -> (batch, 4, time) -> GRU."""
    model = _front_end_graph([helper.make_node("ReduceMean", ["x"], ["f"], axes=[2], keepdims=0)], [])
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims.insert(2, onnx.TensorShapeProto.Dimension(dim_value=5))
    return model
LINEAR_OPS = {
    "Where, masked to 0": (
        lambda: _features_graph([helper.make_node("Where", ["m", "xt", "zero"], ["f"])],
                                [_bool("m", MASK), _f32("zero", 0.0)]), 4),
    "Where, masked to constants": (
        lambda: _features_graph([helper.make_node("Where", ["m", "c", "xt"], ["f"])],
                                [_bool("m", MASK), _f32("c", [0.5, -1.0, 2.0, 3.0])]), 4),
    "Where of two data tensors": (
        lambda: _features_graph([helper.make_node("Relu", ["xt"], ["r"]),
                                 helper.make_node("Where", ["m", "xt", "r"], ["f"])], [_bool("m", MASK)]), 4),
    "Einsum, a linear layer": (
        lambda: _features_graph([helper.make_node("Einsum", ["xt", "w"], ["f"], equation="tbi,oi->tbo")],
                                [_f32("w", _RNG.normal(size=(5, 4)))], out_features=5), 4),
    "Einsum, ellipsis": (
        lambda: _features_graph([helper.make_node("Einsum", ["w", "xt"], ["f"], equation="io,...i->...o")],
                                [_f32("w", _RNG.normal(size=(4, 3)))], out_features=3), 4),
    "Einsum, channels of a frame": (
        lambda: _front_end_graph([helper.make_node("Einsum", ["x", "w"], ["f"], equation="bcft,gc->bgft")],
                                 [_f32("w", _RNG.normal(size=(3, 4)))], frame=5, out_channels=15), 5),
    "Resize nearest on a frame axis": (
        lambda: _front_end_graph([helper.make_node("Resize", ["x", "", "sc"], ["f"], mode="nearest")],
                                 [_f32("sc", [1, 1, 2, 1])], frame=5, out_channels=40), 5),
    "Resize linear on a frame axis": (
        lambda: _front_end_graph([helper.make_node("Resize", ["x", "", "sc"], ["f"], mode="linear",
                                                   coordinate_transformation_mode="half_pixel")],
                                 [_f32("sc", [1, 1, 1.5, 1])], frame=6, out_channels=36), 6),
    "ReduceMean over frequency, kept": (
        lambda: _front_end_graph([helper.make_node("ReduceMean", ["x"], ["f"], axes=[2], keepdims=1)], [],
                                 frame=5, out_channels=4), 5),
    "ReduceSum over channels, kept (axes as an input)": (
        lambda: _front_end_graph([helper.make_node("ReduceSum", ["x", "ax"], ["f"], keepdims=1)],
                                 [numpy_helper.from_array(np.array([1], np.int64), "ax")], frame=5,
                                 out_channels=5), 5),
    "ReduceMean over frequency, dropped": (lambda: _reduced_away(), 5),
    "Upsample (opset 9) on a frame axis": (
        lambda: _front_end_graph([helper.make_node("Upsample", ["x", "sc"], ["f"], mode="nearest")],
                                 [_f32("sc", [1, 1, 3, 1])], frame=4, out_channels=48, opset=9), 4),
}


@pytest.mark.parametrize("case", sorted(LINEAR_OPS))
def test_where_einsum_and_resize_in_a_graph_match_onnxruntime(case):
    make, frame = LINEAR_OPS[case]
    model = make()
    shape = (2, 7, 4) if "Where" in case or "linear layer" in case or "ellipsis" in case else (2, 4, frame, 12)
    X = np.random.default_rng(4).normal(size=shape).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": X})[0]
    got = convert(model).run({"x": X})["y"]
    assert got.shape == want.shape, (got.shape, want.shape)
    assert_parity(got, want, PARITY_F32, "float32", case)


def test_where_on_data_resize_of_time_and_a_transposed_convolution_along_time_are_refused():
    on_data = _features_graph([helper.make_node("Where", ["m", "xt", "zero"], ["f"])], [_f32("zero", 0.0)])
    on_data.graph.input.append(helper.make_tensor_value_info("m", TensorProto.BOOL, [4]))
    cases = [
        (on_data, "Where on a condition computed from the data"),
        (_front_end_graph([helper.make_node("Resize", ["x", "", "sc"], ["f"], mode="nearest")],
                          [_f32("sc", [1, 1, 1, 2])], frame=5, out_channels=20), "changes the frame rate"),
        (_front_end_graph([helper.make_node("ConvTranspose", ["x", "wt"], ["f"], strides=[2])],
                          [_f32("wt", _RNG.normal(size=(4, 4, 3)))]), "a higher frame rate"),
        (_features_graph([helper.make_node("Einsum", ["xt", "xt"], ["f"], equation="tbi,tbi->tbi")], []),
         "one data operand and one constant"),
    ]
    for model, reason in cases:
        with pytest.raises(engine.FormatError, match=reason):
            convert(model)


def test_a_transposed_convolution_inside_a_frame_of_a_per_call_graph_matches_onnxruntime():
    rng = np.random.default_rng(5)
    nodes = [helper.make_node("ConvTranspose", ["x", "wt", "bt"], ["c"], strides=[2], pads=[1, 1],
                              output_padding=[1]),
             helper.make_node("Reshape", ["c", "flat"], ["cf"]),
             helper.make_node("MatMul", ["cf", "w"], ["y"])]
    L = (16 - 1) * 2 - 2 + 4 + 1
    inits = [_f32("wt", rng.normal(size=(1, 3, 4))), _f32("bt", rng.normal(size=3)),
             numpy_helper.from_array(np.array([1, 1, 3 * L], np.int64), "flat"), _f32("w", rng.normal(size=(3 * L, 5)))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    X = rng.normal(size=(1, 1, 16)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": X})[0]
    got = convert(model, time_axis=1, batch_axis=0).run({"x": X})["y"]
    assert_parity(got, want, PARITY_F32, "float32", "ConvTranspose in a frame")


def test_a_state_two_outputs_give_back_is_asked_and_state_pairs_chooses_checked():
    """A GRU export whose next state is output twice (hn, and a copy for logging): which is the loop is asked;
    state_pairs={"h0": "hn"} says, and the stream then owns it; a pair that does not give the state back is
    refused with the outputs that do."""
    torch.manual_seed(12)
    gru, fc = torch.nn.GRU(3, 5), torch.nn.Linear(5, 2)

    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru, self.fc = gru, fc

        def forward(self, x, h0):
            y, h = self.gru(x, h0)
            return self.fc(y), h, h * 1.0

    args = (torch.randn(6, 1, 3), torch.zeros(1, 1, 5))
    blob = _export(Twice().eval(), args, ["x", "h0"], ["y", "hn", "hn_log"], {"x": {0: "time"}})
    with pytest.raises(engine.FormatError, match=r"outputs \['hn', 'hn_log'\] each give back what it gave the "
                                                 r"layers .*state_pairs=\{'h0': \.\.\.\}"):
        convert(blob)
    with pytest.raises(engine.FormatError, match=r"state_pairs pairs it with 'y', which does not give back"):
        convert(blob, state_pairs={"h0": "y"})
    with pytest.raises(engine.FormatError, match=r"state_pairs names \['h1'\], which are not state inputs"):
        convert(blob, state_pairs={"h1": "hn"})
    program = convert(blob, state_pairs={"h0": "hn"})
    assert "h0 -> hn" in program.spec.metadata["onnx.state_loops"]
    X = np.random.default_rng(2).normal(size=(6, 3)).astype(np.float32)
    with torch.inference_mode():
        want = fc(gru(torch.from_numpy(X)[:, None])[0])[:, 0].numpy()
    model = engine.Model(program.spec)
    stream = model.stream()
    assert_parity(np.stack([stream.step(x) for x in X]), want, PARITY_F32, "float32", "streamed")
