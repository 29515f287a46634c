"""Front-end node kinds against PyTorch (and Keras for masking, the NumPy reference for a graph through every
kind): temporal convolutions (causal and symmetric, dilated, grouped and depthwise), frame-wise convolutions and
pooling, activations and elementwise math, the norms, shape operations; through run, step, step_n and streams(n)
(bit-equal to lone streams); and composite models built the way real ones are, streamed from a cold start."""

import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")   # before anything imports keras (the masking test)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import engine  # noqa: E402
from engine.spec import (Activation, Add, BatchNorm, Dense, Embedding, Input, LayerNorm, ModelSpec, Node,  # noqa: E402
                         TemporalConv1d)
from tests.helpers import recurrent_layers_from_torch  # noqa: E402
from tests.tolerances import PARITY_F32, PARITY_F64, REFERENCE_F32, REFERENCE_F64, assert_parity  # noqa: E402

TOL = {"float32": PARITY_F32, "float64": PARITY_F64}


def _np(t):
    return t.detach().double().numpy()


def _scaled(err_ref, dtype):
    """The parity bar relative to the output scale: 1e-5 of max|y| in float32 (an unbounded output summed over
    many taps carries float32 rounding in proportion to its size), 1e-9 in float64."""
    return TOL[dtype] * max(1.0, float(np.abs(err_ref).max()))


def _check_all_ways(model, X, ref, dtype, what, due=None):
    """run (batched), step_n, step, and streams(n) bit-equal to lone streams. ``due``: the ticks on which a stream
    emits an output (by default every tick); a stream's outputs are then ref's first len(due) frames, and ``step``
    returns None on every other tick."""
    tol = _scaled(ref, dtype)
    assert_parity(model.run(X), ref, tol, dtype, f"{what} run")
    if not model.streamable:
        return
    T = X.shape[1]
    due = list(range(T)) if due is None else list(due)
    lone = [model.stream().step_n(x) for x in X]
    for b in range(len(X)):
        assert lone[b].shape[0] == len(due), f"{what}: step_n gave {lone[b].shape[0]} frames, {len(due)} were due"
        assert_parity(lone[b], ref[b, :len(due)], tol, dtype, f"{what} step_n[{b}]")
    s = model.stream()
    stepped = [s.step(x) for x in X[0]]
    assert [t for t, y in enumerate(stepped) if y is not None] == due, f"{what}: step emitted on the wrong ticks"
    stepped = np.array([y for y in stepped if y is not None]).reshape(lone[0].shape)
    assert np.array_equal(stepped, lone[0]), f"{what}: step differs from step_n"
    group = model.streams(len(X))
    rows = [group.step(X[:, t]) for t in range(T)]
    rows = np.stack([y for y in rows if y is not None], axis=1) if due else np.stack(lone)
    assert np.array_equal(rows, np.stack(lone)), f"{what}: streams(n) differ from lone streams"


@st.composite
def convs(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, 4))
    cout = groups * draw(st.integers(1, 4))
    if draw(st.booleans()):   # depthwise
        groups, cout = cin, cin * draw(st.integers(1, 2))
    K = draw(st.integers(1, 5))
    dilation = draw(st.integers(1, 4))
    span = (K - 1) * dilation
    # causal; torch's symmetric padding p (p <= span); none (torch's default); (left, right) of any kind
    padding = draw(st.sampled_from(["causal", "symmetric", "none", "pair"]))
    if padding == "symmetric":
        padding = draw(st.integers(0, span))
    elif padding == "none":
        padding = 0
    elif padding == "pair":
        padding = (draw(st.integers(0, span)), draw(st.integers(0, span + 2)))
    stride = draw(st.sampled_from([1, 1, 2, 3]))
    T = draw(st.integers(1, 30))
    return cin, cout, K, dilation, groups, padding, stride, T, draw(st.booleans()), draw(st.integers(0, 2**31))


def _due_ticks(T, stride, warmup):
    """The ticks of T on which a node emits: output j once input frame j * stride + warmup is in."""
    return [t for t in range(T) if t >= warmup and (t - warmup) % stride == 0]


@settings(max_examples=60, deadline=None)
@given(cfg=convs(), dtype=st.sampled_from(["float32", "float64"]))
def test_temporal_conv1d_matches_torch(cfg, dtype):
    """Every padding and stride against torch's Conv1d over the padded sequence: run gives torch's output, a
    stream gives it frame by frame on the ticks each output's last input arrives (right padding: that many ticks
    late, and not the outputs of the padded end)."""
    cin, cout, K, d, G, padding, stride, T, bias, seed = cfg
    torch.manual_seed(seed % 1000)
    span = (K - 1) * d
    left, right = {"causal": (span, 0)}.get(padding, (padding, padding) if isinstance(padding, int) else padding)
    assume(T + left + right >= span + 1)   # torch refuses a sequence shorter than the kernel
    conv = torch.nn.Conv1d(cin, cout, K, dilation=d, groups=G, bias=bias, stride=stride).double()
    X = np.random.default_rng(seed).normal(size=(3, T, cin))
    with torch.inference_mode():
        xt = torch.nn.functional.pad(torch.from_numpy(X).transpose(1, 2), (left, right))
        ref = conv(xt).transpose(1, 2).numpy()
    layer = TemporalConv1d(_np(conv.weight), _np(conv.bias) if bias else None, dilation=d, groups=G,
                           padding=padding, stride=stride)
    model = engine.Model(ModelSpec([layer]), dtype=dtype)
    assert model.timing == {"layers.0": (stride, span - left)}
    _check_all_ways(model, X, ref, dtype, "conv", due=_due_ticks(T, stride, span - left))


