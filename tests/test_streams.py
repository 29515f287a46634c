"""Streams: step equals run, many streams equal lone ones, state and snapshots resume exactly, bad input is
refused clearly, step(out=) allocates nothing, and the kernels release the GIL."""

import itertools
import sys
import threading
import tracemalloc

import numba
import numpy as np
import pytest

import engine
from tests.helpers import random_weights
from tests.tolerances import STEP_VS_RUN_F32, STEP_VS_RUN_F64


def _model(rng, dtype="float32", I=6, H=16):
    """LSTM(+proj) -> GRU -> RNN(relu) -> Dense -> softmax, with a Normalize in front: every steppable kind."""
    layers = [
        engine.Normalize(rng.uniform(-1, 1, I), rng.uniform(0.5, 2, I)),
        engine.LSTM(I, H, random_weights(rng, "lstm", I, H, Ho=H - 4), proj_size=H - 4,
                    initial_h=rng.uniform(-1, 1, (1, H - 4)), initial_c=rng.uniform(-1, 1, (1, H))),
        engine.GRU(H - 4, H, random_weights(rng, "gru", H - 4, H)),
        engine.RNN(H, 9, random_weights(rng, "rnn", H, 9), activations=["relu"]),
        engine.Dense(rng.uniform(-1, 1, (4, 9)), rng.uniform(-1, 1, 4)),
        engine.Activation("softmax"),
    ]
    return engine.Model(engine.ModelSpec(layers), dtype=dtype)


@pytest.fixture
def model(rng):
    return _model(rng)


@pytest.mark.parametrize("dtype,tol", [("float32", STEP_VS_RUN_F32), ("float64", STEP_VS_RUN_F64)])
def test_step_over_a_sequence_equals_run(rng, dtype, tol):
    model = _model(rng, dtype)
    X = rng.uniform(-2, 2, (300, model.input_size))
    s = model.stream()
    ys = np.stack([s.step(x) for x in X])
    np.testing.assert_allclose(ys, model.run(X), atol=tol, rtol=0)
    assert ys.dtype == np.dtype(dtype)


@pytest.mark.parametrize("n", [2, 3, 8, 65])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_streams_on_two_threads_equal_one_thread_bit_for_bit(rng, n, dtype):
    model = _model(rng, dtype)
    one, two = model.streams(n), model.streams(n, threads=2)
    assert (one.threads, two.threads) == (1, 2)
    X = rng.uniform(-2, 2, (30, n, model.input_size)).astype(dtype)
    out = np.empty((n, model.output_size), dtype)
    for x in X:
        assert np.array_equal(one.step(x), two.step(x, out))
    assert all(np.array_equal(a, b) for a, b in zip(one.get_state().values(), two.get_state().values()))
    two.reset(n - 1)                                  # state by row still reaches the second thread's half
    one.reset(n - 1)
    assert np.array_equal(one.step(X[0]), two.step(X[0]))


@pytest.mark.parametrize("B", [2, 5, 17])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_run_on_two_threads_equals_one_thread_bit_for_bit(rng, B, dtype):
    model = _model(rng, dtype)
    bi = engine.Model(engine.ModelSpec([engine.GRU(6, 8, [random_weights(rng, "gru", 6, 8) for _ in range(2)],
                                                   direction="bidirectional"),
                                        engine.Dense(rng.uniform(-1, 1, (3, 16)), rng.uniform(-1, 1, 3))]),
                      dtype=dtype)
    X = rng.uniform(-2, 2, (B, 40, 6))
    lens = rng.integers(1, 41, B)
    for m in (model, bi):
        one, state_one = m.run(X, lens, return_state=True)
        two, state_two = m.run(X, lens, return_state=True, threads=2)
        assert np.array_equal(one, two)
        assert state_one.keys() == state_two.keys()
        assert all(np.array_equal(state_one[k], state_two[k]) for k in state_one)
    with pytest.raises(ValueError, match="threads must be 1 or 2"):
        model.run(X, lens, threads=3)


def test_threads_are_one_or_two_and_a_lone_stream_needs_none(model):
    for bad in (0, 3, True, 1.5, "2"):
        with pytest.raises(ValueError, match="threads must be 1 or 2"):
            model.streams(4, threads=bad)
    assert model.streams(1, threads=2).threads == 1   # one row: nothing to split


