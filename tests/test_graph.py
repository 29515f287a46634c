"""Graph models: named inputs and outputs, nodes reading named edges, a planned schedule.

The acceptance model (issue: graph models over streams of frames): two inputs, a GRU, a residual add, a mask
multiplied onto an input and two outputs, held against the same torch.nn.Module for ``run`` (batched, with
lengths), ``step``, ``step_n``, ``streams(n)`` (bit-equal to lone streams) and snapshot resume. Then what the
graph spec refuses, and how (node, edge and both shapes named).
"""

import os
import tempfile

import numpy as np
import pytest
import torch

import engine
from engine.spec import GRU, RNN, Add, Dense, Input, ModelSpec, Mul, Node, Sub
from tests.helpers import random_weights, recurrent_layers_from_torch
from tests.tolerances import PARITY_F32, PARITY_F64, assert_parity

F, H = 6, 12
TOL = {"float32": PARITY_F32, "float64": PARITY_F64}


class Denoiser(torch.nn.Module):
    """GRU over the input; its projection added back onto the input (residual); the sum multiplied by a mask
    input; a second head on the GRU."""

    def __init__(self):
        super().__init__()
        self.gru = torch.nn.GRU(F, H, batch_first=True)
        self.proj = torch.nn.Linear(H, F)
        self.head = torch.nn.Linear(H, 3)

    def forward(self, x, mask, lengths=None, h0=None):
        if lengths is None:
            g, _ = self.gru(x, h0)
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.as_tensor(lengths), batch_first=True,
                                                             enforce_sorted=False)
            g, _ = self.gru(packed, h0)
            g, _ = torch.nn.utils.rnn.pad_packed_sequence(g, batch_first=True, total_length=x.shape[1])
        return (self.proj(g) + x) * mask, self.head(g)


def _np(t):
    return t.detach().double().numpy()


def _graph(net, mask_shape=(F,), dtype="float32"):
    (gru,) = recurrent_layers_from_torch(net.gru)
    nodes = [   # deliberately not in topological order: the spec sorts them
        Node("masked", Mul(), ["res", "mask"]),
        Node("gru", gru, "x"),
        Node("proj", Dense(_np(net.proj.weight), _np(net.proj.bias)), "gru"),
        Node("res", Add(), ["proj", "x"]),
        Node("head", Dense(_np(net.head.weight), _np(net.head.bias)), "gru"),
    ]
    return ModelSpec.graph([Input("x", F), Input("mask", mask_shape)], nodes, ["masked", "head"], dtype=dtype)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(7)
    return Denoiser().double().eval()


def _data(rng, B, T, mask_shape=(F,)):
    X = rng.uniform(-1, 1, (B, T, F))
    M = (rng.uniform(0, 1, (B, T) + mask_shape) > 0.3).astype(np.float64) * rng.uniform(0.5, 1.5, (B, T) + mask_shape)
    return X, M


def _torch(net, X, M, lengths=None, h0=None):
    with torch.inference_mode():
        a, b = net(torch.from_numpy(X), torch.from_numpy(M), lengths,
                   None if h0 is None else torch.from_numpy(h0))
    return a.numpy(), b.numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_run_batched_with_lengths_matches_torch(net, dtype):
    rng = np.random.default_rng(1)
    X, M = _data(rng, 5, 11)
    lengths = np.array([11, 4, 1, 8, 11])
    ref_masked, ref_head = _torch(net, X, M, lengths)
    model = engine.Model(_graph(net, dtype=dtype))
    masked, head = model.run((X, M), lengths=lengths)
    assert masked.shape == (5, 11, F) and head.shape == (5, 11, 3)
    assert_parity(masked, ref_masked, TOL[dtype], dtype, "masked")
    assert_parity(head, ref_head, TOL[dtype], dtype, "head")
    # a dict by name is the same call; time-major too
    m2, h2 = model.run({"mask": M, "x": X}, lengths=lengths)
    assert np.array_equal(m2, masked) and np.array_equal(h2, head)
    m3, h3 = model.run((X.transpose(1, 0, 2), M.transpose(1, 0, 2)), lengths=lengths, batch_first=False)
    assert np.array_equal(m3.transpose(1, 0, 2), masked) and np.array_equal(h3.transpose(1, 0, 2), head)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_run_with_an_initial_state_named_by_node_matches_torch(net, dtype):
    rng = np.random.default_rng(2)
    X, M = _data(rng, 3, 7)
    h0 = rng.uniform(-1, 1, (1, 3, H))
    ref_masked, ref_head = _torch(net, X, M, h0=h0)
    (masked, head), state = engine.Model(_graph(net, dtype=dtype)).run((X, M), initial_state={"gru.h": h0},
                                                                      return_state=True)
    assert_parity(masked, ref_masked, TOL[dtype], dtype, "masked")
    assert_parity(head, ref_head, TOL[dtype], dtype, "head")
    assert sorted(state) == ["gru.h"] and state["gru.h"].shape == (1, 3, H)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_step_and_step_n_match_torch(net, dtype):
    rng = np.random.default_rng(3)
    X, M = _data(rng, 1, 40)
    ref_masked, ref_head = _torch(net, X, M)
    model = engine.Model(_graph(net, dtype=dtype))
    s = model.stream()
    masked, head = s.step_n((X[0], M[0]))
    assert_parity(masked, ref_masked[0], TOL[dtype], dtype, "step_n masked")
    assert_parity(head, ref_head[0], TOL[dtype], dtype, "step_n head")
    s.reset()
    out = (np.empty(F, dtype), np.empty(3, dtype))
    for t in range(40):
        got = s.step({"x": X[0, t], "mask": M[0, t]}, out=out)
        assert got[0] is out[0] and got[1] is out[1]
        assert np.array_equal(out[0], masked[t]) and np.array_equal(out[1], head[t]), t
    assert sorted(s.get_state()) == ["gru.h"]