def test_a_causal_convolution_carries_its_past_frames_as_state():
    rng = np.random.default_rng(1)
    layer = TemporalConv1d(rng.normal(size=(3, 2, 3)), rng.normal(size=3), dilation=2)
    model = engine.Model(ModelSpec([layer]), dtype="float64")
    X = rng.normal(size=(12, 2))
    whole = model.stream().step_n(X)
    s = model.stream()
    s.step_n(X[:5])
    state = s.get_state()
    assert list(state) == ["layers.0.frames"] and state["layers.0.frames"].shape == (4 * 2,)
    assert np.array_equal(state["layers.0.frames"], X[1:5].ravel())     # the last (K-1)*d = 4 frames, oldest first
    resumed = engine.Stream.from_bytes(s.to_bytes(), model)
    assert np.array_equal(resumed.step_n(X[5:]), whole[5:])
    # run() takes and gives the same state
    y, final = model.run(X[5:], initial_state={"layers.0.frames": state["layers.0.frames"][None]}, return_state=True)
    np.testing.assert_allclose(y, whole[5:], atol=PARITY_F64, rtol=0)
    np.testing.assert_array_equal(final["layers.0.frames"][0], X[8:].ravel())
    _, finals = model.run(np.stack([X, X]), lengths=[12, 3], return_state=True)
    np.testing.assert_array_equal(finals["layers.0.frames"][0, 1], np.concatenate([np.zeros(2), X[:3].ravel()]))


def test_a_convolution_padded_on_both_sides_streams_its_outputs_as_late_as_the_future_they_read():
    rng = np.random.default_rng(2)
    model = engine.Model(ModelSpec([TemporalConv1d(rng.normal(size=(2, 2, 3)), padding=1)]), dtype="float64")
    assert model.streamable and model.timing == {"layers.0": (1, 1)}
    X = rng.normal(size=(9, 2))
    s = model.stream()
    assert s.step(X[0]) is None and s.get_state()["layers.0.phase"] == 0
    np.testing.assert_allclose(s.step(X[1]), model.run(X)[0], atol=PARITY_F64, rtol=0)
    out = np.empty(2)
    s.reset()
    assert s.step(X[0], out=out) is None
    assert s.step(X[1], out=out) is out


@pytest.mark.parametrize("bad, message", [
    (dict(padding=(3, 0)), r"left padding 3 is more than \(kernel - 1\) \* dilation = 2"),
    (dict(groups=4), "groups=4 must divide the 6 output channels"),
    (dict(padding="same"), "padding must be 'causal'"),
    (dict(stride=0), "stride must be an integer >= 1"),
])
def test_convolution_options_rnnjit_cannot_run_are_refused_by_name(bad, message):
    with pytest.raises(engine.SpecError, match=message):
        TemporalConv1d(np.ones((6, 2, 3)), **bad)


ACTIVATIONS = [
    ("gelu", torch.nn.GELU()), ("gelu_tanh", torch.nn.GELU(approximate="tanh")), ("silu", torch.nn.SiLU()),
    ("mish", torch.nn.Mish()), ("hard_swish", torch.nn.Hardswish()), ("relu6", torch.nn.ReLU6()),
    ("clip", torch.nn.Hardtanh()), (("clip", -0.5, 2.0), torch.nn.Hardtanh(-0.5, 2.0)),
    (("hard_sigmoid", 1 / 6, 0.5), torch.nn.Hardsigmoid()), ("elu", torch.nn.ELU()),
    (("leaky_relu", 0.2), torch.nn.LeakyReLU(0.2)), ("softplus", torch.nn.Softplus()),
    ("softsign", torch.nn.Softsign()), ("swish", torch.nn.SiLU()),
]