def test_a_forked_child_steps_on_two_threads_with_a_worker_of_its_own(model, rng):
    """The parent's worker thread does not exist in a fork's child: the child's first threaded call starts one."""
    import multiprocessing as mp

    group = model.streams(6, threads=2)
    X = rng.uniform(-2, 2, (6, model.input_size)).astype(np.float32)
    group.step(X)                                     # the parent's worker is running
    ref = model.streams(6)
    ref.step(X)
    want = ref.step(X)                                # the child's call is the group's second step
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=lambda: queue.put(group.step(X)))
    child.start()
    got = queue.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    assert np.array_equal(got, want)


def test_step_n_equals_step_exactly(model, rng):
    X = rng.uniform(-2, 2, (50, model.input_size)).astype(np.float32)
    a, b = model.stream(), model.stream()
    np.testing.assert_array_equal(np.stack([a.step(x) for x in X]), b.step_n(X))
    # and chunks carry state across calls
    c = model.stream()
    np.testing.assert_array_equal(np.concatenate([c.step_n(X[:20]), c.step_n(X[20:])]), model.stream().step_n(X))


def test_many_streams_equal_lone_streams_exactly(model, rng):
    n, T = 5, 40
    X = rng.uniform(-2, 2, (T, n, model.input_size)).astype(np.float32)
    group = model.streams(n)
    lone = [model.stream() for _ in range(n)]
    for t in range(T):
        together = group.step(X[t])
        apart = np.stack([lone[i].step(X[t, i]) for i in range(n)])
        np.testing.assert_array_equal(together, apart)
    # resetting one stream touches only that stream
    group.reset(2)
    lone[2].reset()
    np.testing.assert_array_equal(group.step(X[0]), np.stack([lone[i].step(X[0, i]) for i in range(n)]))
    assert len(group) == n and group.n == n


def test_reset_returns_to_the_initial_state(model, rng):
    X = rng.uniform(-2, 2, (10, model.input_size))
    s = model.stream()
    first = s.step_n(X)
    s.reset()
    np.testing.assert_array_equal(s.step_n(X), first)


def test_get_state_set_state_resumes_identically(model, rng):
    X = rng.uniform(-2, 2, (30, model.input_size))
    s = model.stream()
    s.step_n(X[:10])
    saved = s.get_state()
    assert set(saved) == {"layers.1.h", "layers.1.c", "layers.2.h", "layers.3.h"}
    assert saved["layers.1.h"].shape == (12,) and saved["layers.1.c"].shape == (16,)
    expected = s.step_n(X[10:])
    other = model.stream()
    other.set_state(saved)
    np.testing.assert_array_equal(other.step_n(X[10:]), expected)


def test_snapshot_bytes_resume_identically_for_stream_and_streams(model, rng):
    X = rng.uniform(-2, 2, (30, model.input_size))
    s = model.stream()
    s.step_n(X[:10])
    blob = s.to_bytes()
    expected = s.step_n(X[10:])
    np.testing.assert_array_equal(engine.Stream.from_bytes(blob, model).step_n(X[10:]), expected)

    group = model.streams(3)
    group.step(np.stack([X[0]] * 3))
    blob = group.to_bytes()
    want = group.step(np.stack([X[1]] * 3))
    np.testing.assert_array_equal(engine.Streams.from_bytes(blob, model).step(np.stack([X[1]] * 3)), want)


def test_snapshot_of_another_model_or_altered_bytes_is_refused(model, rng):
    blob = model.stream().to_bytes()
    other = _model(np.random.default_rng(1))
    with pytest.raises(engine.StateError, match="different model"):
        engine.Stream.from_bytes(blob, other)
    with pytest.raises(engine.StateError, match="checksum"):
        altered = bytearray(blob)
        altered[-40] ^= 0xFF  # one byte of the state payload
        engine.Stream.from_bytes(bytes(altered), model)
    with pytest.raises(engine.StateError, match="magic"):
        engine.Stream.from_bytes(b"not a snapshot at all, clearly" * 3, model)
    with pytest.raises(engine.StateError, match="single Stream; restore it with Stream.from_bytes"):
        engine.Streams.from_bytes(blob, model)


