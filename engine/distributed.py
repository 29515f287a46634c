"""Score many streams across processes and machines with Ray actors: ``StreamPool``.

    pip install 'rnnjit[ray]'
    import ray, engine.distributed as dist
    ray.init()                                   # or ray.init(address="ray://head:10001") on a cluster
    pool = dist.StreamPool("model.onnx", num_actors=4)
    Y = pool.step(["bed-3", "bed-7"], X)         # arrivals: one sample per stream id, X (k, input_size)
    Y = pool.run("bed-3", X)                     # a chunk (T, input_size) of one stream, state carried
    ckpt = pool.checkpoint()                     # every stream's state, {id: Stream snapshot bytes}
    pool.resize(6)                               # rehash: every stream keeps its state
    pool.restore(ckpt)                           # after an actor died (dead actors are replaced)
    pool.stats()                                 # per actor: streams, calls, stream-steps, latency

Design: each actor (a shard) loads the model once and owns the states of the streams routed to it, held in
one (capacity, size) array per state name; a stream id goes to actor ``crc32(str(id)) % num_actors`` (stable
across processes and runs, unlike Python's salted ``hash``). ``step`` groups a batch's arrivals by actor and
each actor steps its arrivals together through ``model.streams(k)``: states are gathered into the group,
stepped, and scattered back, so a pooled stream's outputs equal a lone ``model.stream()``'s bit for bit (the
engine guarantees that streams(k) equals k lone streams). Arrivals for the same id in one batch are applied
in order. The model travels as native-format bytes (converted once on the driver), or is read by each actor
from a path every worker can see (``shared_path=True``). Checkpoints are ``Stream.to_bytes`` snapshots per
stream: checksummed and tied to the model's identity, so a checkpoint cannot be restored into another model.

This module imports ray; ``import engine`` never imports this module.
"""

import json
import os
import time
import zlib

import numpy as np

from . import io as _io
from .errors import RnnjitError, ShapeError, StateError
from .latency import summarize
from .model import Model

try:
    import ray
except ImportError as _exc:  # the core package does not need ray
    raise ImportError("engine.distributed needs Ray: pip install 'rnnjit[ray]' (or pip install ray)") from _exc

CHECKPOINT_MAGIC = "rnnjit-pool-checkpoint"


def shard_of(stream_id, num_actors):
    """The actor that owns ``stream_id``: crc32 of its string form, modulo the pool size."""
    return zlib.crc32(str(stream_id).encode("utf-8")) % num_actors


