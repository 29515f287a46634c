"""Reliability over time and under stress: NaN/inf and unusual inputs, threads with their own streams, a
1,000,000-step run, and a process killed mid-stream whose successor resumes from the last snapshot bit for
bit. (Bad shapes and out= buffers, snapshots of another model, one stream shared by two threads:
tests/test_streams.py.)"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc

import numpy as np
import pytest

import engine
from tests.helpers import random_weights
from tests.tolerances import LONG_STEP_VS_RUN_F32

I, H = 8, 32


def _model(seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    layers = [engine.LSTM(I, H, random_weights(rng, "lstm", I, H, scale=0.3)),
              engine.GRU(H, H, random_weights(rng, "gru", H, H, scale=0.3)),
              engine.Dense(rng.uniform(-0.5, 0.5, (3, H)), rng.uniform(-0.5, 0.5, 3)), engine.Activation("tanh")]
    return engine.Model(engine.ModelSpec(layers), dtype=dtype)


@pytest.fixture(scope="module")
def model():
    return _model()


# ---- inputs: documented behaviour (SECURITY.md)
def test_nan_and_inf_inputs_propagate_without_crashing_and_reset_clears_them(model):
    s = model.stream()
    x = np.full(I, 0.1, np.float32)
    clean = model.stream().step(x)
    for bad in (np.nan, np.inf, -np.inf):
        s.reset()
        xb = x.copy()
        xb[2] = bad
        assert np.isnan(s.step(xb)).all()
        assert np.isnan(s.step(x)).all()  # the state holds it: NaN from then on
        s.reset()
        np.testing.assert_array_equal(s.step(x), clean)
    Y = model.run(np.where(np.arange(10)[:, None] == 4, np.nan, 0.1) * np.ones((10, I)))
    assert np.all(np.isfinite(Y[:4])) and np.all(np.isnan(Y[4:]))  # from the NaN on, not before


@pytest.mark.parametrize("bad,match", [
    (np.array([object()] * I), "got dtype object"),
    (np.array([b"x"] * I), "got dtype |S1"),
    (np.zeros(I, np.complex64), "complex"),
    (np.zeros((2, 2, I), np.float32), r"got float32 \(2, 2, 8\)"),
    (np.float32(1.0), r"got float32 \(\)"),
])
def test_non_numeric_and_wrong_rank_step_inputs_name_what_was_expected(model, bad, match):
    with pytest.raises(engine.ShapeError, match=match):
        model.stream().step(bad)


def test_integer_inputs_are_converted_and_booleans_refused(model):
    x = np.arange(I) % 2
    np.testing.assert_array_equal(model.stream().step(x), model.stream().step(x.astype(np.float32)))
    with pytest.raises(engine.ShapeError, match=r"expected a float32 array of shape \(8,\), got dtype bool"):
        model.stream().step(x.astype(bool))


def test_zero_length_and_zero_width_requests(model):
    assert model.stream().step_n(np.zeros((0, I), np.float32)).shape == (0, 3)
    assert model.run(np.zeros((0, I))).shape == (0, 3)
    assert model.run(np.zeros((0, 5, I))).shape == (0, 5, 3)
    with pytest.raises(engine.ShapeError, match="integer >= 1, got 0"):
        model.streams(0)
    with pytest.raises(engine.ShapeError, match="expected input width 8"):
        model.run(np.zeros((5, 0)))


def test_a_huge_T_runs_in_one_call_and_equals_chunked_streaming(model):
    X = np.random.default_rng(1).uniform(-1, 1, (500_000, I)).astype(np.float32)
    Y = model.run(X)
    assert Y.shape == (500_000, 3) and np.all(np.isfinite(Y))
    s = model.stream()
    tail = [s.step_n(X[i:i + 100_000]) for i in range(0, len(X), 100_000)][-1]
    np.testing.assert_allclose(tail, Y[-100_000:], atol=LONG_STEP_VS_RUN_F32, rtol=0)


# ---- threads
def test_threads_each_with_their_own_stream_give_exactly_the_serial_results(model):
    rng = np.random.default_rng(2)
    inputs = [rng.uniform(-1, 1, (3000, I)).astype(np.float32) for _ in range(6)]
    serial = [np.stack([s.step(x) for x in X]) for X, s in ((X, model.stream()) for X in inputs)]
    results = [None] * len(inputs)
    barrier = threading.Barrier(len(inputs))

    def work(i):
        s = model.stream()
        out = np.empty((len(inputs[i]), 3), np.float32)
        barrier.wait()
        for t, x in enumerate(inputs[i]):
            s.step(x, out=out[t])
        results[i] = out

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, serial):
        np.testing.assert_array_equal(got, want)


def test_threads_sharing_a_streams_group_through_a_lock_match_the_serial_run(model):
    """The documented pattern for one stream used from several threads: the caller's lock."""
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, (400, 4, I)).astype(np.float32)
    serial_group = model.streams(4)
    want = np.stack([serial_group.step(x) for x in X])
    group, lock, out = model.streams(4), threading.Lock(), [None] * len(X)
    it = iter(range(len(X)))

    def work():
        while True:
            with lock:
                t = next(it, None)
                if t is None:
                    return
                out[t] = group.step(X[t])

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(np.stack(out), want)