def _resealed(blob, **header_changes):
    """A snapshot with its JSON header changed and its checksum recomputed (what a newer writer would make)."""
    import hashlib
    import json
    import struct

    from engine.session import SNAPSHOT_MAGIC

    start = len(SNAPSHOT_MAGIC) + 4
    (hlen,) = struct.unpack_from("<I", blob, len(SNAPSHOT_MAGIC))
    header = json.loads(blob[start:start + hlen])
    header.update(header_changes)
    hjson = json.dumps(header).encode()
    body = SNAPSHOT_MAGIC + struct.pack("<I", len(hjson)) + hjson + blob[start + hlen:-32]
    return body + hashlib.sha256(body).digest()


def test_a_snapshot_of_a_newer_version_is_refused_with_the_versions_named(model, rng):
    from engine.session import SNAPSHOT_VERSION

    s = model.stream()
    s.step_n(rng.uniform(-1, 1, (5, model.input_size)))
    blob = s.to_bytes()
    assert engine.Stream.from_bytes(_resealed(blob), model).get_state().keys() == s.get_state().keys()
    newer = _resealed(blob, version=SNAPSHOT_VERSION + 1)
    with pytest.raises(engine.StateError, match=f"version {SNAPSHOT_VERSION + 1} is newer than this rnnjit "
                                                f"reads \\({SNAPSHOT_VERSION}\\)"):
        engine.Stream.from_bytes(newer, model)


def test_set_state_with_wrong_keys_or_shapes_is_refused_and_changes_nothing(model, rng):
    s = model.stream()
    before = s.get_state()
    bad = dict(before, **{"layers.1.c": np.zeros(3)})
    with pytest.raises(engine.StateError, match=r"layers.1.c.*\(16,\)"):
        s.set_state(bad)
    with pytest.raises(engine.StateError, match="missing"):
        s.set_state({"layers.1.h": before["layers.1.h"]})
    after = s.get_state()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


def test_float64_input_to_a_float32_model_is_converted(model, rng):
    x = rng.uniform(-1, 1, model.input_size)
    y64 = model.stream().step(x)
    y32 = model.stream().step(x.astype(np.float32))
    assert y64.dtype == np.float32
    np.testing.assert_array_equal(y64, y32)
    np.testing.assert_array_equal(model.stream().step(list(x.astype(np.float32))), y32)


@pytest.mark.parametrize("bad,match", [
    (np.zeros(5, np.float32), r"shape \(6,\), got float32 \(5,\)"),
    (np.zeros((1, 6), np.float32), r"shape \(6,\), got float32 \(1, 6\)"),
    (np.array(["a"] * 6), r"got dtype <U1"),
    (np.zeros(6, complex), "complex"),
])
def test_bad_step_input_gets_an_error_naming_the_expected_shape(model, bad, match):
    with pytest.raises(engine.ShapeError, match=match):
        model.stream().step(bad)


def test_bad_out_buffer_is_refused(model):
    s = model.stream()
    x = np.zeros(6, np.float32)
    ro = np.zeros(4, np.float32)
    ro.setflags(write=False)
    for out, match in [(np.zeros(3, np.float32), r"shape \(4,\)"), (np.zeros(4), "float32"), (ro, "read-only"),
                       (np.zeros(8, np.float32)[::2], "not C-contiguous")]:
        with pytest.raises(engine.ShapeError, match=match):
            s.step(x, out=out)


def test_non_contiguous_and_read_only_inputs_work(model, rng):
    X = rng.uniform(-1, 1, (2, 6, 2)).astype(np.float32)
    strided = X[0, :, 0]
    ro = np.ascontiguousarray(strided)
    ro.setflags(write=False)
    np.testing.assert_array_equal(model.stream().step(strided), model.stream().step(ro))


def test_streams_input_shape_is_checked(model):
    with pytest.raises(engine.ShapeError, match=r"\(3, 6\)"):
        model.streams(3).step(np.zeros((2, 6), np.float32))
    with pytest.raises(engine.ShapeError, match=">= 1"):
        model.streams(0)
    with pytest.raises(IndexError):
        model.streams(3).reset(3)