class _Shard:
    """One actor's streams: states in arrays indexed by slot, stepped in groups through model.streams(k)."""

    def __init__(self, model_source, dtype, index):
        spec = _io.load_spec(model_source) if isinstance(model_source, bytes) else _io.load_spec_any(model_source)
        self.model = Model(spec, dtype=dtype)
        self.index = index
        self.slots = {}  # stream id -> row (the state arrays may have spare rows past len(slots))
        proto = self.model.streams(1)
        self.initial = {k: v[0].copy() for k, v in proto.get_state().items()}
        self.states = {k: np.empty((0, v.size), self.model.dtype) for k, v in self.initial.items()}
        self.groups = {}  # k -> Streams(k), reused
        self.calls = self.steps = 0
        self.busy_ns = 0
        self.lat_ns = []

    def _rows(self, ids):
        new = [i for i in dict.fromkeys(ids) if i not in self.slots]
        if new:
            start = len(self.slots)
            end = start + len(new)
            for j, i in enumerate(new):
                self.slots[i] = start + j
            for k, arr in self.states.items():
                if end > arr.shape[0]:  # grow geometrically: streams arriving one by one copy O(n) in all
                    grown = np.empty((max(end, 2 * arr.shape[0]), arr.shape[1]), arr.dtype)
                    grown[:start] = arr[:start]
                    self.states[k] = arr = grown
                arr[start:end] = self.initial[k]
        return [self.slots[i] for i in ids]

    def _group(self, k):
        g = self.groups.get(k)
        if g is None:
            if len(self.groups) > 16:
                self.groups.clear()
            g = self.groups[k] = self.model.streams(k)
        return g

    def _step_unique(self, ids, X):
        rows = self._rows(ids)
        g = self._group(len(ids))
        g.set_state({k: arr[rows] for k, arr in self.states.items()})
        Y = g.step(X)
        for k, v in g.get_state().items():
            self.states[k][rows] = v
        return Y

    def step(self, ids, X):
        a = time.perf_counter_ns()
        X = np.asarray(X)
        Y = np.empty((len(ids), self.model.output_size), self.model.dtype)
        # waves: each id at most once per wave, arrivals of one id in their order
        pending = list(range(len(ids)))
        while pending:
            seen, wave, rest = set(), [], []
            for j in pending:
                (rest if ids[j] in seen else wave).append(j)
                seen.add(ids[j])
            Y[wave] = self._step_unique([ids[j] for j in wave], X[wave])
            pending = rest
        self._account(a, len(ids))
        return Y

    def run(self, stream_id, X):
        a = time.perf_counter_ns()
        (row,) = self._rows([stream_id])
        s = self.model.stream()
        s.set_state({k: arr[row] for k, arr in self.states.items()})
        Y = s.step_n(np.asarray(X))
        for k, v in s.get_state().items():
            self.states[k][row] = v
        self._account(a, len(X))
        return Y

    def _account(self, a, steps):
        ns = time.perf_counter_ns() - a
        self.calls += 1
        self.steps += steps
        self.busy_ns += ns
        self.lat_ns.append(ns)
        if len(self.lat_ns) > 20_000:
            del self.lat_ns[:10_000]

    def checkpoint(self):
        s = self.model.stream()
        out = {}
        for i, row in self.slots.items():
            s.set_state({k: arr[row] for k, arr in self.states.items()})
            out[i] = s.to_bytes()
        return out

    def restore(self, snapshots):
        """Replace this shard's streams by ``snapshots`` ({id: bytes}); all are checked before any is applied."""
        from .session import Stream

        parsed = {i: Stream.from_bytes(b, self.model).get_state() for i, b in snapshots.items()}
        self.slots = {}
        self.states = {k: np.empty((0, v.size), self.model.dtype) for k, v in self.initial.items()}
        rows = self._rows(list(parsed))
        for i, row in zip(parsed, rows):
            for k, v in parsed[i].items():
                self.states[k][row] = v
        return len(parsed)

    def stats(self):
        lat = summarize(self.lat_ns or [0])
        return {"actor": self.index, "streams": len(self.slots), "calls": self.calls, "stream_steps": self.steps,
                "busy_s": self.busy_ns / 1e9, "call_p50_us": lat["p50_us"], "call_p99_us": lat["p99_us"],
                "us_per_stream_step": self.busy_ns / 1e3 / self.steps if self.steps else float("nan")}

    def ping(self):
        return self.index


