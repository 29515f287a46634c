"""The front-end node kinds against onnxruntime, for each that is an ONNX operator: a one-node ONNX graph over the
whole sequence (time and batch where ONNX puts them: (batch, channels, time) for a convolution or pooling along
time, (batch * time, *frame) for an op within a frame) against the kind's run, step_n and streams. onnxruntime is
the independent implementation here, as torch is in tests/test_frontend.py; float32, since that is what
onnxruntime implements every one of these ops in."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import engine
from engine.spec import Input, ModelSpec, Node
from tests.test_frontend import _check_all_ways, _due_ticks

RNG = np.random.default_rng(30)


def _ort(op, x, attrs=None, inits=(), opset=18, extra_inputs=()):
    """``op`` on x (float32) in onnxruntime, with constant inputs ``inits`` after x, in order."""
    names = ["x"] + [f"c{i}" for i in range(len(inits))] + list(extra_inputs)
    node = helper.make_node(op, names, ["y"], **(attrs or {}))
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v, np.int64 if np.asarray(v).dtype.kind in "iu" else np.float32), f"c{i}")
         for i, v in enumerate(inits)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x.astype(np.float32)})[0]


def _model(frame, layer):
    return engine.Model(ModelSpec.graph([Input("x", frame)], [Node("n", layer, "x")], ["n"]), dtype="float32")


# ---- along time: ONNX's (batch, channels, time) ----------------------------------------------------------------

@pytest.mark.parametrize("K, stride, dilation, group, pads", [
    (3, 1, 1, 1, (2, 0)), (3, 2, 2, 1, (4, 0)), (4, 3, 1, 2, (1, 2)), (5, 1, 2, 4, (4, 4)), (2, 2, 1, 1, (0, 0)),
])
def test_temporal_conv_matches_onnxruntimes_conv_along_time(K, stride, dilation, group, pads):
    cin, cout, T = 4, 8, 19
    W, b = RNG.normal(size=(cout, cin // group, K)), RNG.normal(size=cout)
    X = RNG.normal(size=(2, T, cin)).astype(np.float32)
    ref = _ort("Conv", X.transpose(0, 2, 1), dict(kernel_shape=[K], strides=[stride], dilations=[dilation],
                                                  group=group, pads=list(pads)), [W, b]).transpose(0, 2, 1)
    layer = engine.TemporalConv1d(W, b, stride=stride, dilation=dilation, groups=group, padding=pads)
    _check_all_ways(_model((cin,), layer), X, ref, "float32", f"Conv {pads}",
                    due=_due_ticks(T, stride, (K - 1) * dilation - pads[0]))


def test_temporal_conv2d_matches_onnxruntimes_conv_over_time_and_frequency():
    cin, cout, T, F = 2, 4, 13, 9
    W, b = RNG.normal(size=(cout, cin, 3, 3)), RNG.normal(size=cout)
    X = RNG.normal(size=(2, T, cin, F)).astype(np.float32)
    ref = _ort("Conv", X.transpose(0, 2, 1, 3), dict(kernel_shape=[3, 3], strides=[2, 2], dilations=[1, 2],
                                                     pads=[2, 1, 0, 1]), [W, b]).transpose(0, 2, 1, 3)
    layer = engine.TemporalConv2d(W, b, stride=(2, 2), dilation=(1, 2), padding=("causal", 1))
    _check_all_ways(_model((cin, F), layer), X, ref, "float32", "Conv2d", due=_due_ticks(T, 2, 0))


@pytest.mark.parametrize("op, attrs, layer", [
    ("MaxPool", dict(kernel_shape=[3], strides=[2]), engine.TemporalPool("max", 3, 2)),
    ("MaxPool", dict(kernel_shape=[3], strides=[1], pads=[2, 0], dilations=[2]),
     engine.TemporalPool("max", 3, 1, (2, 0), dilation=2)),
    ("AveragePool", dict(kernel_shape=[4], strides=[3], pads=[2, 2], count_include_pad=1),
     engine.TemporalPool("avg", 4, 3, 2)),
    ("AveragePool", dict(kernel_shape=[4], strides=[2], pads=[3, 0], count_include_pad=0),
     engine.TemporalPool("avg", 4, 2, "causal", count_include_pad=False)),
])
def test_temporal_pooling_matches_onnxruntimes_pooling_along_time(op, attrs, layer):
    T, C = 17, 5
    X = RNG.normal(size=(2, T, C)).astype(np.float32)
    ref = _ort(op, X.transpose(0, 2, 1), attrs).transpose(0, 2, 1)
    _check_all_ways(_model((C,), layer), X, ref, "float32", f"{op} {attrs}",
                    due=_due_ticks(T, layer.stride, layer.span - layer.padding[0]))


# ---- within a frame: ONNX's (batch * time, *frame) ---------------------------------------------------------------

def _frames(frame, op, attrs, inits, layer, opset=18, positive=False):
    X = RNG.normal(size=(2, 7) + frame).astype(np.float32)
    if positive:
        X = np.abs(X) + 0.1
    ref = _ort(op, X.reshape((14,) + frame), attrs, inits, opset)
    ref = ref.reshape((2, 7) + ref.shape[1:])
    _check_all_ways(_model(frame, layer), X, ref, "float32", op)


def test_layer_norm_matches_onnxruntime():
    g, b = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    _frames((3, 4), "LayerNormalization", dict(axis=-2, epsilon=1e-5), [g, b], engine.LayerNorm((3, 4), g, b), 17)


def test_instance_norm_matches_onnxruntime():
    g, b = RNG.normal(size=3), RNG.normal(size=3)
    _frames((3, 6), "InstanceNormalization", dict(epsilon=1e-5), [g, b], engine.InstanceNorm(3, g, b))


def test_batch_norm_matches_onnxruntime():
    g, b, m, v = RNG.normal(size=3), RNG.normal(size=3), RNG.normal(size=3), RNG.uniform(0.5, 2, 3)
    _frames((3, 5), "BatchNormalization", dict(epsilon=1e-3), [g, b, m, v], engine.BatchNorm(m, v, g, b, 1e-3))


def test_prelu_matches_onnxruntime():
    slope = RNG.normal(size=(3, 1))
    _frames((3, 5), "PRelu", {}, [slope], engine.PReLU(slope[:, 0]))


def test_pad_modes_match_onnxruntime():
    for mode in ("constant", "reflect", "edge"):
        _frames((3, 5), "Pad", dict(mode=mode), [np.array([0, 1, 2, 0, 0, 1])],
                engine.Pad([[1, 0], [2, 1]], mode=mode), opset=18)


def test_conv_transpose_within_frames_matches_onnxruntime():
    W, b = RNG.normal(size=(3, 2, 3)), RNG.normal(size=2)
    X = RNG.normal(size=(2, 7, 3, 5)).astype(np.float32)
    ref = _ort("ConvTranspose", X.reshape(14, 3, 5), dict(kernel_shape=[3], strides=[2], pads=[1, 0]),
               [W, b]).reshape(2, 7, 2, -1)
    layer = engine.FrameConvTranspose(W, b, stride=2, padding=[[1, 0]])
    _check_all_ways(_model((3, 5), layer), X, ref, "float32", "ConvTranspose")


ACTIVATIONS = [
    ("Gelu", {}, engine.Activation("gelu"), 20), ("Gelu", dict(approximate="tanh"), engine.Activation("gelu_tanh"), 20),
    ("HardSigmoid", {}, engine.Activation("hard_sigmoid"), 18), ("HardSwish", {}, engine.Activation("hard_swish"), 18),
    ("Mish", {}, engine.Activation("mish"), 18), ("Softplus", {}, engine.Activation("softplus"), 18),
    ("Softsign", {}, engine.Activation("softsign"), 18), ("Elu", dict(alpha=0.7), engine.Activation("elu", 0.7), 18),
    ("Selu", {}, engine.Activation("selu"), 18),
    ("LeakyRelu", dict(alpha=0.2), engine.Activation("leaky_relu", 0.2), 18),
    ("Softmax", dict(axis=-2), engine.Activation("softmax", axis=0), 18),
    ("LogSoftmax", dict(axis=-1), engine.Activation("log_softmax"), 18),
    ("Exp", {}, engine.Activation("exp"), 18), ("Abs", {}, engine.Activation("abs"), 18),
    ("Neg", {}, engine.Activation("neg"), 18),
]


@pytest.mark.parametrize("op, attrs, layer, opset", ACTIVATIONS, ids=[f"{a[0]}{a[1]}" for a in ACTIVATIONS])
def test_activations_match_onnxruntime(op, attrs, layer, opset):
    _frames((3, 4), op, attrs, [], layer, opset)


@pytest.mark.parametrize("op, layer", [("Sqrt", engine.Activation("sqrt")), ("Log", engine.Activation("log")),
                                       ("Reciprocal", engine.Activation("reciprocal"))])
def test_math_of_positive_values_matches_onnxruntime(op, layer):
    _frames((3, 4), op, {}, [], layer, positive=True)


def test_pow_by_a_constant_and_clip_match_onnxruntime():
    _frames((6,), "Pow", {}, [np.float32(3.0)], engine.Activation("pow", 3.0))
    _frames((6,), "Clip", {}, [np.float32(-0.5), np.float32(0.8)], engine.Activation("clip", -0.5, 0.8))


def test_embedding_matches_onnxruntimes_gather_on_a_constant_table():
    table = RNG.normal(size=(11, 4)).astype(np.float32)
    ids = RNG.integers(0, 11, size=(2, 9))
    node = helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [2, 9])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(table, "table")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]
    m = engine.Model(ModelSpec.graph([Input("ids", (), "int64")], [Node("e", engine.Embedding(table), "ids")], ["e"]),
                     dtype="float32")
    assert np.array_equal(m.run(ids), ref)
    assert np.array_equal(m.stream().step_n(ids[1]), ref[1])