def test_stepping_a_bidirectional_model_raises_and_says_why(rng):
    layer = engine.GRU(3, 4, [random_weights(rng, "gru", 3, 4)] * 2, direction="bidirectional")
    model = engine.Model(engine.ModelSpec([layer]))
    with pytest.raises(engine.StreamingError, match="bidirectional.*run"):
        model.stream()
    assert model.run(np.zeros((5, 3))).shape == (5, 8)


def _wide_model(rng):
    """Every steppable kind, with an output wide enough (2048 floats, 8 kB) that allocating one output-sized
    array in a step would stand far above the twin's few hundred bytes of short-lived views."""
    return engine.Model(engine.ModelSpec([
        engine.Normalize(rng.uniform(-1, 1, 6), rng.uniform(0.5, 2, 6)),
        engine.LSTM(6, 16, random_weights(rng, "lstm", 6, 16)),
        engine.GRU(16, 16, random_weights(rng, "gru", 16, 16)),
        engine.RNN(16, 16, random_weights(rng, "rnn", 16, 16)),
        engine.Dense(rng.uniform(-1, 1, (2048, 16))), engine.Activation("softmax")]))


@pytest.mark.parametrize("group", [False, True])
def test_step_with_out_allocates_nothing_after_warm_up(rng, group):
    """What this sees: every Python-heap and numpy-data allocation (tracemalloc traces both), by its PEAK
    over 2,000 steps, so memory allocated and freed within a step counts too. What it cannot see: memory
    numba-compiled code allocates (NRT); test_kernels_allocate_nothing_through_numbas_runtime covers that."""
    model = _wide_model(rng)
    s = model.streams(3) if group else model.stream()
    x = np.ones((3, 6) if group else 6, np.float32)
    out = np.empty((3, 2048) if group else 2048, np.float32)
    step = s.step   # (looking up s.step in the loop would make a bound-method object, 48 bytes, per call)
    for _ in range(100):
        step(x, out=out)
    tracemalloc.start()
    try:
        loop = itertools.repeat(None, 2000)   # made before the peak is reset: the iterator is 48 bytes itself
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in loop:                        # (range() would itself allocate ints past 256)
            step(x, out=out)
        end, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The compiled layer allocates nothing at all; the twin makes a few reshaped views per step (~100 bytes
    # each), freed at once. One output-sized buffer would be 8 kB (24 kB for three streams).
    limit = 0 if engine.COMPILED else out.nbytes // 8
    assert peak - current <= limit, f"step(out=) allocated up to {peak - current} bytes at once"
    assert end - current <= limit, f"step(out=) kept {end - current} bytes"


def _nrt_allocations(fn):
    """(allocations, frees) numba's runtime (NRT) counts while ``fn()`` runs."""
    from numba.core.runtime import _nrt_python, rtsys

    enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    try:
        before = rtsys.get_allocation_stats()
        fn()
        after = rtsys.get_allocation_stats()
    finally:
        if not enabled:
            _nrt_python.memsys_disable_stats()
    return after.alloc - before.alloc, after.free - before.free


@numba.njit
def _takes_six_arrays(a, b, c, d, e, f):
    pass


def test_kernels_allocate_nothing_through_numbas_runtime(rng):
    """numba's own allocator (NRT: arrays made inside compiled code) is invisible to tracemalloc; its
    counters show whether a step allocates there. The compiled call layer enters the kernels through C
    function pointers: nothing at all. The twin enters them through numba's dispatcher, which wraps each
    of its six array arguments in an NRT record per call (freed on return): exactly what a do-nothing
    function with six array arguments costs, and nothing more."""
    model = _wide_model(rng)
    s, group = model.stream(), model.streams(3)
    x, X = np.ones(6, np.float32), np.ones((3, 6), np.float32)
    out, outs = np.empty(2048, np.float32), np.empty((3, 2048), np.float32)
    seq = np.ones((50, 6), np.float32)
    s.step(x, out=out)
    group.step(X, out=outs)
    s.step_n(seq)

    def steps():
        for _ in range(500):
            s.step(x, out=out)
            group.step(X, out=outs)
        s.step_n(seq)

    allocs, frees = _nrt_allocations(steps)
    assert allocs == frees
    if engine.COMPILED:
        assert allocs == 0
    else:
        args = [np.ones(3, np.float32)] * 5 + [np.ones(3, np.int64)]
        _takes_six_arrays(*args)
        per_call = _nrt_allocations(lambda: _takes_six_arrays(*args))[0]
        kernel_calls = len(model.spec.layers) * (500 * 2 + 50)
        assert allocs == per_call * kernel_calls, (allocs, per_call, kernel_calls)


def _ticks_during(call):
    """How many times this thread's Python loop runs while another thread is inside ``call()``: a few
    hundred if the call holds the GIL throughout, hundreds of thousands if it releases it."""
    started = threading.Event()

    def worker():
        started.set()
        call()

    # A short switch interval hands the GIL back promptly when the worker asks for it after the call;
    # with the default 5 ms this thread would spin for a whole interval then, whatever the kernel did.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        t = threading.Thread(target=worker)
        t.start()
        started.wait()
        ticks = 0
        while t.is_alive():
            ticks += 1
        t.join()
    finally:
        sys.setswitchinterval(interval)
    return ticks


def test_kernels_release_the_gil(rng):
    """While one thread is inside a long step_n, another thread keeps running Python code."""
    H = 256
    layer = engine.LSTM(64, H, random_weights(rng, "lstm", 64, H, scale=0.05))
    model = engine.Model(engine.ModelSpec([layer]))
    s = model.stream()
    X = np.zeros((1, 64), np.float32)
    s.step_n(X)  # compile / warm up
    # 2000 steps of H=256 are ~50 ms in one compiled call. (Under the pure-Python twin step_n is a Python
    # loop that retakes the GIL between steps, and this spinning thread makes each retake wait for the
    # 5 ms switch interval, so more steps would only make the twin run slow, not the test stronger.)
    X = np.zeros((2000 if engine.COMPILED else 400, 64), np.float32)
    ticks = _ticks_during(lambda: s.step_n(X))
    # With the GIL held for the whole call, this loop runs only around the call (a few hundred
    # iterations); released, it runs the whole time (hundreds of thousands).
    assert ticks > 10000, ticks


def test_compiled_layer_releases_the_gil_only_where_it_pays(rng):
    """Releasing the GIL costs ~50 ns: a step of a tiny model keeps it, larger steps and long step_n release it."""
    from engine._ext._stepcore import GIL_RELEASE_WORK

    def lstm(I, H):
        return engine.Model(engine.ModelSpec([engine.LSTM(I, H, random_weights(rng, "lstm", I, H))]))

    tiny, big = lstm(8, 32), lstm(32, 64)
    assert tiny._packed[0].params.size < GIL_RELEASE_WORK <= big._packed[0].params.size
    assert not tiny.stream().releases_gil
    assert big.stream().releases_gil
    assert tiny.streams(4).releases_gil  # four rows of the tiny model are work enough
    # a long step_n of the tiny model runs without the GIL: another thread keeps running meanwhile
    s = tiny.stream()
    X = np.zeros((300_000, 8), np.float32)
    s.step_n(X[:1])
    ticks = _ticks_during(lambda: s.step_n(X))
    assert ticks > 10000, ticks
    # holding the GIL or not, the numbers are the same
    a, b = tiny.stream(), tiny.stream()
    np.testing.assert_array_equal(np.stack([a.step(x) for x in X[:50] + 0.5]), b.step_n(X[:50] + 0.5))


def _hammered(target, call, ops):
    """Run ``call()`` (one long call holding ``target``) in a thread while one thread per entry of ``ops``
    applies that operation to ``target`` over and over. Returns call's result and how many times each
    operation was refused.

    The hammering starts only once the long call holds the stream (a prober's get_state is refused): a
    state-changing operation accepted before the call starts would legitimately change its starting state.
    The long call itself may be refused while the prober holds the stream for an instant; refused, it
    changed nothing, and it is simply made again."""
    inside, done = threading.Event(), threading.Event()
    result, refused = {}, {name: 0 for name in ops}

    def worker():
        while "y" not in result:
            try:
                result["y"] = call()
            except RuntimeError as exc:
                assert "another thread" in str(exc)
        done.set()

    def prober():
        while not (inside.is_set() or done.is_set()):
            try:
                target.get_state()
            except RuntimeError:
                inside.set()

    def hammer(name, op):
        while not (inside.is_set() or done.is_set()):
            inside.wait(0.001)
        while not done.is_set():
            try:
                op()
            except RuntimeError as exc:
                assert "another thread" in str(exc), exc
                refused[name] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)   # hand the GIL around promptly among seven threads (the default is 5 ms)
    try:
        threads = [threading.Thread(target=prober), threading.Thread(target=worker)]
        threads += [threading.Thread(target=hammer, args=item) for item in ops.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    return result["y"], refused


def _big_lstm(rng):
    """A model whose calls release the GIL and take long enough for other threads to act meanwhile."""
    return engine.Model(engine.ModelSpec([engine.LSTM(64, 256, random_weights(rng, "lstm", 64, 256, scale=0.05)),
                                          engine.Dense(rng.uniform(-1, 1, (8, 256)))]))


def test_a_busy_stream_refuses_every_state_operation_and_its_output_is_never_corrupted(rng):
    model = _big_lstm(rng)
    T = 20000 if engine.COMPILED else 3000
    X = rng.uniform(-1, 1, (T, 64)).astype(np.float32)
    expected = model.stream().step_n(X)          # serial, undisturbed
    s = model.stream()
    other = model.stream()
    other.step_n(X[:5])
    other_state, other_blob = other.get_state(), other.to_bytes()
    x = X[0]
    ops = {"step": lambda: s.step(x), "step_n": lambda: s.step_n(X[:3]), "reset": s.reset,
           "set_state": lambda: s.set_state(other_state), "get_state": s.get_state, "to_bytes": s.to_bytes}
    y, refused = _hammered(s, lambda: s.step_n(X), ops)
    np.testing.assert_array_equal(y, expected)
    assert all(refused.values()), refused        # every operation met the busy stream and was refused
    assert engine.Stream.from_bytes(other_blob, model).get_state().keys() == other_state.keys()


def test_busy_streams_refuse_every_state_operation_and_their_outputs_are_never_corrupted(rng):
    model = _big_lstm(rng)
    n = 8192   # one step of 8192 rows is ~0.3 s: time for every hammering thread to meet the busy group
    X = rng.uniform(-1, 1, (n, 64)).astype(np.float32)
    serial = model.streams(n)
    serial.step(X)
    expected = serial.step(X)                    # the second step reads the state the first one wrote
    group = model.streams(n)
    group.step(X)
    other_state = model.streams(n).get_state()
    ops = {"step": lambda: group.step(X), "reset": group.reset, "reset(i)": lambda: group.reset(3),
           "set_state": lambda: group.set_state(other_state), "get_state": group.get_state,
           "to_bytes": group.to_bytes}
    y, refused = _hammered(group, lambda: group.step(X), ops)
    np.testing.assert_array_equal(y, expected)
    assert all(refused.values()), refused


def test_run_input_errors_name_the_expected_shape(model):
    with pytest.raises(engine.ShapeError, match="expected input width 6"):
        model.run(np.zeros((4, 5)))
    with pytest.raises(engine.ShapeError, match=r"\(T, 6\) or \(B, T, 6\)"):
        model.run(np.zeros(6))
    with pytest.raises(engine.ShapeError, match="lengths must be 2 integers"):
        model.run(np.zeros((2, 4, 6)), lengths=[1, 2, 3])
    with pytest.raises(engine.ShapeError, match=r"lengths must lie in \[0, T=4\]"):
        model.run(np.zeros((2, 4, 6)), lengths=[1, 5])
    with pytest.raises(engine.ShapeError, match="got dtype <U1"):
        model.run(np.array([["a"] * 6]))


def test_empty_sequences_give_empty_outputs(model):
    assert model.run(np.zeros((0, 6))).shape == (0, 4)
    assert model.run(np.zeros((3, 0, 6))).shape == (3, 0, 4)
    assert model.stream().step_n(np.zeros((0, 6), np.float32)).shape == (0, 4)


def test_time_major_input_is_an_explicit_argument(model, rng):
    X = rng.uniform(-1, 1, (3, 7, 6))   # (B, T, I)
    bf = model.run(X)
    tm = model.run(X.transpose(1, 0, 2), batch_first=False)
    np.testing.assert_array_equal(bf, tm.transpose(1, 0, 2))