@pytest.mark.parametrize("threads", [1, 2])
def test_streams_are_bit_equal_to_lone_streams(net, threads):
    rng = np.random.default_rng(4)
    n, T = 5, 25
    X, M = _data(rng, n, T)
    model = engine.Model(_graph(net))
    lone = [model.stream().step_n((X[i].astype(np.float32), M[i].astype(np.float32))) for i in range(n)]
    group = model.streams(n, threads=threads)
    assert group.threads == threads
    for t in range(T):
        masked, head = group.step((X[:, t], M[:, t]))
        for i in range(n):
            assert np.array_equal(masked[i], lone[i][0][t]) and np.array_equal(head[i], lone[i][1][t]), (t, i)
    group.reset(2)
    masked, _ = group.step((X[:, 0], M[:, 0]))
    assert np.array_equal(masked[2], lone[2][0][0])


def test_snapshot_resume_continues_exactly(net):
    rng = np.random.default_rng(5)
    X, M = _data(rng, 1, 30)
    X, M = X[0].astype(np.float32), M[0].astype(np.float32)
    model = engine.Model(_graph(net))
    whole = model.stream().step_n((X, M))
    s = model.stream()
    s.step_n((X[:13], M[:13]))
    resumed = engine.Stream.from_bytes(s.to_bytes(), model)
    rest = resumed.step_n((X[13:], M[13:]))
    assert np.array_equal(rest[0], whole[0][13:]) and np.array_equal(rest[1], whole[1][13:])
    group = model.streams(2)
    group.step((np.stack([X[0], X[1]]), np.stack([M[0], M[1]])))
    again = engine.Streams.from_bytes(group.to_bytes(), model)
    assert np.array_equal(again.get_state()["gru.h"], group.get_state()["gru.h"])


def test_a_mask_of_one_value_per_frame_broadcasts_as_in_torch(net):
    rng = np.random.default_rng(6)
    X, M = _data(rng, 2, 9, mask_shape=(1,))
    ref_masked, ref_head = _torch(net, X, M)
    model = engine.Model(_graph(net, mask_shape=(1,), dtype="float64"))
    masked, head = model.run((X, M))
    assert_parity(masked, ref_masked, PARITY_F64, "float64", "masked")
    stepped = model.stream().step_n((X[1], M[1]))
    assert_parity(stepped[0], ref_masked[1], PARITY_F64, "float64", "stepped masked")


def test_saved_graph_loads_as_the_same_model(net, tmp_path):
    spec = _graph(net)
    path = spec.save(tmp_path / "denoiser")
    assert engine.io.native_format_version(path) == 2
    loaded = engine.load(path)
    model = engine.Model(spec)
    assert loaded.identity == model.identity
    assert [n.name for n in loaded.spec.nodes] == [n.name for n in spec.nodes]
    X, M = _data(np.random.default_rng(8), 2, 6)
    for a, b in zip(loaded.run((X, M)), model.run((X, M))):
        assert np.array_equal(a, b)