@pytest.mark.parametrize("name, module", ACTIVATIONS, ids=[str(a) for a, _ in ACTIVATIONS])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_activations_match_torch(name, module, dtype):
    X = np.random.default_rng(3).uniform(-8, 8, (2, 50, 7))
    with torch.inference_mode():
        ref = module(torch.from_numpy(X)).numpy()
    model = engine.Model(ModelSpec([Activation.of(name)], input_size=7), dtype=dtype)
    _check_all_ways(model, X, ref, dtype, str(name))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_along_any_axis_of_a_frame_matches_torch(dtype):
    X = np.random.default_rng(4).normal(size=(2, 6, 3, 5)) * 4
    spec = ModelSpec.graph([Input("x", (3, 5))], [Node("a", Activation("softmax", axis=0), "x"),
                                                  Node("b", Activation("log_softmax", axis=-1), "a")], ["b"],
                           dtype=dtype)
    with torch.inference_mode():
        ref = torch.log_softmax(torch.softmax(torch.from_numpy(X), 2), 3).numpy()
    model = engine.Model(spec)
    assert_parity(model.run(X), ref, TOL[dtype], dtype, "run")
    assert_parity(model.stream().step_n(X[1]), ref[1], TOL[dtype], dtype, "step_n")
    with pytest.raises(engine.SpecError, match=r"softmax along axis 2, but edge 'x' carries frames of shape \(3, 5\)"):
        ModelSpec.graph([Input("x", (3, 5))], [Node("a", Activation("softmax", axis=2), "x")], ["a"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("frame, normalized", [((9,), (9,)), ((4, 6), (6,)), ((4, 6), (4, 6))])
def test_layer_norm_matches_torch(dtype, frame, normalized):
    torch.manual_seed(5)
    ln = torch.nn.LayerNorm(normalized, eps=1e-4).double()
    ln.weight.data.normal_()
    ln.bias.data.normal_()
    X = np.random.default_rng(5).normal(size=(3, 8) + frame) * 5 + 2
    with torch.inference_mode():
        ref = ln(torch.from_numpy(X)).numpy()
    spec = ModelSpec.graph([Input("x", frame)], [Node("ln", LayerNorm(normalized, _np(ln.weight), _np(ln.bias),
                                                                      eps=1e-4), "x")], ["ln"], dtype=dtype)
    model = engine.Model(spec)
    assert_parity(model.run(X), ref, TOL[dtype], dtype, "run")
    assert_parity(model.stream().step_n(X[2]), ref[2], TOL[dtype], dtype, "step_n")
    no_affine = torch.nn.LayerNorm(normalized, elementwise_affine=False).double()
    with torch.inference_mode():
        ref = no_affine(torch.from_numpy(X)).numpy()
    model = engine.Model(ModelSpec.graph([Input("x", frame)], [Node("ln", LayerNorm(normalized), "x")], ["ln"],
                                         dtype=dtype))
    assert_parity(model.run(X), ref, TOL[dtype], dtype, "run, no affine")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("frame", [(6,), (6, 5), (6, 5, 2)])
def test_batch_norm_in_inference_matches_torch(dtype, frame):
    torch.manual_seed(6)
    bn = (torch.nn.BatchNorm1d(6) if len(frame) < 3 else torch.nn.BatchNorm2d(6)).double().eval()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.2, 3)
    bn.weight.data.normal_()
    bn.bias.data.normal_()
    X = np.random.default_rng(6).normal(size=(2, 7) + frame) * 3
    with torch.inference_mode():   # torch wants (batch, channels, ...): time joins the batch
        ref = bn(torch.from_numpy(X.reshape((14,) + frame))).numpy().reshape(X.shape)
    spec = ModelSpec.graph([Input("x", frame)], [Node("bn", BatchNorm(_np(bn.running_mean), _np(bn.running_var),
                                                                      _np(bn.weight), _np(bn.bias)), "x")], ["bn"],
                           dtype=dtype)
    model = engine.Model(spec)
    assert_parity(model.run(X), ref, TOL[dtype], dtype, "run")
    assert_parity(model.streams(2).step(X[:, 3]), ref[:, 3], TOL[dtype], dtype, "streams")


class VAD(torch.nn.Module):
    """The shape of a streaming voice-activity detector: a causal dilated TCN (dilations 1, 2, 4, 8; LayerNorm;
    residual adds) feeding a GRU and a sigmoid head."""

    def __init__(self, F=8, C=12, H=16):
        super().__init__()
        self.inp = torch.nn.Conv1d(F, C, 1)
        self.convs = torch.nn.ModuleList(torch.nn.Conv1d(C, C, 3, dilation=d) for d in (1, 2, 4, 8))
        self.norms = torch.nn.ModuleList(torch.nn.LayerNorm(C) for _ in range(4))
        self.gru = torch.nn.GRU(C, H, batch_first=True)
        self.head = torch.nn.Linear(H, 1)

    def forward(self, x):                              # x (B, T, F)
        h = self.inp(x.transpose(1, 2))                # (B, C, T)
        for conv, norm in zip(self.convs, self.norms):
            y = conv(torch.nn.functional.pad(h, (2 * conv.dilation[0], 0)))
            y = norm(y.transpose(1, 2)).transpose(1, 2)
            h = h + torch.nn.functional.gelu(y)
        g, _ = self.gru(h.transpose(1, 2))
        return torch.sigmoid(self.head(g))


def _vad_spec(net, dtype):
    nodes = [Node("inp", TemporalConv1d(_np(net.inp.weight), _np(net.inp.bias)), "x")]
    h = "inp"
    for i, (conv, norm) in enumerate(zip(net.convs, net.norms)):
        nodes += [Node(f"conv{i}", TemporalConv1d(_np(conv.weight), _np(conv.bias), dilation=conv.dilation[0]), h),
                  Node(f"norm{i}", LayerNorm(12, _np(norm.weight), _np(norm.bias)), f"conv{i}"),
                  Node(f"act{i}", Activation("gelu"), f"norm{i}"),
                  Node(f"res{i}", Add(), [h, f"act{i}"])]
        h = f"res{i}"
    (gru,) = recurrent_layers_from_torch(net.gru)
    nodes += [Node("gru", gru, h), Node("head", Dense(_np(net.head.weight), _np(net.head.bias)), "gru"),
              Node("p", Activation("sigmoid"), "head")]
    return ModelSpec.graph({"x": 8}, nodes, ["p"], dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_streaming_vad_of_dilated_causal_convolutions_matches_torch_sample_by_sample(dtype):
    torch.manual_seed(7)
    net = VAD().double().eval()
    for p in net.norms.parameters():
        p.data.normal_(0, 0.5)
    X = np.random.default_rng(7).normal(size=(3, 60, 8))
    with torch.inference_mode():
        ref = net(torch.from_numpy(X)).numpy()
    model = engine.Model(_vad_spec(net, dtype))
    assert model.streamable
    _check_all_ways(model, X, ref, dtype, "vad")
    state = model.stream().get_state()
    assert sorted(state) == ["conv0.frames", "conv1.frames", "conv2.frames", "conv3.frames", "gru.h", "inp.frames"]
    assert state["conv3.frames"].shape == (16 * 12,) and state["inp.frames"].shape == (0,)
    # a snapshot taken mid-stream resumes exactly; the model saves and loads as the same model
    s = model.stream()
    s.step_n(X[0, :25])
    rest = engine.Stream.from_bytes(s.to_bytes(), model).step_n(X[0, 25:])
    assert np.array_equal(rest, model.stream().step_n(X[0])[25:])


class Tagger(torch.nn.Module):
    """Embedding -> 2-layer bidirectional GRU -> Linear -> log_softmax, as sequence taggers are."""

    def __init__(self, V=30, D=6, H=8, tags=5):
        super().__init__()
        self.emb = torch.nn.Embedding(V, D, padding_idx=0)
        self.gru = torch.nn.GRU(D, H, num_layers=2, bidirectional=True, batch_first=True)
        self.out = torch.nn.Linear(2 * H, tags)

    def forward(self, ids, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(self.emb(ids), torch.as_tensor(lengths), batch_first=True,
                                                         enforce_sorted=False)
        g, _ = self.gru(packed)
        g, _ = torch.nn.utils.rnn.pad_packed_sequence(g, batch_first=True, total_length=ids.shape[1])
        return torch.log_softmax(self.out(g), -1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_embedding_bidirectional_gru_tagger_matches_torch_with_lengths(dtype):
    torch.manual_seed(8)
    net = Tagger().double().eval()
    ids = np.random.default_rng(8).integers(1, 30, (4, 13))
    lengths = np.array([13, 5, 9, 1])
    for b, n in enumerate(lengths):
        ids[b, n:] = 0
    with torch.inference_mode():
        ref = net(torch.from_numpy(ids), lengths).numpy()
    g1, g2 = recurrent_layers_from_torch(net.gru)
    spec = ModelSpec.graph([Input("ids", (), "int64")], [
        Node("emb", Embedding(_np(net.emb.weight), padding_idx=0), "ids"), Node("gru1", g1, "emb"),
        Node("gru2", g2, "gru1"), Node("out", Dense(_np(net.out.weight), _np(net.out.bias)), "gru2"),
        Node("logp", Activation("log_softmax"), "out")], ["logp"], dtype=dtype)
    y = engine.Model(spec).run(ids, lengths=lengths)
    for b, n in enumerate(lengths):   # past its length a sequence's outputs are the head's on zeros, as in torch
        assert_parity(y[b, :n], ref[b, :n], TOL[dtype], dtype, f"sequence {b}")
    assert_parity(y, ref, TOL[dtype], dtype, "everything, padding included")


def _frames_vs_torch(nodes, frame, module, X, dtype):
    """A graph of ``nodes`` on frames of ``frame`` against ``module`` applied to every timestep's frame."""
    spec = ModelSpec.graph([Input("x", frame)], nodes, [nodes[-1].name], dtype=dtype)
    with torch.inference_mode():
        ref = module(torch.from_numpy(X.reshape((-1,) + frame))).numpy()
    ref = ref.reshape(X.shape[:2] + ref.shape[1:])
    model = engine.Model(spec)
    _check_all_ways(model, X, ref, dtype, repr(nodes[-1].layer))
    return model


@st.composite
def frame_convs(draw):
    n = draw(st.sampled_from([1, 2]))
    groups = draw(st.sampled_from([1, 2]))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel = [draw(st.integers(1, 4)) for _ in range(n)]
    stride = [draw(st.integers(1, 3)) for _ in range(n)]
    dilation = [draw(st.integers(1, 2)) for _ in range(n)]
    padding = [draw(st.integers(0, 2)) for _ in range(n)]
    spatial = [draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 12)) for k, d, p in zip(kernel, dilation, padding)]
    return cin, cout, kernel, stride, dilation, padding, groups, spatial, draw(st.integers(0, 2**31))


@settings(max_examples=30, deadline=None)
@given(cfg=frame_convs(), dtype=st.sampled_from(["float32", "float64"]))
def test_frame_conv_over_a_frames_axes_matches_torch(cfg, dtype):
    cin, cout, kernel, stride, dilation, padding, groups, spatial, seed = cfg
    torch.manual_seed(seed % 1000)
    conv = (torch.nn.Conv1d if len(kernel) == 1 else torch.nn.Conv2d)(
        cin, cout, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups).double()
    X = np.random.default_rng(seed).normal(size=(2, 4, cin, *spatial))
    layer = engine.FrameConv(_np(conv.weight), _np(conv.bias), stride=stride, padding=padding, dilation=dilation,
                             groups=groups)
    _frames_vs_torch([Node("conv", layer, "x")], (cin, *spatial), conv, X, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("pool, module, frame", [
    (engine.Pool("max", 3, 2, 1), torch.nn.MaxPool1d(3, 2, 1), (3, 11)),
    (engine.Pool("max", (2, 2)), torch.nn.MaxPool2d(2), (2, 6, 5)),
    (engine.Pool("avg", 4, padding=2), torch.nn.AvgPool1d(4, padding=2), (3, 9)),
    (engine.Pool("avg", (2, 3), (2, 1), (1, 1), count_include_pad=False),
     torch.nn.AvgPool2d((2, 3), (2, 1), (1, 1), count_include_pad=False), (3, 5, 6)),
    (engine.Pool("avg", global_pool=True), torch.nn.AdaptiveAvgPool2d(1), (3, 5, 6)),
    (engine.Pool("max", global_pool=True), torch.nn.AdaptiveMaxPool1d(1), (4, 7)),
], ids=["max1d", "max2d", "avg1d-pad", "avg2d-valid", "global-avg", "global-max"])
def test_pooling_within_frames_matches_torch(dtype, pool, module, frame):
    X = np.random.default_rng(9).normal(size=(2, 5) + frame)
    _frames_vs_torch([Node("pool", pool, "x")], frame, module, X, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("channels", [1, 3])
def test_prelu_matches_torch(dtype, channels):
    torch.manual_seed(10)
    module = torch.nn.PReLU(channels).double()
    module.weight.data.uniform_(-1, 1)
    X = np.random.default_rng(10).normal(size=(2, 6, 3, 4))
    _frames_vs_torch([Node("p", engine.PReLU(_np(module.weight)), "x")], (3, 4), module, X, dtype)


@pytest.mark.parametrize("op, fn", [
    (engine.spec.Reshape([4, -1]), lambda a: a.reshape(4, 3)), (engine.spec.Flatten(), lambda a: a.reshape(12)),
    (engine.spec.Transpose([1, 0]), lambda a: a.T), (engine.spec.Slice(1, 1, None, 2), lambda a: a[:, 1::2]),
    (engine.spec.Slice(0, None, -1), lambda a: a[:-1]), (engine.spec.Unsqueeze([0]), lambda a: a[None]),
    (engine.spec.Pad([[1, 0], [2, 1]], value=7.5), lambda a: np.pad(a, [(1, 0), (2, 1)], constant_values=7.5)),
    (engine.spec.Pad([[1, 1], [2, 2]], mode="reflect"), lambda a: np.pad(a, [(1, 1), (2, 2)], mode="reflect")),
    (engine.spec.Pad([[0, 2], [1, 0]], mode="edge"), lambda a: np.pad(a, [(0, 2), (1, 0)], mode="edge")),
], ids=lambda v: repr(v) if not callable(v) or hasattr(v, "to_config") else "")
def test_shape_operations_on_frames_do_what_numpy_does(op, fn):
    X = np.random.default_rng(11).normal(size=(2, 5, 3, 4))
    want = np.stack([np.stack([fn(f) for f in seq]) for seq in X])
    spec = ModelSpec.graph([Input("x", (3, 4))], [Node("o", op, "x")], ["o"], dtype="float64")
    model = engine.Model(spec)
    assert np.array_equal(model.run(X), want)
    assert np.array_equal(model.stream().step_n(X[1]), want[1])
    assert np.array_equal(model.streams(2).step(X[:, 3]), want[:, 3])
    assert np.array_equal(engine.load(spec.save(os.path.join(tempfile.mkdtemp(), "m"))).run(X), want)


def test_concat_joins_two_frames_along_an_axis():
    rng = np.random.default_rng(12)
    A, B = rng.normal(size=(2, 5, 3, 4)), rng.normal(size=(2, 5, 3, 2))
    model = engine.Model(ModelSpec.graph([Input("a", (3, 4)), Input("b", (3, 2))],
                                         [Node("c", engine.spec.Concat(axis=1), ["a", "b"])], ["c"], dtype="float64"))
    want = np.concatenate([A, B], axis=3)
    assert np.array_equal(model.run((A, B)), want)
    assert np.array_equal(model.stream().step_n((A[0], B[0])), want[0])
    with pytest.raises(engine.SpecError, match=r"Concat along axis 0 of frames \(3, 4\), \(3, 2\): the other"):
        ModelSpec.graph([Input("a", (3, 4)), Input("b", (3, 2))], [Node("c", engine.spec.Concat(0), ["a", "b"])],
                        ["c"])
    with pytest.raises(engine.SpecError, match=r"cannot squeeze axes \[0\] of a frame of shape \(3, 4\)"):
        ModelSpec.graph([Input("a", (3, 4))], [Node("s", engine.spec.Squeeze(0), "a")], ["s"])


def test_concat_of_many_frames_and_split_undo_each_other_as_numpy_does():
    """Concat of four edges (lowered to three two-input nodes in the plan) and engine.split back into parts."""
    rng = np.random.default_rng(13)
    shapes = [(3, 1), (3, 4), (3, 2), (3, 3)]
    X = [rng.normal(size=(2, 6) + s) for s in shapes]
    nodes = [Node("c", engine.spec.Concat(axis=-1), ["a", "b", "c0", "d"]),
             *engine.split("parts", "c", [1, 4, 2, 3], axis=1),
             Node("back", engine.spec.Concat(axis=1), ["parts.3", "parts.0", "parts.2", "parts.1"])]
    spec = ModelSpec.graph([Input(n, s) for n, s in zip(["a", "b", "c0", "d"], shapes)], nodes,
                           ["c", "back", "parts.2"], dtype="float64")
    model = engine.Model(spec)
    assert len(model._plan.steps) == 3 + 4 + 3 and spec.edges["c"][0] == (3, 10)
    want = [np.concatenate(X, axis=3), np.concatenate([X[3], X[0], X[2], X[1]], axis=3), X[2]]
    for got, w in zip(model.run(tuple(X)), want):
        assert np.array_equal(got, w)
    for got, w in zip(model.stream().step_n(tuple(x[1] for x in X)), want):
        assert np.array_equal(got, w[1])
    rows = model.streams(2).step(tuple(x[:, 4] for x in X))
    assert all(np.array_equal(r, w[:, 4]) for r, w in zip(rows, want))
    loaded = engine.load(spec.save(os.path.join(tempfile.mkdtemp(), "m.npz")))
    assert all(np.array_equal(a, b) for a, b in zip(loaded.run(tuple(X)), model.run(tuple(X))))
    with pytest.raises(engine.SpecError, match=r"Concat along axis 0 of frames \(3, 1\), \(3, 4\), \(3, 2\): the"):
        ModelSpec.graph([Input(n, s) for n, s in zip("abc", shapes)], [Node("j", engine.spec.Concat(0), list("abc"))],
                        ["j"])
    with pytest.raises(engine.SpecError, match=r"takes 2 input\(s\) or more, got 1"):
        ModelSpec.graph([Input("a", 3)], [Node("c", engine.spec.Concat(0), ["a"])], ["c"])


class BeatTracker(torch.nn.Module):
    """The shape of a beat tracker: each spectrum frame convolved along frequency, max-pooled, flattened and
    projected, then a 2-layer LSTM and a softmax over (beat, downbeat, none)."""

    def __init__(self, F=40, H=16):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 2, 10)
        self.pool = torch.nn.MaxPool1d(2)
        self.proj = torch.nn.Linear(2 * ((F - 9) // 2), 24)
        self.lstm = torch.nn.LSTM(24, H, num_layers=2, batch_first=True)
        self.out = torch.nn.Linear(H, 3)

    def forward(self, x):                                  # x (B, T, F)
        B, T, F = x.shape
        z = self.pool(torch.relu(self.conv(x.reshape(B * T, 1, F))))
        z = self.proj(z.flatten(1)).reshape(B, T, -1)
        return torch.softmax(self.out(self.lstm(z)[0]), -1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_beat_tracker_convolving_each_spectrum_frame_matches_torch_sample_by_sample(dtype):
    torch.manual_seed(13)
    net = BeatTracker().double().eval()
    X = np.random.default_rng(13).normal(size=(2, 30, 40))
    with torch.inference_mode():
        ref = net(torch.from_numpy(X)).numpy()
    l1, l2 = recurrent_layers_from_torch(net.lstm)
    spec = ModelSpec.graph([Input("spectrum", 40)], [
        Node("frame", engine.spec.Unsqueeze(0), "spectrum"),                      # (1, 40): one channel
        Node("conv", engine.FrameConv(_np(net.conv.weight), _np(net.conv.bias)), "frame"),
        Node("relu", Activation("relu"), "conv"), Node("pool", engine.Pool("max", 2), "relu"),
        Node("flat", engine.spec.Flatten(), "pool"),
        Node("proj", Dense(_np(net.proj.weight), _np(net.proj.bias)), "flat"),
        Node("lstm1", l1, "proj"), Node("lstm2", l2, "lstm1"),
        Node("out", Dense(_np(net.out.weight), _np(net.out.bias)), "lstm2"), Node("p", Activation("softmax"), "out"),
    ], ["p"], dtype=dtype)
    model = engine.Model(spec)
    _check_all_ways(model, X, ref, dtype, "beat tracker")


MATH = [("sqrt", torch.sqrt), ("exp", torch.exp), ("log", torch.log), ("abs", torch.abs), ("neg", torch.neg),
        ("reciprocal", torch.reciprocal), (("pow", 3.0), lambda t: t ** 3), (("pow", -0.5), lambda t: t ** -0.5)]


@pytest.mark.parametrize("name, fn", MATH, ids=[str(n) for n, _ in MATH])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_elementwise_math_matches_torch(name, fn, dtype):
    X = np.random.default_rng(14).uniform(0.2, 4, (2, 9, 5))     # positive: sqrt, log, fractional powers
    with torch.inference_mode():
        ref = fn(torch.from_numpy(X)).numpy()
    model = engine.Model(ModelSpec([Activation.of(name)], input_size=5), dtype=dtype)
    _check_all_ways(model, X, ref, dtype, str(name))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("which", ["group", "instance", "instance-no-affine"])
def test_group_and_instance_norm_match_torch(dtype, which):
    torch.manual_seed(15)
    if which == "group":
        module = torch.nn.GroupNorm(3, 6).double()
    else:
        module = torch.nn.InstanceNorm1d(6, affine=which == "instance").double()
    if which != "instance-no-affine":
        module.weight.data.normal_()
        module.bias.data.normal_()
        w, b = _np(module.weight), _np(module.bias)
    else:
        w = b = None
    layer = engine.GroupNorm(3, 6, w, b) if which == "group" else engine.InstanceNorm(6, w, b)
    X = np.random.default_rng(15).normal(size=(2, 5, 6, 7)) * 2 + 1
    _frames_vs_torch([Node("n", layer, "x")], (6, 7), module, X, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("axis", [0, -1])
def test_l2_normalization_matches_torch(dtype, axis):
    X = np.random.default_rng(16).normal(size=(2, 5, 6, 7))
    module = lambda t: torch.nn.functional.normalize(t, dim=1 if axis == 0 else -1)  # noqa: E731 - (batch, *frame)
    _frames_vs_torch([Node("n", engine.L2Norm(axis), "x")], (6, 7), module, X, dtype)


def _everything(rng):
    """One graph through every front-end kind: ids and a spectrum-like input; the NumPy reference's oracle."""
    F, C = 12, 4
    nodes = [
        Node("emb", Embedding(rng.normal(size=(9, 6))), "ids"),                                   # (6,)
        Node("tconv", TemporalConv1d(rng.normal(0, 0.4, (6, 3, 3)), rng.normal(size=6), dilation=2, groups=2),
             "emb"),
        Node("gn", engine.GroupNorm(2, 6, rng.normal(size=6), rng.normal(size=6)), "tconv"),
        Node("frame", engine.Unsqueeze([0]), "spec"),                                              # (1, F)
        Node("fconv", engine.FrameConv(rng.normal(0, 0.4, (C, 1, 3)), rng.normal(size=C), padding=1), "frame"),
        Node("bn", BatchNorm(rng.normal(size=C), rng.uniform(0.5, 2, C), rng.normal(size=C), rng.normal(size=C)),
             "fconv"),
        Node("prelu", engine.PReLU(rng.uniform(-0.5, 0.5, C)), "bn"),
        Node("pool", engine.Pool("avg", 3, 2, 1, count_include_pad=False), "prelu"),               # (C, 6)
        Node("pad", engine.Pad([[0, 0], [1, 1]], mode="reflect"), "pool"),                         # (C, 8)
        Node("mpool", engine.Pool("max", (2,)), "pad"),                                            # (C, 4)
        Node("flat", engine.Flatten(), "mpool"),                                                   # (16,)
        Node("ln", LayerNorm(16, rng.normal(size=16), rng.normal(size=16)), "flat"),
        Node("proj", Dense(rng.normal(0, 0.3, (6, 16)), rng.normal(size=6)), "ln"),
        Node("mix", engine.Concat(0), ["proj", "gn"]),                                             # (12,)
        Node("gelu", Activation("gelu"), "mix"),
        Node("l2", engine.L2Norm(), "gelu"),
        Node("t", engine.Reshape([3, 4]), "l2"),
        Node("tt", engine.Transpose([1, 0]), "t"),                                                 # (4, 3)
        Node("sm", Activation("softmax", axis=0), "tt"),
        Node("out", engine.Slice(1, 0, 2), "sm"),                                                  # (4, 2)
    ]
    return ModelSpec.graph([Input("ids", (), "int64"), Input("spec", F)], nodes, ["out", "gn"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_graph_through_every_front_end_kind_matches_the_numpy_reference(dtype):
    from tests.reference import naive

    rng = np.random.default_rng(17)
    spec = _everything(rng).with_dtype(dtype)
    ids = rng.integers(0, 9, (3, 10))
    S = rng.normal(size=(3, 10, 12))
    want = naive.run_graph(spec, {"ids": ids.T, "spec": S.transpose(1, 0, 2)})
    model = engine.Model(spec)
    got = model.run((ids, S))
    tol = REFERENCE_F64 if dtype == "float64" else REFERENCE_F32
    for g, w, name in zip(got, want, spec.outputs):
        assert_parity(g, w.swapaxes(0, 1), tol, dtype, f"run {name}")
    stepped = model.stream().step_n((ids[1], S[1]))
    for g, w, name in zip(stepped, want, spec.outputs):
        assert_parity(g, w[:, 1], tol, dtype, f"step_n {name}")
    group = model.streams(3)
    for t in range(10):
        rows = group.step((ids[:, t], S[:, t]))
        for g, w in zip(rows, want):
            assert_parity(g, w[t], tol, dtype, f"streams t={t}")
    loaded = engine.load(spec.save(os.path.join(tempfile.mkdtemp(), "everything")))
    assert loaded.identity == model.identity


@settings(max_examples=30, deadline=None)
@given(cfg=frame_convs(), output_padding=st.integers(0, 2), dtype=st.sampled_from(["float32", "float64"]))
def test_frame_conv_transpose_matches_torch(cfg, output_padding, dtype):
    cin, cout, kernel, stride, dilation, padding, groups, spatial, seed = cfg
    output_padding = [min(output_padding, max(s, d) - 1) for s, d in zip(stride, dilation)]
    torch.manual_seed(seed % 1000)
    conv = (torch.nn.ConvTranspose1d if len(kernel) == 1 else torch.nn.ConvTranspose2d)(
        cin, cout, kernel, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
        groups=groups).double()
    X = np.random.default_rng(seed).normal(size=(2, 3, cin, *spatial))
    assume(all((n - 1) * s - 2 * p + d * (k - 1) + op + 1 >= 1
               for n, s, p, d, k, op in zip(spatial, stride, padding, dilation, kernel, output_padding)))
    layer = engine.FrameConvTranspose(_np(conv.weight), _np(conv.bias), stride=stride, padding=padding,
                                      output_padding=output_padding, dilation=dilation, groups=groups)
    _frames_vs_torch([Node("convt", layer, "x")], (cin, *spatial), conv, X, dtype)


def _keras_masked_model(rng):
    """Keras: Masking(0) -> GRU -> LSTM -> Dense, all returning sequences, and the same graph in rnnjit."""
    import keras

    inp = keras.Input((None, 3))
    masked = keras.layers.Masking(0.0)(inp)
    g = keras.layers.GRU(5, return_sequences=True)(masked)
    lstm = keras.layers.LSTM(4, return_sequences=True)(g)
    out = keras.layers.Dense(2)(lstm)
    km = keras.Model(inp, out)
    for w in km.weights:                 # non-zero biases, so that a carried output differs from a fresh one
        w.assign(rng.uniform(-0.6, 0.6, w.shape).astype("float32"))
    (Wg, Ug, bg), (Wl, Ul, bl), (Wd, bd) = (km.layers[i].get_weights() for i in (2, 3, 4))
    H = 5
    zr = lambda a: np.concatenate([a[..., H:2 * H], a[..., :H], a[..., 2 * H:]], axis=-1)  # noqa: E731 Keras z,r,h
    gru = engine.GRU(3, H, {"weight_ih": zr(Wg).T, "weight_hh": zr(Ug).T, "bias_ih": zr(bg[0]), "bias_hh": zr(bg[1])})
    lstm_ = engine.LSTM(5, 4, {"weight_ih": Wl.T, "weight_hh": Ul.T, "bias_ih": bl})  # Keras i,f,c,o = ours
    spec = ModelSpec.graph({"x": 3}, [
        Node("mask", engine.Masking(0.0), "x"), Node("masked", engine.Mul(), ["x", "mask"]),
        Node("gru", gru, ["masked", "mask"]), Node("lstm", lstm_, ["gru", "mask"]),
        Node("out", Dense(Wd.T, bd), "lstm")], ["out"])
    return km, spec


def test_keras_masking_skips_the_masked_timesteps_in_every_recurrent_layer_as_keras_does():
    rng = np.random.default_rng(18)
    km, spec = _keras_masked_model(rng)
    X = rng.normal(size=(3, 12, 3)).astype(np.float32)
    X[0, [0, 3, 4, 9]] = 0.0        # masked at the start, twice in a row, and later
    X[1, 5:] = 0.0                  # a padded tail
    X[2, 6, 1] = 0.0                # one zero feature is not a masked timestep
    ref = np.asarray(km.predict(X, verbose=0))
    model = engine.Model(spec)
    _check_all_ways(model, X, ref, "float32", "masked")
    _, state = model.run(X, return_state=True)
    s = model.stream()
    s.step_n(X[1, :5])
    kept = s.get_state()
    s.step_n(X[1, 5:])                                     # all masked: nothing changes
    assert all(np.array_equal(kept[k], v) for k, v in s.get_state().items())
    np.testing.assert_allclose(state["gru.h"][0, 1], kept["gru.h"], atol=PARITY_F32, rtol=0)   # run's final state


def test_keras_masking_in_bidirectional_layers_outputs_what_keras_does():
    """Masking(0) -> Bidirectional(GRU) -> Bidirectional(LSTM): each direction skips the masked timesteps in its
    own order, and a bidirectional layer outputs zeros there (Keras's Bidirectional); run only (it reads ahead)."""
    import keras

    rng = np.random.default_rng(21)
    inp = keras.Input((None, 3))
    masked = keras.layers.Masking(0.0)(inp)
    g = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True))(masked)
    out = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True))(g)
    km = keras.Model(inp, out)
    for w in km.weights:
        w.assign(rng.uniform(-0.6, 0.6, w.shape).astype("float32"))
    H = 4
    zr = lambda a: np.concatenate([a[..., H:2 * H], a[..., :H], a[..., 2 * H:]], axis=-1)  # noqa: E731 Keras z,r,h
    wg, wl = km.layers[2].get_weights(), km.layers[3].get_weights()   # forward W, U, b then backward
    gru = engine.GRU(3, H, [{"weight_ih": zr(W).T, "weight_hh": zr(U).T, "bias_ih": zr(b[0]), "bias_hh": zr(b[1])}
                            for W, U, b in (wg[:3], wg[3:])], direction="bidirectional")
    lstm = engine.LSTM(2 * H, 3, [{"weight_ih": W.T, "weight_hh": U.T, "bias_ih": b} for W, U, b in (wl[:3], wl[3:])],
                       direction="bidirectional")
    spec = ModelSpec.graph({"x": 3}, [Node("mask", engine.Masking(0.0), "x"),
                                      Node("masked", engine.Mul(), ["x", "mask"]),
                                      Node("gru", gru, ["masked", "mask"]), Node("lstm", lstm, ["gru", "mask"])],
                           ["lstm"])
    X = rng.normal(size=(3, 10, 3)).astype(np.float32)
    X[0, [0, 4, 5]] = 0.0           # masked at the start and twice in a row
    X[1, 6:] = 0.0                  # a padded tail: the backward direction starts at its last real timestep
    X[2, 9] = 0.0
    ref = np.asarray(km.predict(X, verbose=0))
    model = engine.Model(spec)
    assert not model.streamable
    assert_parity(model.run(X), ref, PARITY_F32, "float32", "masked bidirectional")
    # without the mask edges the same weights give something else (the test can fail)
    plain = ModelSpec.graph({"x": 3}, [Node("gru", gru, "x"), Node("lstm", lstm, "gru")], ["lstm"])
    assert np.abs(engine.Model(plain).run(X) - ref).max() > 1e-2


def test_batch_norm_is_folded_into_the_dense_or_convolution_before_it_where_that_is_exact():
    torch.manual_seed(19)

    def bn(C):
        b = torch.nn.BatchNorm1d(C).double().eval()
        b.running_mean.normal_()
        b.running_var.uniform_(0.5, 2)
        b.weight.data.normal_()
        b.bias.data.normal_()
        return b

    def B(b):
        return BatchNorm(_np(b.running_mean), _np(b.running_var), _np(b.weight), _np(b.bias))

    lin, b1 = torch.nn.Linear(5, 6).double(), bn(6)
    conv, b2 = torch.nn.Conv1d(6, 6, 3, dilation=2).double(), bn(6)
    fconv, b3 = torch.nn.Conv1d(6, 2, 3, padding=1).double(), bn(2)
    X = np.random.default_rng(19).normal(size=(2, 9, 5))
    with torch.inference_mode():
        h = b1(lin(torch.from_numpy(X)).transpose(1, 2))                                   # (B, C, T)
        h = b2(conv(torch.nn.functional.pad(h, (4, 0)))).transpose(1, 2)                   # (B, T, C)
        side = h.reshape(18, 1, 6).repeat(1, 6, 1)                                          # each frame (6, 6)
        ref = h.numpy()
        ref2 = b3(fconv(side)).reshape(2, 9, 2, 6).numpy()
    nodes = [Node("lin", Dense(_np(lin.weight), _np(lin.bias)), "x"), Node("bn1", B(b1), "lin"),
             Node("conv", TemporalConv1d(_np(conv.weight), _np(conv.bias), dilation=2), "bn1"),
             Node("bn2", B(b2), "conv"), Node("u", engine.Unsqueeze(0), "bn2"),
             Node("rep", engine.Concat(0), ["u", "u"]), Node("rep2", engine.Concat(0), ["rep", "rep"]),
             Node("rep3", engine.Concat(0), ["rep2", "rep"]),
             Node("fconv", engine.FrameConv(_np(fconv.weight), _np(fconv.bias), padding=1), "rep3"),
             Node("bn3", B(b3), "fconv")]
    for dtype in ("float32", "float64"):
        model = engine.Model(ModelSpec.graph({"x": 5}, nodes, ["bn2", "bn3"], dtype=dtype))
        assert model._plan.folded == {"lin": "bn1", "conv": "bn2", "fconv": "bn3"}
        y, y2 = model.run(X)
        assert_parity(y, ref, TOL[dtype], dtype, "folded run")
        assert_parity(y2, ref2, _scaled(ref2, dtype), dtype, "folded frame conv")
        s1, s2 = model.stream().step_n(X[1])
        assert_parity(s1, ref[1], TOL[dtype], dtype, "folded step_n")
        assert list(model.stream().get_state()) == ["conv.frames"]
    # read by another node too: nothing folds, and the numbers are the same
    shared = ModelSpec.graph({"x": 5}, nodes[:2] + [Node("other", Activation("tanh"), "lin")], ["bn1", "other"],
                             dtype="float64")
    model = engine.Model(shared)
    assert model._plan.folded == {}
    assert_parity(model.run(X)[0], np.asarray(b1(lin(torch.from_numpy(X)).transpose(1, 2)).transpose(1, 2).detach()),
                  PARITY_F64, "float64", "unfolded")


@pytest.mark.parametrize("act, module", [(Activation("relu"), torch.nn.ReLU()),
                                         (Activation("leaky_relu", 0.1), torch.nn.LeakyReLU(0.1)),
                                         (Activation("relu6"), torch.nn.ReLU6()),
                                         (Activation("clip", -0.5, 0.25), torch.nn.Hardtanh(-0.5, 0.25))])
def test_an_activation_after_a_dense_or_convolution_is_fused_into_its_kernel(act, module):
    """Conv1d -> BatchNorm -> act -> Conv2d-over-frames -> act -> Linear -> act: each activation runs inside the
    kernel before it (one node each), and the numbers are torch's through run, step_n and streams; leaky_relu
    applied twice would be off by alpha (so a double application cannot pass)."""
    torch.manual_seed(20)
    conv, bn = torch.nn.Conv1d(3, 4, 3).double(), torch.nn.BatchNorm1d(4).double().eval()
    bn.running_mean.normal_()
    fconv, lin = torch.nn.Conv1d(1, 2, 3, padding=1).double(), torch.nn.Linear(8, 5).double()
    X = np.random.default_rng(20).normal(size=(2, 11, 3))
    with torch.inference_mode():
        h = module(bn(conv(torch.nn.functional.pad(torch.from_numpy(X).transpose(1, 2), (2, 0))))).transpose(1, 2)
        h = module(fconv(h.reshape(22, 1, 4))).reshape(2, 11, 8)
        ref = module(lin(h)).numpy()
    nodes = [Node("conv", TemporalConv1d(_np(conv.weight), _np(conv.bias)), "x"),
             Node("bn", BatchNorm(_np(bn.running_mean), _np(bn.running_var), _np(bn.weight), _np(bn.bias)), "conv"),
             Node("a1", act, "bn"), Node("u", engine.Unsqueeze(0), "a1"),
             Node("fconv", engine.FrameConv(_np(fconv.weight), _np(fconv.bias), padding=1), "u"),
             Node("a2", act, "fconv"), Node("flat", engine.Flatten(), "a2"),
             Node("lin", Dense(_np(lin.weight), _np(lin.bias)), "flat"), Node("a3", act, "lin")]
    for dtype in ("float32", "float64"):
        model = engine.Model(ModelSpec.graph({"x": 3}, nodes, ["a3"], dtype=dtype))
        assert model._plan.fused == {"conv": "a1", "fconv": "a2", "lin": "a3"}
        assert [s.name for s in model._plan.steps] == ["conv", "u", "fconv", "flat", "lin"]
        _check_all_ways(model, X, ref, dtype, f"fused {act!r}")
    # an output read by two nodes, or a graph output, keeps its activation apart
    model = engine.Model(ModelSpec.graph({"x": 3}, nodes[:3] + [Node("t", Activation("tanh"), "bn")], ["a1", "t"]))
    assert model._plan.fused == {}
    model = engine.Model(ModelSpec.graph({"x": 3}, nodes[:3], ["a1", "bn"]))
    assert model._plan.fused == {}
