"""StreamPool on a local Ray (2 CPUs, started once for this module): pooled streams equal lone streams in one
process bit for bit, through step batches (with repeated ids), run chunks, checkpoints, actor death and
resizing."""

import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
import ray  # the [test] extra installs rnnjit[ray]; missing, this module fails rather than skips

import engine
import engine.distributed as dist

I, H, O = 3, 16, 2


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(11)
    spec = engine.ModelSpec([
        engine.LSTM(I, H, {"weight_ih": rng.standard_normal((4 * H, I)) * 0.4,
                           "weight_hh": rng.standard_normal((4 * H, H)) * 0.4, "bias_ih": rng.standard_normal(4 * H)}),
        engine.GRU(H, H, {"weight_ih": rng.standard_normal((3 * H, H)) * 0.3,
                          "weight_hh": rng.standard_normal((3 * H, H)) * 0.3}),
        engine.Dense(rng.standard_normal((O, H)), rng.standard_normal(O)), engine.Activation("tanh")])
    return engine.Model(spec)


@pytest.fixture
def pool(local_ray, model):
    p = dist.StreamPool(model, 2, num_cpus=0.5)
    yield p
    p.shutdown()


def _arrivals(rng, ids, rounds):
    """Random arrival batches: a random subset of ids per round, sometimes one id twice in a batch."""
    out = []
    for _ in range(rounds):
        k = int(rng.integers(1, len(ids) + 1))
        batch = list(rng.choice(ids, size=k, replace=False))
        if rng.random() < 0.3:
            batch.append(batch[0])
        out.append((batch, rng.standard_normal((len(batch), I)).astype(np.float32)))
    return out


def _lone(model, arrivals, lone=None):
    lone = {} if lone is None else lone
    outs = []
    for ids, X in arrivals:
        outs.append(np.stack([lone.setdefault(i, model.stream()).step(x) for i, x in zip(ids, X)]))
    return outs, lone


def test_routing_is_crc32_of_the_id_and_stable_across_processes():
    assert dist.shard_of("bed-7", 5) == zlib.crc32(b"bed-7") % 5
    code = "import engine.distributed as d; print([d.shard_of(f'id{i}', 7) for i in range(50)])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == str([dist.shard_of(f"id{i}", 7) for i in range(50)])


def test_pooled_steps_equal_lone_streams_in_one_process_bit_for_bit(pool, model):
    rng = np.random.default_rng(0)
    ids = [f"sensor-{i}" for i in range(24)] + list(range(8))
    arrivals = _arrivals(rng, ids, 40)
    want, _ = _lone(model, arrivals)
    for (batch, X), w in zip(arrivals, want):
        np.testing.assert_array_equal(pool.step(batch, X), w)
    stats = pool.stats()
    assert sum(s["streams"] for s in stats) == len({i for b, _ in arrivals for i in b})
    assert sum(s["stream_steps"] for s in stats) == sum(len(b) for b, _ in arrivals)
    assert all(s["streams"] > 0 and s["call_p50_us"] > 0 for s in stats)


def test_run_chunks_continue_the_same_stream_as_steps(pool, model):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, I)).astype(np.float32)
    lone = model.stream()
    want = np.stack([lone.step(x) for x in X])
    got = np.concatenate([pool.run("patient-1", X[:20]), pool.step(["patient-1"], X[20:21]),
                          pool.run("patient-1", X[21:])])
    np.testing.assert_array_equal(got, want)


def _first_half(pool, model, seed, n_ids, rounds):
    """Step random arrivals through the pool; return (rng, ids, those arrivals, the next arrivals, and what
    lone streams continuing from the first arrivals give for the next ones)."""
    rng = np.random.default_rng(seed)
    ids = [f"s{i}" for i in range(n_ids)]
    before, after = _arrivals(rng, ids, rounds), _arrivals(rng, ids, rounds)
    _, lone = _lone(model, before)
    want_after, _ = _lone(model, after, lone)
    for batch, X in before:
        pool.step(batch, X)
    return rng, ids, before, after, want_after


def test_a_killed_actor_is_replaced_and_the_checkpoint_continues_identically(pool, model, tmp_path):
    rng, ids, _, after, want_after = _first_half(pool, model, 2, 20, 10)
    dist.save_checkpoint(pool.checkpoint(), tmp_path / "pool.npz")
    pool.step(ids[:5], rng.standard_normal((5, I)).astype(np.float32))  # work after the checkpoint: rolled back
    ray.kill(pool.actors[1], no_restart=True)
    deadline = time.time() + 120
    while True:  # a kill is asynchronous: wait until the actor is really gone
        try:
            ray.get(pool.actors[1].ping.remote(), timeout=30)
        except ray.exceptions.RayActorError:
            break
        assert time.time() < deadline, "the killed actor still answers"
        time.sleep(0.1)
    pool.restore(dist.load_checkpoint(tmp_path / "pool.npz"))
    for (batch, X), w in zip(after, want_after):
        np.testing.assert_array_equal(pool.step(batch, X), w)


def test_resizing_from_2_to_3_actors_keeps_every_streams_state(pool, model):
    _, _, before, after, want_after = _first_half(pool, model, 3, 30, 8)
    held = {i for b, _ in before for i in b}
    pool.resize(3)
    assert pool.num_actors == 3
    stats = pool.stats()
    assert sum(s["streams"] for s in stats) == len(held) and all(s["streams"] > 0 for s in stats)
    for (batch, X), w in zip(after, want_after):
        np.testing.assert_array_equal(pool.step(batch, X), w)


def test_a_checkpoint_of_another_model_is_refused_before_any_actor_changes(local_ray, pool, model):
    other = engine.Model(engine.ModelSpec([engine.GRU(I, 4, {"weight_ih": np.ones((12, I)),
                                                             "weight_hh": np.ones((12, 4))})]))
    x = np.linspace(-1, 1, I, dtype=np.float32)[None]
    lone = model.stream()
    np.testing.assert_array_equal(pool.step(["keep"], x), lone.step(x[0])[None])
    good = pool.checkpoint()
    with pytest.raises(engine.StateError, match="different model"):
        pool.restore(dict(good, x=other.stream().to_bytes()))
    np.testing.assert_array_equal(pool.step(["keep"], x), lone.step(x[0])[None])  # untouched


def test_bad_batches_are_refused_with_the_expected_shape(pool):
    with pytest.raises(engine.ShapeError, match=r"expected X of shape \(2, 3\)"):
        pool.step(["a", "b"], np.zeros((3, I)))
    with pytest.raises(engine.ShapeError, match=r"expected X of shape \(T, 3\)"):
        pool.run("a", np.zeros(I))


def test_the_model_can_be_read_by_each_actor_from_a_shared_path(local_ray, model, tmp_path):
    path = model.save(tmp_path / "m.npz")
    p = dist.StreamPool(path, 2, shared_path=True, num_cpus=0.5)
    try:
        x = np.arange(I, dtype=np.float32)[None]
        np.testing.assert_array_equal(p.step(["a"], x), model.stream().step(x[0])[None])
    finally:
        p.shutdown()


def test_the_core_package_does_not_import_ray_and_the_module_says_how_to_install_it():
    code = ("import sys, engine; m = engine.Model(engine.ModelSpec([engine.Dense([[1.0]])])); "
            "print('ray' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
    code = "import sys; sys.modules['ray'] = None\nimport engine.distributed"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "pip install 'rnnjit[ray]'" in r.stderr