def test_a_chain_is_the_graph_of_one_input_and_one_output():
    rng = np.random.default_rng(9)
    spec = ModelSpec([GRU(4, 8, random_weights(rng, "gru", 4, 8)), Dense(rng.uniform(-1, 1, (2, 8)))])
    assert spec.is_chain and len(spec.layers) == 2
    assert [n.name for n in spec.nodes] == ["layers.0", "layers.1"]
    assert [n.inputs for n in spec.nodes] == [("input",), ("layers.0",)]
    assert spec.outputs == ("layers.1",) and spec.input_size == 4 and spec.output_size == 2
    # the same graph written out by hand is a chain too, and runs the same
    same = ModelSpec.graph({"input": 4}, list(spec.nodes), ["layers.1"])
    assert same.is_chain and engine.Model(same).identity == engine.Model(spec).identity


def test_reverse_rnn_in_a_graph_is_refused_for_streaming_naming_the_node():
    rng = np.random.default_rng(10)
    spec = ModelSpec.graph({"x": 4}, [
        Node("fwd", GRU(4, 5, random_weights(rng, "gru", 4, 5)), "x"),
        Node("backwards", RNN(4, 5, random_weights(rng, "rnn", 4, 5), direction="reverse"), "x"),
        Node("sum", Add(), ["fwd", "backwards"]),
    ], ["sum"])
    model = engine.Model(spec)
    assert not model.streamable
    with pytest.raises(engine.StreamingError, match=r"node 'backwards' \(RNN, .*reverse.*\).*model.run"):
        model.stream()
    with pytest.raises(engine.StreamingError, match="node 'backwards'"):
        model.streams(3)
    assert model.run(rng.uniform(-1, 1, (7, 4))).shape == (7, 5)


def _small(rng):
    return GRU(4, 5, random_weights(rng, "gru", 4, 5))


def test_shape_errors_name_the_node_the_edge_and_both_shapes():
    rng = np.random.default_rng(11)
    with pytest.raises(engine.SpecError, match=r"node 'head' \(Dense\) on edge 'gru' \(frames of shape \(5,\)\).*"
                                               r"\(3, 7\).*expects 7 inputs"):
        ModelSpec.graph({"x": 4}, [Node("gru", _small(rng), "x"), Node("head", Dense(np.ones((3, 7))), "gru")],
                        ["head"])
    with pytest.raises(engine.SpecError, match=r"node 'sum' \(Sub\).*edge 'gru' \(5,\) and edge 'x' \(4,\) do not "
                                               r"broadcast"):
        ModelSpec.graph({"x": 4}, [Node("gru", _small(rng), "x"), Node("sum", Sub(), ["gru", "x"])], ["sum"])
    with pytest.raises(engine.SpecError, match=r"node 'gru' \(GRU\).*1-D frames.*edge 'spec'.*\(2, 4\)"):
        ModelSpec.graph([Input("spec", (2, 4))], [Node("gru", _small(rng), "spec")], ["gru"])


@pytest.mark.parametrize("build, message", [
    (lambda r: ([Node("a", _small(r), "y")], ["a"]), r"node 'a' reads edge 'y', which no graph input or node"),
    (lambda r: ([Node("a", Add(), ["x", "b"]), Node("b", Add(), ["a", "x"])], ["a"]),
     r"cycle through nodes \['a', 'b'\]"),
    (lambda r: ([Node("x", _small(r), "x")], ["x"]), r"used more than once: \['x'\]"),
    (lambda r: ([Node("a", _small(r), "x")], ["x"]), r"output 'x' is a graph input"),
    (lambda r: ([Node("a", _small(r), "x")], ["zz"]), r"output 'zz' is not an edge"),
    (lambda r: ([Node("a", _small(r), "x")], ["a", "a"]), r"outputs must be distinct"),
    (lambda r: ([Node("a", Add(), ["x"])], ["a"]), r"node 'a' \(Add\) takes 2 input\(s\), got 1"),
    (lambda r: ([Node("a", _small(r), ["x", "x", "x"])], ["a"]),
     r"node 'a' \(GRU\) takes 1 input\(s\) \(and a mask\), got 3"),
    (lambda r: ([Node("a", _small(r), ["x", "x"])], ["a"]), r"node 'a' \(GRU\).*second input is a mask.*edge 'x' "
                                                             r"carries float frames of shape \(4,\)"),
])
def test_graph_mistakes_are_refused_clearly(build, message):
    nodes, outputs = build(np.random.default_rng(12))
    with pytest.raises(engine.SpecError, match=message):
        ModelSpec.graph({"x": 4}, nodes, outputs)


