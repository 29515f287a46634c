"""Nodes that change the rate along time or emit late: strided temporal convolutions, pooling along time, and
padding that reads ahead. Against torch (MaxPool1d, AvgPool1d, Conv1d with stride over the padded sequence) and
the NumPy reference; what a stream does on the ticks with no output (None, nothing written), step_n's frame
counts, several outputs of different rates, lock-step groups, state, snapshots and the errors."""

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import engine
from engine.spec import Activation, Add, BatchNorm, Dense, Input, ModelSpec, Node, TemporalConv1d, TemporalPool
from tests.helpers import recurrent_layers_from_torch
from tests.reference.naive import run_graph
from tests.test_frontend import _check_all_ways, _due_ticks, _np, _scaled
from tests.tolerances import PARITY_F64, REFERENCE_F32, REFERENCE_F64, assert_parity


@st.composite
def pools(draw):
    mode = draw(st.sampled_from(["max", "avg"]))
    K = draw(st.integers(1, 4))
    d = draw(st.integers(1, 3)) if mode == "max" else 1
    stride = draw(st.integers(1, 3))
    # torch's symmetric padding is at most half the kernel; "causal" is ours (torch: pad the front first)
    padding = draw(st.sampled_from([0, "sym", "causal"]))
    if padding == "sym":
        padding = draw(st.integers(0, K // 2))
    frame = draw(st.sampled_from([(3,), (2, 3)]))
    include = draw(st.booleans())
    return mode, K, d, stride, padding, frame, include, draw(st.integers(1, 25)), draw(st.integers(0, 2**31))


@settings(max_examples=60, deadline=None)
@given(cfg=pools(), dtype=st.sampled_from(["float32", "float64"]))
def test_temporal_pooling_matches_torch(cfg, dtype):
    """torch's MaxPool1d / AvgPool1d over (batch, channels, time), frames of any shape flattened to channels; the
    causal form against torch on the sequence padded at the front (with -inf for max, zeros for a divisor that
    counts them) or, for an average that leaves the padding out, against the NumPy reference."""
    mode, K, d, stride, padding, frame, include, T, seed = cfg
    span = (K - 1) * d
    left = span if padding == "causal" else padding
    assume(T + 2 * (0 if padding == "causal" else padding) + (left if padding == "causal" else 0) >= span + 1)
    X = np.random.default_rng(seed).normal(size=(3, T) + frame)
    layer = TemporalPool(mode, K, stride, padding, dilation=d, count_include_pad=include)
    xt = torch.from_numpy(X.reshape(3, T, -1)).transpose(1, 2)
    with torch.inference_mode():
        if padding == "causal" and not (mode == "avg" and not include):
            xt = torch.nn.functional.pad(xt, (span, 0), value=-np.inf if mode == "max" else 0.0)
            pad = 0
        else:
            pad = padding
        if padding == "causal" and mode == "avg" and not include:
            ref = run_graph(ModelSpec.graph([Input("x", frame)], [Node("p", layer, "x")], ["p"]),
                            {"x": X.transpose(1, 0, *range(2, X.ndim))})[0]
            ref = np.moveaxis(ref, 1, 0)
        else:
            module = torch.nn.MaxPool1d(K, stride, pad, dilation=d) if mode == "max" else \
                torch.nn.AvgPool1d(K, stride, pad, count_include_pad=include)
            ref = module(xt).transpose(1, 2).numpy().reshape((3, -1) + frame)
    model = engine.Model(ModelSpec.graph([Input("x", frame)], [Node("p", layer, "x")], ["p"]), dtype=dtype)
    assert model.timing == {"p": (stride, span - left)}
    _check_all_ways(model, X, ref, dtype, f"{layer!r}", due=_due_ticks(T, stride, span - left))


class _Ecg(torch.nn.Module):
    """Conv1d(stride 2, causal) -> BatchNorm1d -> ReLU -> MaxPool1d(2) -> GRU -> Linear -> softmax: an ECG /
    IMU classifier's shape, one class distribution per 4 input samples."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 8, 7, stride=2)
        self.bn = torch.nn.BatchNorm1d(8)
        self.pool = torch.nn.MaxPool1d(2)
        self.gru = torch.nn.GRU(8, 16, batch_first=True)
        self.head = torch.nn.Linear(16, 3)

    def forward(self, x):   # (B, T, 1)
        z = torch.relu(self.bn(self.conv(torch.nn.functional.pad(x.transpose(1, 2), (6, 0)))))
        y, _ = self.gru(self.pool(z).transpose(1, 2))
        return torch.softmax(self.head(y), -1)

    def spec(self):
        bn = self.bn
        return ModelSpec([TemporalConv1d(_np(self.conv.weight), _np(self.conv.bias), stride=2),
                          BatchNorm(_np(bn.running_mean), _np(bn.running_var), _np(bn.weight), _np(bn.bias), bn.eps),
                          Activation("relu"), TemporalPool("max", 2),
                          *recurrent_layers_from_torch(self.gru), Dense(_np(self.head.weight), _np(self.head.bias)),
                          Activation("softmax")], input_size=1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_strided_conv_pool_gru_classifier_matches_torch_sample_by_sample(dtype):
    torch.manual_seed(4)
    net = _Ecg().double().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2)
    X = np.random.default_rng(4).normal(size=(2, 61, 1))
    with torch.inference_mode():
        ref = net(torch.from_numpy(X)).numpy()                       # (2, 15, 3): ceil(61 / 2) = 31 -> 15
    model = engine.Model(net.spec(), dtype=dtype)
    assert model.timing == {"layers.6": (4, 2)} and model._plan.folded == {"layers.0": "layers.1"}
    tol = _scaled(ref, dtype)
    _check_all_ways(model, X, ref, dtype, "ecg", due=_due_ticks(61, 4, 2))
    # lengths are carried through each stride: a sequence of 23 samples has 6 outputs, and the GRU's final
    # state is the one after its 6th
    Y, state = model.run(X, lengths=[61, 23], return_state=True)
    with torch.inference_mode():
        short = net(torch.from_numpy(X[1:, :23])).numpy()[0]
        _, h = net.gru(net.pool(torch.relu(net.bn(net.conv(torch.nn.functional.pad(
            torch.from_numpy(X[1:, :23]).transpose(1, 2), (6, 0)))))).transpose(1, 2))
    assert_parity(Y[1, :6], short, tol, dtype, "ecg run with lengths")
    assert_parity(state["layers.4.h"][0, 1], h.numpy()[0, 0], tol, dtype, "ecg final state with lengths")


def test_a_stream_writes_nothing_on_a_tick_with_no_output_and_step_n_returns_the_frames_that_came_due():
    rng = np.random.default_rng(5)
    model = engine.Model(ModelSpec([TemporalPool("avg", 3)], input_size=2), dtype="float64")
    X = rng.normal(size=(10, 2))
    s = model.stream()
    out = np.full(2, 7.0)
    assert s.step(X[0], out=out) is None and s.step(X[1], out=out) is None and np.all(out == 7.0)
    assert s.step(X[2], out=out) is out
    np.testing.assert_allclose(out, X[:3].mean(0), rtol=0, atol=PARITY_F64)
    rest = s.step_n(X[3:])                     # ticks 3..9: outputs due at 5 and 8
    assert rest.shape == (2, 2)
    np.testing.assert_allclose(rest, [X[3:6].mean(0), X[6:9].mean(0)], rtol=0, atol=PARITY_F64)
    assert s.step_n(X[:0]).shape == (0, 2)
    assert s.step_n(X[:1]).shape == (0, 2)     # tick 10: the window 9..11 is not full yet
    with pytest.raises(engine.ShapeError, match=r"shape \(1, 2\)"):
        s.step_n(X[:2], out=np.empty((2, 2)))  # ticks 11 and 12 bring one output


def test_outputs_of_different_rates_come_as_none_where_not_due():
    rng = np.random.default_rng(6)
    nodes = [Node("fast", Dense(rng.normal(size=(3, 2))), "x"),
             Node("slow", TemporalPool("max", 2), "fast")]
    model = engine.Model(ModelSpec.graph({"x": 2}, nodes, ["fast", "slow"]), dtype="float64")
    assert model.timing == {"fast": (1, 0), "slow": (2, 1)}
    X = rng.normal(size=(7, 2))
    s = model.stream()
    first = s.step(X[0])
    assert first[1] is None and first[0].shape == (3,)
    second = s.step(X[1])
    np.testing.assert_allclose(second[1], np.maximum(first[0], second[0]))
    fast, slow = model.stream().step_n(X)
    assert fast.shape == (7, 3) and slow.shape == (3, 3)
    full_fast, full_slow = model.run(X)
    np.testing.assert_allclose(fast, full_fast, rtol=0, atol=PARITY_F64)
    np.testing.assert_allclose(slow, full_slow, rtol=0, atol=PARITY_F64)


def test_a_node_reading_two_rates_is_refused_naming_both_edges():
    rng = np.random.default_rng(7)
    nodes = [Node("half", TemporalConv1d(rng.normal(size=(2, 2, 3)), stride=2), "x"), Node("sum", Add(), ["x", "half"])]
    with pytest.raises(engine.SpecError, match=r"node 'sum'.*edge 'x' has a frame per input frame and edge 'half' "
                                               r"has a frame per 2 input frames"):
        ModelSpec.graph({"x": 2}, nodes, ["sum"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_residual_around_a_look_ahead_convolution_runs_but_does_not_stream(dtype):
    """x + conv(x) with the conv padded on both sides: one frame per input on both edges (run matches the
    reference), but the conv's frames come a frame late, so a stream would add mismatched ticks: refused."""
    rng = np.random.default_rng(8)
    spec = ModelSpec.graph({"x": 2}, [Node("c", TemporalConv1d(rng.normal(size=(2, 2, 3)), padding=1), "x"),
                                      Node("r", Add(), ["x", "c"])], ["r"])
    model = engine.Model(spec, dtype=dtype)
    X = rng.normal(size=(9, 1, 2))
    ref = run_graph(spec, {"x": X})[0]
    assert_parity(model.run(X[:, 0]), ref[:, 0], REFERENCE_F32 if dtype == "float32" else REFERENCE_F64, dtype)
    assert not model.streamable
    with pytest.raises(engine.StreamingError, match=r"node 'r' reads edge 'x' \(a frame per input frame\) with edge "
                                                    r"'c' \(a frame per input frame, 1 frame\(s\) late\)"):
        model.stream()


def test_a_group_of_streams_keeps_one_phase_a_lone_reset_waits_for_it():
    rng = np.random.default_rng(9)
    model = engine.Model(ModelSpec([TemporalConv1d(rng.normal(size=(2, 2, 3)), stride=3)], input_size=2))
    group = model.streams(3)
    group.reset(1)                                   # at the start every phase is where a reset puts it
    assert group.step(rng.normal(size=(3, 2))) is not None
    with pytest.raises(engine.StateError, match=r"reset\(1\): the streams of a group step in lock-step through "
                                                r"node 'layers.0'.*a group \(or a Stream\) of its own"):
        group.reset(1)
    group.step(rng.normal(size=(3, 2)))
    group.step(rng.normal(size=(3, 2)))
    group.reset(1)                                   # phase 0 again: allowed
    state = group.get_state()
    state["layers.0.phase"][2] = 1
    with pytest.raises(engine.StateError, match="must share its phase"):
        group.set_state(state)
    group.reset()


def test_a_strided_stream_snapshot_and_run_state_continue_mid_phase():
    rng = np.random.default_rng(10)
    spec = ModelSpec([TemporalConv1d(rng.normal(size=(3, 2, 3)), rng.normal(size=3), stride=2),
                      TemporalPool("avg", 3, 2, padding=(1, 0), count_include_pad=False),
                      *recurrent_layers_from_torch(torch.nn.GRU(3, 4).double())], input_size=2)
    model = engine.Model(spec, dtype="float64")
    X = rng.normal(size=(40, 2))
    whole = model.stream().step_n(X)
    s = model.stream()
    head = s.step_n(X[:13])
    resumed = engine.Stream.from_bytes(s.to_bytes(), model)
    np.testing.assert_array_equal(np.concatenate([head, resumed.step_n(X[13:])]), whole)
    state = {k: v[None] for k, v in s.get_state().items()}
    tail, final = model.run(X[13:], initial_state=state, return_state=True)
    np.testing.assert_allclose(np.concatenate([head, tail[:len(whole) - len(head)]]), whole, rtol=0, atol=1e-12)
    s.step_n(X[13:])
    for k, v in s.get_state().items():
        np.testing.assert_allclose(final[k][0], v, rtol=0, atol=1e-12, err_msg=k)


def test_strided_nodes_survive_the_native_format(tmp_path):
    rng = np.random.default_rng(11)
    spec = ModelSpec([TemporalConv1d(rng.normal(size=(3, 2, 4)), stride=2, padding=(2, 1), dilation=1),
                      TemporalPool("max", 3, 1, padding="causal", dilation=2)], input_size=2)
    loaded = engine.load(spec.save(tmp_path / "m.rnnjit"))
    X = rng.normal(size=(17, 2))
    a, b = engine.Model(spec), loaded
    assert b.timing == a.timing == {"layers.1": (2, 1)}
    np.testing.assert_array_equal(a.run(X), b.run(X))
    np.testing.assert_array_equal(a.stream().step_n(X), b.stream().step_n(X))


@st.composite
def convs2d(draw):
    G = draw(st.sampled_from([1, 1, 2]))
    cin, cout = G * draw(st.integers(1, 3)), G * draw(st.integers(1, 3))
    Kt, Kf = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    dt, df = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    st_, sf = draw(st.sampled_from([1, 1, 2])), draw(st.integers(1, 2))
    span = (Kt - 1) * dt
    time_pad = draw(st.sampled_from(["causal", 0, span // 2]))
    F = draw(st.integers((Kf - 1) * df + 1, (Kf - 1) * df + 6))
    freq_pad = draw(st.integers(0, 2))
    return G, cin, cout, Kt, Kf, dt, df, st_, sf, time_pad, F, freq_pad, draw(st.integers(3, 20)), draw(st.booleans())


@settings(max_examples=40, deadline=None)
@given(cfg=convs2d(), dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**31))
def test_a_convolution_over_time_and_frequency_matches_torchs_conv2d(cfg, dtype, seed):
    """torch's Conv2d over (batch, channels, time, frequency) with the time axis padded causally (in front) or
    symmetrically: frames (C_in, F) -> (C_out, F'), streamed on the ticks each output's window is in."""
    G, cin, cout, Kt, Kf, dt, df, st_, sf, time_pad, F, freq_pad, T, bias = cfg
    span = (Kt - 1) * dt
    left, right = (span, 0) if time_pad == "causal" else (time_pad, time_pad)
    assume(T + left + right >= span + 1)
    torch.manual_seed(seed % 1000)
    conv = torch.nn.Conv2d(cin, cout, (Kt, Kf), stride=(st_, sf), dilation=(dt, df), groups=G, bias=bias,
                           padding=(0, freq_pad)).double()
    X = np.random.default_rng(seed).normal(size=(2, T, cin, F))
    with torch.inference_mode():
        xt = torch.nn.functional.pad(torch.from_numpy(X).permute(0, 2, 1, 3), (0, 0, left, right))
        ref = conv(xt).permute(0, 2, 1, 3).numpy()                               # (B, T', C_out, F')
    layer = engine.TemporalConv2d(_np(conv.weight), _np(conv.bias) if bias else None, stride=(st_, sf),
                                  dilation=(dt, df), groups=G, padding=(time_pad, freq_pad))
    model = engine.Model(ModelSpec.graph([Input("spec", (cin, F))], [Node("c", layer, "spec")], ["c"]), dtype=dtype)
    assert model.outputs["c"] == ref.shape[2:]
    _check_all_ways(model, X, ref, dtype, f"{layer!r}", due=_due_ticks(T, st_, span - left))


@pytest.mark.parametrize("mode", ["mean", "max"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_cumulative_pool_gives_the_pool_of_every_frame_so_far(mode, dtype):
    """torch's cumulative mean (cumsum / count) and cummax along time, through run (with lengths: the final
    state is each sequence's own), step_n, step and streams; its state continues a stream."""
    X = np.random.default_rng(12).normal(size=(3, 11, 2, 3))
    xt = torch.from_numpy(X)
    ref = (xt.cumsum(1) / torch.arange(1, 12, dtype=torch.float64)[None, :, None, None] if mode == "mean"
           else xt.cummax(1).values).numpy()
    model = engine.Model(ModelSpec.graph([Input("x", (2, 3))], [Node("p", engine.CumulativePool(mode), "x")],
                                         ["p"]), dtype=dtype)
    _check_all_ways(model, X, ref, dtype, f"cumulative {mode}")
    _, state = model.run(X, lengths=[11, 4, 7], return_state=True)
    s = model.stream()
    s.step_n(X[1, :4])
    np.testing.assert_allclose(state["p.total"][0, 1], s.get_state()["p.total"], rtol=1e-6)
    assert state["p.count"][0, 1, 0] == 4 == s.get_state()["p.count"][0]
    np.testing.assert_allclose(s.step_n(X[1, 4:]), ref[1, 4:], rtol=0, atol=1e-5 if dtype == "float32" else 1e-12)


def test_a_phase_out_of_its_range_is_refused_so_no_stream_can_stall():
    """A state (or snapshot) whose phase is not a whole number in [0, max(stride, warmup + 1)) would never come
    due again: set_state refuses it, naming the range, and the stream is left as it was."""
    rng = np.random.default_rng(13)
    model = engine.Model(ModelSpec([TemporalConv1d(rng.normal(size=(2, 2, 3)), stride=3)], input_size=2))
    s = model.stream()
    good = s.get_state()
    for bad in (-1.0, 3.0, 0.5):
        state = dict(good, **{"layers.0.phase": np.array([bad])})
        with pytest.raises(engine.StateError, match=r"'layers.0.phase': a phase is a whole number of input frames "
                                                    r"in \[0, 3\)"):
            s.set_state(state)
    assert {k: v.tolist() for k, v in s.get_state().items()} == {k: v.tolist() for k, v in good.items()}


def test_a_strided_group_on_two_threads_gives_one_threads_frames_bit_for_bit():
    """The rows of a clocked graph (a strided convolution, then a pool) split across two threads: each half
    decides from its own first row's phase, which is every row's."""
    rng = np.random.default_rng(12)
    spec = ModelSpec([TemporalConv1d(rng.normal(size=(3, 2, 3)), stride=2), TemporalPool("max", 2)], input_size=2)
    model = engine.Model(spec)
    one, two = model.streams(7), model.streams(7, threads=2)
    X = rng.normal(size=(20, 7, 2)).astype(np.float32)
    got = 0
    for x in X:
        a, b = one.step(x), two.step(x)
        assert (a is None) == (b is None)
        if a is not None:
            got += 1
            assert np.array_equal(a, b)
    assert got == len(model.run(X[:, 0])) > 0      # the frames a whole sequence of 20 ticks gives