# ---- long runs
def _rss_kb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@pytest.mark.slow
def test_a_million_steps_of_one_stream_do_not_grow_memory_and_stay_finite(model):
    s = model.stream()
    rng = np.random.default_rng(4)
    X = rng.uniform(-1, 1, (1000, I)).astype(np.float32)  # cycled: the input itself allocates nothing
    out = np.empty(3, np.float32)
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    rss = []
    for chunk in range(10):
        if chunk == 9:
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
        for _ in range(100):
            for x in X:
                s.step(x, out=out)
            lo, hi = np.minimum(lo, out), np.maximum(hi, out)
        if chunk == 9:
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
        rss.append(_rss_kb())
    grown = sum(d.size_diff for d in after.compare_to(before, "filename") if d.size_diff > 0)
    assert grown < 16_384, f"{grown} bytes allocated over the last 100,000 steps"
    assert rss[-1] - rss[1] < 4096, f"RSS grew from {rss[1]} kB to {rss[-1]} kB over 800,000 steps"
    state = s.get_state()
    assert all(np.all(np.isfinite(v)) for v in state.values())
    assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(np.abs(hi) <= 1.0)


# ---- restarts
_SCORER = textwrap.dedent("""
    import os, sys, time, numpy as np, engine
    model_path, workdir, start_from = sys.argv[1], sys.argv[2], sys.argv[3]
    model = engine.load(model_path)
    X = np.random.default_rng(5).uniform(-1, 1, (20000, model.input_size)).astype(np.float32)
    if start_from == "snapshot":
        blob = open(os.path.join(workdir, "snapshot.bin"), "rb").read()
        t0 = int.from_bytes(blob[:8], "little")
        stream = engine.Stream.from_bytes(blob[8:], model)
    else:
        t0, stream = 0, model.stream()
    out = open(os.path.join(workdir, f"out-{start_from}.bin"), "ab")
    for t in range(t0, len(X)):
        y = stream.step(X[t])
        out.write(t.to_bytes(8, "little") + y.tobytes())
        if (t + 1) % 500 == 0:
            out.flush()
            tmp = os.path.join(workdir, "snapshot.tmp")
            with open(tmp, "wb") as fh:       # write then rename: a kill never leaves half a snapshot
                fh.write((t + 1).to_bytes(8, "little") + stream.to_bytes())
            os.replace(tmp, os.path.join(workdir, "snapshot.bin"))
            if start_from == "zero":
                time.sleep(0.01)              # slow enough to be killed in the middle
    out.close()
    print("done", t0)
""")


def _read_outputs(path):
    raw = np.frombuffer(open(path, "rb").read(), np.uint8)
    rec = raw[: raw.size - raw.size % 20].reshape(-1, 20)   # 8-byte step index + 3 float32
    return rec[:, :8].copy().view("<i8").ravel(), rec[:, 8:].copy().view(np.float32)


def test_a_killed_process_resumes_from_its_last_snapshot_bit_for_bit(tmp_path, model):
    path = model.save(tmp_path / "m.npz")
    work = tmp_path / "work"
    work.mkdir()
    script = tmp_path / "scorer.py"
    script.write_text(_SCORER)
    victim = subprocess.Popen([sys.executable, str(script), path, str(work), "zero"], stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline:
        snap = work / "snapshot.bin"
        if snap.exists() and int.from_bytes(snap.read_bytes()[:8], "little") >= 3000:
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(60)
    assert victim.returncode == -signal.SIGKILL
    resumed_at = int.from_bytes((work / "snapshot.bin").read_bytes()[:8], "little")
    assert 3000 <= resumed_at < 20000
    r = subprocess.run([sys.executable, str(script), path, str(work), "snapshot"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and r.stdout.strip() == f"done {resumed_at}", r.stderr
    # the uninterrupted run, in this process
    X = np.random.default_rng(5).uniform(-1, 1, (20000, model.input_size)).astype(np.float32)
    full = model.stream().step_n(X)
    steps, ys = _read_outputs(work / "out-snapshot.bin")
    np.testing.assert_array_equal(steps, np.arange(resumed_at, 20000))
    np.testing.assert_array_equal(ys, full[resumed_at:])
    before, ys0 = _read_outputs(work / "out-zero.bin")   # what the killed process wrote before dying
    np.testing.assert_array_equal(ys0, full[before])
    assert before[-1] >= resumed_at - 1


def test_snapshots_carry_the_models_identity_and_a_checksum(model):
    s = model.stream()
    s.step(np.ones(I, np.float32))
    blob = s.to_bytes()
    other = _model(seed=1)
    assert other.identity != model.identity
    with pytest.raises(engine.StateError, match="different model"):
        engine.Stream.from_bytes(blob, other)
    with pytest.raises(engine.StateError, match="checksum"):
        engine.Stream.from_bytes(blob[:-40] + bytes(8) + blob[-32:], model)
    assert engine.Stream.from_bytes(blob, _model(seed=0)).get_state()["layers.1.h"].tobytes() == \
        s.get_state()["layers.1.h"].tobytes()