def test_a_graph_has_no_layers_but_says_where_to_look(net):
    spec = _graph(net)
    assert not spec.is_chain
    with pytest.raises(engine.SpecError, match="spec.nodes"):
        spec.layers
    with pytest.raises(engine.SpecError, match=r"input_size is for one input.*'x' \(6,\), 'mask' \(6,\)"):
        spec.input_size
    model = engine.Model(spec)
    assert model.inputs == {"x": ((F,), "float32"), "mask": ((F,), "float32")}
    assert model.outputs == {"masked": (F,), "head": (3,)}
    assert "masked = Mul()(res (6,), mask (6,)) -> (6,)" in model.summary()


def test_several_inputs_are_checked_by_name_count_and_shape(net):
    model = engine.Model(_graph(net))
    s = model.stream()
    x, m = np.zeros(F, np.float32), np.ones(F, np.float32)
    with pytest.raises(engine.ShapeError, match=r"2 inputs \['x', 'mask'\].*tuple of 2 arrays"):
        s.step(x)
    with pytest.raises(engine.ShapeError, match=r"missing \['mask'\]"):
        s.step({"x": x})
    with pytest.raises(engine.ShapeError, match=r"unknown \['y'\]"):
        s.step({"x": x, "mask": m, "y": m})
    with pytest.raises(engine.ShapeError, match=r"input 'mask': expected float32 of shape \(6,\), got float32 \(5,\)"):
        s.step((x, m[:5]))
    with pytest.raises(engine.ShapeError, match=r"input 'x'.*got dtype <U1"):
        s.step((np.array(list("abcdef")), m))
    with pytest.raises(engine.ShapeError, match=r"out must be a tuple of 2 arrays"):
        s.step((x, m), out=np.empty(F, np.float32))
    with pytest.raises(engine.ShapeError, match=r"out for output 'head'.*float32 array of shape \(3,\), got float64"):
        s.step((x, m), out=(np.empty(F, np.float32), np.empty(3)))
    same = np.empty(F, np.float32)
    with pytest.raises(engine.ShapeError, match="a different array for each output"):
        engine.Model(ModelSpec.graph({"x": F}, [Node("a", Add(), ["x", "x"]), Node("b", Add(), ["x", "x"])],
                                     ["a", "b"])).stream().step(x, out=(same, same))
    with pytest.raises(engine.ShapeError, match=r"2 inputs"):
        model.run(np.zeros((3, F)))
    # lists and float64 are converted, as for chains
    a, b = s.step(([0.0] * F, np.ones(F)))
    assert a.dtype == np.float32 and b.shape == (3,)


def test_state_and_snapshots_are_named_by_node(net):
    model = engine.Model(_graph(net))
    s = model.stream()
    s.step((np.ones(F), np.ones(F)))
    state = s.get_state()
    assert list(state) == ["gru.h"]
    fresh = model.stream()
    fresh.set_state(state)
    assert np.array_equal(fresh.get_state()["gru.h"], state["gru.h"])
    with pytest.raises(engine.StateError, match=r"expected \['gru.h'\].*unknown \['layers.0.h'\]"):
        fresh.set_state({"gru.h": state["gru.h"], "layers.0.h": state["gru.h"]})


def test_frames_of_any_shape_flow_through_elementwise_nodes():
    spec = ModelSpec.graph([Input("a", (2, 3)), Input("b", (3,))], [Node("s", Sub(), ["a", "b"]),
                                                                     Node("p", Mul(), ["s", "s"])], ["p"],
                           dtype="float64")
    model = engine.Model(spec)
    rng = np.random.default_rng(13)
    A, B = rng.normal(size=(4, 2, 3)), rng.normal(size=(4, 3))
    want = (A - B[:, None, :]) ** 2
    assert np.array_equal(model.run((A, B)), want)
    assert np.array_equal(model.stream().step_n((A, B)), want)
    s = model.stream()
    assert np.array_equal(s.step((A[0], B[0])), want[0])
    assert np.array_equal(model.streams(4).step((A, B)), want)