class StreamPool:
    """A pool of Ray actors, each owning the states of the streams that hash to it (see the module docstring).

    ``model``: a model file path (any format ``engine.load`` reads) or an ``engine.Model``. The model is
    converted once to the native format and shipped to the actors as bytes, unless ``shared_path=True``, in
    which case each actor reads ``model`` (a path) itself. ``num_cpus`` is what each actor asks Ray for.
    """

    def __init__(self, model, num_actors=2, *, shared_path=False, dtype=None, num_cpus=1):
        if isinstance(num_actors, bool) or not isinstance(num_actors, int) or num_actors < 1:
            raise ValueError(f"num_actors must be an integer >= 1, got {num_actors!r}")
        if not ray.is_initialized():
            raise RuntimeError("call ray.init() (locally) or ray.init(address=...) (a cluster) before StreamPool")
        if shared_path:
            if isinstance(model, Model):
                raise ValueError("shared_path=True needs a model path every worker can read, not a Model")
            self._source = str(model)
            local = Model(_io.load_spec_any(self._source), dtype=dtype)
        else:
            local = model if isinstance(model, Model) else Model(_io.load_spec_any(model), dtype=dtype)
            self._source = ray.put(_io.spec_to_bytes(local.spec))
        self._dtype = local.dtype.name
        self._local = local
        self.identity = local.identity
        self.input_size, self.output_size = local.input_size, local.output_size
        if not local.streamable:
            raise RnnjitError("a StreamPool steps streams; this model cannot stream: "
                              + "; ".join(local.spec.streaming_problems()))
        if any(t != (1, 0) for t in local.timing.values()):
            raise RnnjitError("a StreamPool starts and moves streams at any step; a model with a stride or a delay "
                              f"along time ({local.timing}) steps its streams in lock-step: use model.streams(n)")
        self._actor_cls = ray.remote(num_cpus=num_cpus)(_Shard)
        self.actors = []
        self._spawn(num_actors)

    def _spawn(self, n):
        self.actors = [self._actor_cls.remote(self._source, self._dtype, i) for i in range(n)]
        ray.get([a.ping.remote() for a in self.actors])

    @property
    def num_actors(self):
        return len(self.actors)

    def owner(self, stream_id):
        return shard_of(stream_id, len(self.actors))

    def step(self, stream_ids, X):
        """One sample per arrival: ``stream_ids`` (k,) and X (k, input_size) -> Y (k, output_size), in order."""
        ids = list(stream_ids)
        X = np.asarray(X)
        if X.ndim != 2 or X.shape != (len(ids), self.input_size):
            raise ShapeError(f"expected X of shape ({len(ids)}, {self.input_size}) (one row per stream id), "
                             f"got {X.shape}")
        by_actor = {}
        for j, i in enumerate(ids):
            by_actor.setdefault(self.owner(i), []).append(j)
        refs = {a: self.actors[a].step.remote([ids[j] for j in js], X[js]) for a, js in by_actor.items()}
        Y = np.empty((len(ids), self.output_size), self._dtype)
        for a, ref in refs.items():
            Y[by_actor[a]] = ray.get(ref)
        return Y

    def run(self, stream_id, X):
        """A chunk of one stream: X (T, input_size) -> Y (T, output_size), its state carried on."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.input_size:
            raise ShapeError(f"expected X of shape (T, {self.input_size}), got {X.shape}")
        return ray.get(self.actors[self.owner(stream_id)].run.remote(stream_id, X))

    def checkpoint(self):
        """Every stream's state: {stream id: snapshot bytes} (``Stream.to_bytes``: checksummed, model-bound)."""
        out = {}
        for part in ray.get([a.checkpoint.remote() for a in self.actors]):
            out.update(part)
        return out

    def restore(self, checkpoint, num_actors=None):
        """Put every stream of ``checkpoint`` back, rehashed onto the pool (resized to ``num_actors`` if given).

        Actors that died are replaced first. Streams not in the checkpoint are dropped (their state is that
        of the checkpoint's moment: none). A snapshot of another model is refused before anything changes.
        """
        from .session import Stream

        for b in checkpoint.values():  # every snapshot checked here (checksum, model identity) before any actor
            Stream.from_bytes(b, self._local)
        n = num_actors or len(self.actors)
        parts = [{} for _ in range(n)]
        for i, b in checkpoint.items():
            parts[shard_of(i, n)][i] = b
        for attempt in range(2):
            alive = []
            for a in self.actors:
                try:
                    ray.get(a.ping.remote(), timeout=60)
                    alive.append(a)
                except ray.exceptions.RayError:  # died, dying, or unreachable
                    alive.append(None)
            if attempt or n != len(self.actors) or any(a is None for a in alive):
                for a in alive:
                    if a is not None:
                        ray.kill(a)
                self._spawn(n)
            try:
                ray.get([a.restore.remote(p) for a, p in zip(self.actors, parts)])
                return
            except ray.exceptions.RayActorError:
                if attempt:  # a fresh pool died too: not something a retry fixes
                    raise
                # an actor that still answered the ping died since (a kill is asynchronous): respawn all

    def resize(self, num_actors):
        """Change the number of actors; every stream keeps its state (checkpoint, respawn, rehash, restore)."""
        self.restore(self.checkpoint(), num_actors=num_actors)

    def stats(self):
        """Per actor: streams held, calls, stream-steps, busy seconds, call latency p50/p99 µs, µs/stream-step."""
        return ray.get([a.stats.remote() for a in self.actors])

    def shutdown(self):
        for a in self.actors:
            ray.kill(a)
        self.actors = []


def save_checkpoint(checkpoint, path):
    """Write a pool checkpoint ({id: bytes}) to an .npz (no pickle: ids as JSON, snapshots as uint8 arrays)."""
    ids = list(checkpoint)
    header = {"magic": CHECKPOINT_MAGIC, "ids": ids}
    arrays = {f"s{j}": np.frombuffer(checkpoint[i], np.uint8) for j, i in enumerate(ids)}
    tmp = str(path) + ".tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, __header__=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    os.replace(tmp, str(path))


def load_checkpoint(path):
    """Read what ``save_checkpoint`` wrote; each snapshot is still verified when it is restored."""
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(z["__header__"].tobytes().decode())
            if header.get("magic") != CHECKPOINT_MAGIC:
                raise StateError(f"{path}: not an rnnjit pool checkpoint")
            return {i: z[f"s{j}"].tobytes() for j, i in enumerate(header["ids"])}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StateError(f"{path}: unreadable pool checkpoint ({exc})") from None