class Tagger(torch.nn.Module):
    """A text model's shape: token ids -> embedding -> GRU -> per-token logits."""

    def __init__(self, V=40, D=8):
        super().__init__()
        self.emb = torch.nn.Embedding(V, D, padding_idx=0)
        self.gru = torch.nn.GRU(D, H, batch_first=True)
        self.out = torch.nn.Linear(H, 5)

    def forward(self, ids):
        return self.out(self.gru(self.emb(ids))[0])


def _tagger_spec(net, dtype):
    (gru,) = recurrent_layers_from_torch(net.gru)
    return ModelSpec.graph([Input("ids", (), "int64")], [
        Node("emb", engine.Embedding(_np(net.emb.weight), padding_idx=net.emb.padding_idx), "ids"),
        Node("gru", gru, "emb"),
        Node("out", Dense(_np(net.out.weight), _np(net.out.bias)), "gru"),
    ], ["out"], dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_token_ids_through_an_embedding_match_torch(dtype):
    torch.manual_seed(3)
    net = Tagger().double().eval()
    ids = np.random.default_rng(14).integers(0, 40, (4, 15))
    with torch.inference_mode():
        ref = net(torch.from_numpy(ids)).numpy()
    model = engine.Model(_tagger_spec(net, dtype))
    assert model.inputs == {"ids": ((), "int64")}
    assert_parity(model.run(ids), ref, TOL[dtype], dtype, "run")
    s = model.stream()
    assert_parity(s.step_n(ids[1]), ref[1], TOL[dtype], dtype, "step_n")
    s.reset()
    stepped = np.stack([s.step(int(i)) for i in ids[1]])     # step(token_id): a plain Python int
    assert_parity(stepped, ref[1], TOL[dtype], dtype, "step")
    group = model.streams(4)
    rows = np.stack([group.step(ids[:, t]) for t in range(15)], axis=1)
    lone = np.stack([model.stream().step_n(ids[i]) for i in range(4)])
    assert np.array_equal(rows, lone)


def test_an_id_out_of_the_table_is_refused_before_any_kernel_reads_it():
    torch.manual_seed(4)
    model = engine.Model(_tagger_spec(Tagger().double().eval(), "float32"))
    s, group = model.stream(), model.streams(3)
    s.step(3)
    before = s.get_state()["gru.h"].copy()
    message = r"input 'ids': id {} is out of range for node 'emb', a table of 40 rows \(ids must lie in \[0, 40\)\)"
    for bad, call in [(40, lambda: s.step(40)), (-1, lambda: s.step(-1)), (99, lambda: s.step_n([1, 2, 99])),
                      (2**40, lambda: group.step(np.array([1, 2**40, 3]))),
                      (-7, lambda: model.run(np.array([[1, -7]]))),
                      (40, lambda: model.run(np.array([5, 40])))]:
        with pytest.raises(engine.ShapeError, match=message.format(bad)):
            call()
    assert np.array_equal(s.get_state()["gru.h"], before), "a refused step changed the state"
    with pytest.raises(engine.ShapeError, match=r"input 'ids': expected a int64 array.*got dtype float64"):
        s.step(3.0)
    with pytest.raises(engine.SpecError, match=r"node 'gru' \(GRU\).*reads float frames.*edge 'ids' carries int64"):
        ModelSpec.graph([Input("ids", (), "int64")], [Node("gru", _small(np.random.default_rng(0)), "ids")],
                        ["gru"])
    with pytest.raises(engine.SpecError, match=r"Embedding reads integer ids.*edge 'x' carries float"):
        ModelSpec.graph({"x": 4}, [Node("e", engine.Embedding(np.ones((3, 2))), "x")], ["e"])
    with pytest.raises(engine.SpecError, match="max_norm"):
        engine.Embedding(np.ones((3, 2)), max_norm=1.0)


def test_an_embedding_graph_saves_and_loads(tmp_path):
    torch.manual_seed(5)
    spec = _tagger_spec(Tagger().double().eval(), "float32")
    loaded = engine.load(spec.save(tmp_path / "tagger"))
    ids = np.arange(12).reshape(2, 6)
    assert loaded.identity == engine.Model(spec).identity
    assert np.array_equal(loaded.run(ids), engine.Model(spec).run(ids))
    assert loaded.spec.nodes[0].layer.padding_idx == 0


@pytest.mark.parametrize("group", [False, True])
@pytest.mark.parametrize("by", ["tuple", "dict"])
def test_a_graph_step_with_out_allocates_nothing_after_warm_up(net, group, by):
    """As tests/test_streams.py's test for chains: tracemalloc's peak over 2,000 steps of the two-input,
    two-output graph, given exact arrays (a tuple, or a dict by name) and a tuple of out arrays."""
    import itertools
    import tracemalloc

    model = engine.Model(_graph(net))
    s = model.streams(3) if group else model.stream()
    lead = (3,) if group else ()
    x, m = np.ones(lead + (F,), np.float32), np.ones(lead + (F,), np.float32)
    xs = (x, m) if by == "tuple" else {"x": x, "mask": m}
    out = (np.empty(lead + (F,), np.float32), np.empty(lead + (3,), np.float32))
    step = s.step
    for _ in range(100):
        assert step(xs, out=out) is out
    tracemalloc.start()
    try:
        loop = itertools.repeat(None, 2000)
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in loop:
            step(xs, out=out)
        end, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    limit = 0 if engine.COMPILED else 4096   # the twin makes a few views and lists per step, freed at once
    assert peak - current <= limit, f"step(out=) allocated up to {peak - current} bytes at once"
    assert end - current <= limit, f"step(out=) kept {end - current} bytes"


def test_outputs_that_share_memory_are_refused(net):
    s = engine.Model(_graph(net)).stream()
    buf = np.empty(F + 3, np.float32)
    with pytest.raises(engine.ShapeError, match="share memory|output 'head'"):
        s.step((np.ones(F), np.ones(F)), out=(buf[:F], buf[F - 3:F]))


def test_an_output_sharing_memory_with_an_input_is_refused(net):
    """The residual node reads x after the GRU ran: an output written over x would change what it reads."""
    s = engine.Model(_graph(net)).stream()
    x, m = np.ones(F, np.float32), np.ones(F, np.float32)
    with pytest.raises(engine.ShapeError, match="must not share memory with an input"):
        s.step((x, m), out=(x, np.empty(3, np.float32)))


def test_constants_are_edges_with_the_same_frame_at_every_timestep():
    rng = np.random.default_rng(20)
    scale, bias = rng.normal(size=(3, 4)), rng.normal(size=4)
    spec = ModelSpec.graph([Input("x", (3, 4))], [Node("a", Mul(), ["x", "scale"]), Node("b", Add(), ["a", "bias"]),
                                                  Node("c", engine.Concat(0), ["b", "scale"])], ["c"],
                           dtype="float64", constants={"scale": scale, "bias": bias})
    model = engine.Model(spec)
    X = rng.normal(size=(2, 5, 3, 4))
    want = np.concatenate([X * scale + bias, np.broadcast_to(scale, X.shape)], axis=2)
    assert np.array_equal(model.run(X), want)
    assert np.array_equal(model.stream().step_n(X[0]), want[0])
    group = model.streams(2)
    for t in range(5):
        assert np.array_equal(group.step(X[:, t]), want[:, t])
    assert model.num_parameters == 16
    loaded = engine.load(spec.save(os.path.join(tempfile.mkdtemp(), "const")))
    assert loaded.identity == model.identity and np.array_equal(loaded.run(X), want)
    other = ModelSpec.graph([Input("x", (3, 4))], list(spec.nodes), ["c"], dtype="float64",
                            constants={"scale": scale + 1, "bias": bias})
    assert engine.Model(other).identity != model.identity
    with pytest.raises(engine.SpecError, match=r"used more than once: \['bias'\]"):
        ModelSpec.graph([Input("bias", 4)], [Node("a", Add(), ["bias", "bias"])], ["a"], constants={"bias": bias})
    with pytest.raises(engine.SpecError, match="output 'bias' is a graph input or a constant"):
        ModelSpec.graph([Input("x", 4)], [Node("a", Add(), ["x", "bias"])], ["bias"], constants={"bias": bias})
    with pytest.raises(engine.SpecError, match="NaN or infinite"):
        ModelSpec.graph([Input("x", 4)], [Node("a", Add(), ["x", "c"])], ["a"], constants={"c": [1, np.nan, 2, 3]})


def test_step_n_refuses_an_output_sharing_memory_with_an_input_as_step_does(net):
    s = engine.Model(_graph(net)).stream()
    X, M = np.ones((4, F), np.float32), np.ones((4, F), np.float32)
    with pytest.raises(engine.ShapeError, match="must not share memory with an input"):
        s.step_n((X, M), out=(X, np.empty((4, 3), np.float32)))
