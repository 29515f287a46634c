"""Streams: the per-user state of a model stepped one timestep at a time.

A ``Stream`` owns only its state (one block per temporal node: h, c of a recurrent layer, the past frames of a
causal convolution), one scratch buffer and one arena holding the frames of the graph's inner edges (and its
constants) at the plan's offsets (engine/plan.py); the weights stay in the Model, shared by every stream and
thread. ``step`` and ``step_n`` are the compiled call layer's (engine/_ext); this module adds what does not need
to be fast: input coercion and its errors, reset, state get/set and snapshots.

State is a dict of plain numpy arrays named ``<node>.<slot>``, one per state slot of each node's kind
(engine/layers/: a recurrent layer's ``h``, an LSTM's ``c``, a causal convolution's ``frames``); a chain's nodes
are ``layers.<i>``. For ``Streams`` each array has a leading axis of n.

Snapshot format (``to_bytes``), little-endian::

    b"RNNJITST" | u32 header length | JSON header | raw arrays in header order | sha256 of all before (32 B)

The header holds the snapshot version, the model identity (a hash of its packed weights), dtype, n and
the arrays' names and shapes. ``from_bytes`` checks all of it and refuses a snapshot of another model.
"""

import contextlib
import functools
import hashlib
import json
import os
import struct

import numpy as np

from ._ext import StepCore
from .errors import ShapeError, StateError, StreamingError
from .kernels.entry import compile_entry

SNAPSHOT_MAGIC = b"RNNJITST"
SNAPSHOT_VERSION = 1


class InputChecker:
    """The call layer's slow path, handed to it at construction (the one thing of the Python side it calls):
    what ``step`` / ``step_n`` do with input that is not already an exact C-contiguous array of the model's
    dtype and shape (convert it, or raise ShapeError naming what was expected), the error for a bad ``out=``
    buffer, and every call of a model with several inputs or outputs or N-d frames (``coerce_inputs``,
    ``outputs``).

    ``inputs`` / ``outputs``: per graph input / output, (name, frame shape, numpy dtype)."""

    def __init__(self, dtype, n, inputs, outputs, single, check_ids=None):
        self.dtype, self.n, self.single = dtype, n, single
        self.check_ids = check_ids   # per input index, a function (ids, what) raising on an id out of range
        self.inputs, self.outputs_ = inputs, outputs
        self.input_size = inputs[0][1][0] if len(inputs[0][1]) == 1 else None
        self.output_size = outputs[0][1][0] if len(outputs[0][1]) == 1 else None

    def _values(self, x):
        """The inputs of a call in graph order, as given: ``x`` a tuple or list in graph order, a dict by name, or
        (one input) the input itself."""
        names = [name for name, _, _ in self.inputs]
        if isinstance(x, dict):
            missing, unknown = set(names) - set(x), set(x) - set(names)
            if missing or unknown:
                raise ShapeError(f"expected inputs {names}" + (f"; missing {sorted(missing)}" if missing else "")
                                 + (f"; unknown {sorted(unknown)}" if unknown else ""))
            return [x[name] for name in names]
        if len(names) == 1:
            return [x]
        if isinstance(x, (tuple, list)) and len(x) == len(names):
            return list(x)
        raise ShapeError(f"this model has {len(names)} inputs {names}: give a tuple of {len(names)} arrays in "
                         f"that order or a dict by name, got {type(x).__name__}"
                         + (f" of {len(x)}" if isinstance(x, (tuple, list)) else ""))

    def _lead(self, T):
        return (T,) if T is not None else (() if self.single else (self.n,))

    def _leads(self, T):
        """Per output, its leading shape: ``T`` None (a step), an int (step_n) or a list (step_n of a model whose
        outputs are not due on every tick: each output's frame count)."""
        if isinstance(T, (list, tuple)):
            return [(t,) for t in T]
        return [self._lead(T)] * len(self.outputs_)

    def coerce_inputs(self, x, T):
        """The inputs of one call as exact C-contiguous arrays in graph order: ``x`` a tuple or list in graph
        order or a dict by name (an array, for a model of one input). ``T``: None for ``step``, True for
        ``step_n`` (the number of timesteps is read from the first input and must agree)."""
        values = self._values(x)
        out = []
        lead = None if T is None else True
        for (name, shape, dtype), value in zip(self.inputs, values):
            if lead is True:
                arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
                if arr.ndim < 1:
                    raise ShapeError(f"input {name!r}: expected a sequence of shape (T, *{shape}), got a scalar")
                lead = (arr.shape[0],)
            want = (self._lead(None) if lead is None else lead) + tuple(shape)
            arr = self._as_array(value, want, dtype, name)
            if arr.shape != want:
                raise ShapeError(f"input {name!r}: expected {np.dtype(dtype).name} of shape {want}, "
                                 f"got {arr.dtype} {arr.shape}")
            arr = np.ascontiguousarray(arr, dtype=dtype)
            if self.check_ids and self.check_ids[len(out)] is not None:
                self.check_ids[len(out)](arr, f"input {name!r}")
            out.append(arr)
        return out

    def outputs(self, out, T, inputs=None):
        """The arrays the call writes, in graph order: new ones, or ``out`` checked (a tuple or list in graph
        order; an array for a model of one output; no two of them, and none of them and an input, sharing
        memory: a node may still read an input after an output is written)."""
        shapes = [(name, lead + tuple(shape), dtype) for lead, (name, shape, dtype) in zip(self._leads(T),
                                                                                           self.outputs_)]
        if out is None:
            return [np.empty(shape, dtype) for _, shape, dtype in shapes]
        given = [out] if len(shapes) == 1 and not isinstance(out, (tuple, list)) else out
        if not isinstance(given, (tuple, list)) or len(given) != len(shapes):
            raise ShapeError(f"out must be a tuple of {len(shapes)} arrays (outputs "
                             f"{[name for name, _, _ in shapes]}), got {type(out).__name__}")
        for (name, shape, dtype), arr in zip(shapes, given):
            if type(arr) is not np.ndarray or arr.dtype != dtype or arr.shape != shape \
                    or not arr.flags.c_contiguous or not arr.flags.writeable:
                got = f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
                raise ShapeError(f"out for output {name!r} must be a writable C-contiguous {np.dtype(dtype).name} "
                                 f"array of shape {shape}, got {got}")
        if any(np.shares_memory(given[i], given[j]) for i in range(len(given)) for j in range(i)):
            raise ShapeError("out must give a different array for each output (these share memory)")
        if inputs is not None:
            if any(isinstance(x, np.ndarray) and np.shares_memory(x, y) for x in self._values(inputs) for y in given):
                raise ShapeError("out must not share memory with an input (a later node may still read it)")
        return list(given)

    def _as_array(self, x, expected, dtype, name=None):
        """``x`` as a numpy array of numbers (integers only for an integer input), or ShapeError naming the input
        (``name``), the dtype and shape expected and what came."""
        what = f"input {name!r}: " if name is not None else ""
        try:
            arr = np.asarray(x)
        except Exception as exc:  # noqa: BLE001 - describe what we were given
            raise ShapeError(f"{what}expected a {np.dtype(dtype).name} array of shape {expected}, got "
                             f"{type(x).__name__} that numpy cannot read ({exc})") from None
        kinds = "iu" if np.dtype(dtype).kind in "iu" else "fiu"
        if arr.dtype.kind not in kinds:
            raise ShapeError(f"{what}expected a {np.dtype(dtype).name} array of shape {expected}, got "
                             f"dtype {arr.dtype} (shape {arr.shape})")
        return arr

    def coerce_input(self, x):
        expected = (self.input_size,) if self.single else (self.n, self.input_size)
        arr = self._as_array(x, expected, self.dtype)
        if arr.shape != expected:
            raise ShapeError(f"expected {self.dtype.name} input of shape {expected}, got {arr.dtype} {arr.shape}")
        # float64 (or integer) input to a float32 model is converted, not refused.
        return np.ascontiguousarray(arr, dtype=self.dtype)

    def coerce_sequence(self, X):
        arr = self._as_array(X, ("T", self.input_size), self.dtype)
        if arr.ndim != 2 or arr.shape[1] != self.input_size:
            raise ShapeError(f"expected a {self.dtype.name} sequence of shape (T, {self.input_size}), "
                             f"got {arr.dtype} {arr.shape}")
        return np.ascontiguousarray(arr, dtype=self.dtype)

    def bad_out(self, out, T=None):
        if T is not None:
            shape = (T, self.output_size)
        else:
            shape = (self.output_size,) if self.single else (self.n, self.output_size)
        got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        extra = ""
        if isinstance(out, np.ndarray) and not out.flags.writeable:
            extra = " (it is read-only)"
        elif isinstance(out, np.ndarray) and not out.flags.c_contiguous:
            extra = " (it is not C-contiguous)"
        raise ShapeError(f"out must be a writable C-contiguous {self.dtype.name} array of shape {shape}, "
                         f"got {got}{extra}")


class _StreamBase:
    """Stream behaviour over a call-layer core (engine._ext.StepCore, compiled or twin), mixed in before it."""

    def __init__(self, model, n, single):
        if not model.streamable:
            raise StreamingError("this model cannot be stepped one timestep at a time: "
                                 + "; ".join(model.spec.streaming_problems())
                                 + ". Use model.run(X) instead.")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ShapeError(f"the number of streams must be an integer >= 1, got {n!r}")
        n = int(n)
        dt = model.dtype
        plan = model._plan
        packed = plan.packed
        self._model = model
        self._n = n
        self._state_bufs = [np.zeros(n * p.state_size, dt) for p in packed]
        scratch = np.zeros(max(1, n * plan.scratch_size), dt)
        arena = np.zeros(max(1, n * plan.arena_size), dt)
        for e, value in plan.constants:   # the same frame in every row, at every step
            off = plan.edges[e].offset
            arena[off * n:(off + value.size) * n].reshape(n, value.size)[:] = value
        # per node, the address of its kind's C entry point, or for the twin its step kernel's dispatcher
        kernels = [compile_entry(dt.name, p.kind.entry_for(len(st.inputs), p), len(st.inputs), p.kind.reads_ids).address
                   if self.TAKES_ADDRESSES else p.kind.step_for(len(st.inputs), p) for st, p in zip(plan.steps, packed)]

        def io(edge):
            e = plan.edges[edge]
            return e.name, e.shape, dt if e.dtype == "float" else np.dtype(e.dtype)

        inputs, outputs = [io(e) for e in plan.inputs], [io(e) for e in plan.outputs]
        super().__init__(kernels, plan.wiring(), n, dt.name, [p.params for p in packed], [p.meta for p in packed],
                         self._state_bufs, scratch, arena, [(e.offset, e.size) for e in plan.edges],
                         [(e, shape, dtype.name) for e, (_, shape, dtype) in zip(plan.inputs, inputs)],
                         [(e, shape, dtype.name) for e, (_, shape, dtype) in zip(plan.outputs, outputs)],
                         single, InputChecker(dt, n, inputs, outputs, single,
                                              [functools.partial(plan.check_ids, e) if e in plan.id_bounds else None
                                               for e in plan.inputs]),
                         [plan.id_bounds[e][0] if e in plan.id_bounds else None for e in plan.inputs],
                         plan.clocking(), self._due_counts if plan.clocked else None)
        # name -> (view (n, size) into the node's state buffer, initial row)
        self._slots = {}
        for i, (step, p) in enumerate(zip(plan.steps, packed)):
            rows = self._state_bufs[i].reshape(n, p.state_size)
            for slot in p.kind.slots(p):
                initial = np.zeros(slot.size) if slot.initial is None else slot.initial[0]   # the forward direction
                self._slots[f"{step.name}.{slot.name}"] = (rows[:, slot.offset:slot.offset + slot.size],
                                                           initial.astype(dt))
        self._single = single
        self.reset()

    # ---- properties ----
    @property
    def model(self):
        return self._model

    @property
    def input_size(self):
        return self._model.input_size

    @property
    def output_size(self):
        return self._model.output_size

    @property
    def dtype(self):
        return self._model.dtype

    # ---- state ----
    def _rows(self, i):
        if i is None:
            return slice(None)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -self._n <= i < self._n:
            raise IndexError(f"stream index must be an integer in [0, {self._n}), got {i!r}")
        return int(i) % self._n

    @contextlib.contextmanager
    def _exclusive(self):
        """Hold the stream (the call layer's busy flag) while the state is read or written here: a stream
        that another thread is stepping, resetting or reading refuses, and is never changed under it."""
        self._take()
        try:
            yield
        finally:
            self._give()

    def _phases(self):
        """Per step of the plan, row 0's phase (None for a node without one)."""
        plan = self._model._plan
        return [None if off < 0 else self._state_bufs[k][off] for k, off in enumerate(plan.phases)]

    def _due_counts(self, T):
        """Per output, the frames a stream writes in its next T ticks (the call layer asks, holding the stream)."""
        return self._model._plan.due_counts(self._phases(), T)

    def _phase_views(self):
        """(state name, (n, 1) view, initial, timing) of every phase slot."""
        plan = self._model._plan
        return [(f"{step.name}.phase",) + self._slots[f"{step.name}.phase"] + (timing,)
                for step, off, timing in zip(plan.steps, plan.phases, plan.timings) if off >= 0]

    def _check_lockstep(self, phases, what):
        """Streams of one group step in lock-step: every row's phase must stay the same. ``phases``: per phase slot,
        (name, the values the rows would get)."""
        for name, values in phases:
            values = np.asarray(values).reshape(-1)
            if values.size and np.any(values != values[0]):
                raise StateError(f"{what}: the streams of a group step in lock-step through node "
                                 f"{name[:-len('.phase')]!r}, which emits one frame per few input frames, so they "
                                 f"must share its phase (got {sorted(set(values.tolist()))}); a stream that must "
                                 f"restart at any time needs a group (or a Stream) of its own")

    def _reset_rows(self, rows):
        with self._exclusive():
            if not isinstance(rows, slice):   # one stream of a group: the phases must stay those of the others
                after = []
                for name, view, initial, _ in self._phase_views():
                    values = view[:, 0].copy()
                    values[rows] = initial[0]
                    after.append((name, values))
                self._check_lockstep(after, f"reset({rows})")
            for view, initial in self._slots.values():
                view[rows] = initial

    def _copy_state(self):
        if self._single:
            return {name: view[0].copy() for name, (view, _) in self._slots.items()}
        return {name: view.copy() for name, (view, _) in self._slots.items()}

    def get_state(self):
        """A copy of the state: {'<node>.h': array, '<node>.c': array (LSTM), ...}; a chain's nodes are
        ``layers.<i>``."""
        with self._exclusive():
            return self._copy_state()

    def set_state(self, state):
        """Replace the state with ``state`` (a dict as returned by get_state); checked before anything changes."""
        if not isinstance(state, dict):
            raise StateError(f"state must be a dict like get_state() returns, got {type(state).__name__}")
        missing, unknown = set(self._slots) - set(state), set(state) - set(self._slots)
        if missing or unknown:
            raise StateError(f"state keys do not fit this model: expected {sorted(self._slots)}"
                             + (f"; missing {sorted(missing)}" if missing else "")
                             + (f"; unknown {sorted(unknown)}" if unknown else ""))
        checked = {}
        for name, (view, _) in self._slots.items():
            expected = view.shape[1:] if self._single else view.shape
            arr = np.asarray(state[name])
            if arr.shape != expected or arr.dtype.kind not in "fiu":
                raise StateError(f"state {name!r} must be a float array of shape {expected}, "
                                 f"got {arr.dtype} {arr.shape}")
            checked[name] = arr
        for name, _, _, timing in self._phase_views():   # a phase outside its range would never come due again
            top = max(timing.stride, timing.warmup + 1)
            values = np.asarray(checked[name], np.float64)
            if not np.all((values == np.round(values)) & (values >= 0) & (values < top)):
                raise StateError(f"state {name!r}: a phase is a whole number of input frames in [0, {top}), got "
                                 f"{values.ravel().tolist()}")
        if not self._single:
            self._check_lockstep([(name, checked[name]) for name, _, _, _ in self._phase_views()], "set_state")
        with self._exclusive():
            for name, (view, _) in self._slots.items():
                view[...] = checked[name]

    # ---- snapshots ----
    def to_bytes(self):
        """The state as a versioned, checksummed snapshot tied to this model (see the module docstring)."""
        with self._exclusive():
            state = self._copy_state()
        names = sorted(state)
        header = {"version": SNAPSHOT_VERSION, "model": self._model.identity, "dtype": self.dtype.name,
                  "n": self._n, "single": self._single,
                  "arrays": [[name, list(state[name].shape)] for name in names]}
        hjson = json.dumps(header).encode("utf-8")
        body = b"".join(np.ascontiguousarray(state[name], dtype=self.dtype.newbyteorder("<")).tobytes()
                        for name in names)
        blob = SNAPSHOT_MAGIC + struct.pack("<I", len(hjson)) + hjson + body
        return blob + hashlib.sha256(blob).digest()

    @classmethod
    def _parse_snapshot(cls, data, model):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise StateError(f"a snapshot is bytes from to_bytes(), got {type(data).__name__}")
        data = bytes(data)
        if len(data) < len(SNAPSHOT_MAGIC) + 4 + 32 or not data.startswith(SNAPSHOT_MAGIC):
            raise StateError("not an rnnjit stream snapshot (bad magic or too short)")
        blob, digest = data[:-32], data[-32:]
        if hashlib.sha256(blob).digest() != digest:
            raise StateError("snapshot checksum mismatch: the bytes were truncated or altered")
        (hlen,) = struct.unpack_from("<I", blob, len(SNAPSHOT_MAGIC))
        start = len(SNAPSHOT_MAGIC) + 4
        try:
            header = json.loads(blob[start:start + hlen].decode("utf-8"))
            version = header["version"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise StateError(f"unreadable snapshot header ({exc})") from None
        if not isinstance(version, int) or version > SNAPSHOT_VERSION:
            raise StateError(f"snapshot version {version!r} is newer than this rnnjit reads ({SNAPSHOT_VERSION})")
        if header.get("model") != model.identity:
            raise StateError("this snapshot belongs to a different model (its weights hash differs); "
                             "restore it into the model it was taken from")
        if header.get("dtype") != model.dtype.name:
            raise StateError(f"snapshot dtype {header.get('dtype')} does not match the model's {model.dtype.name}")
        dt = model.dtype.newbyteorder("<")
        offset, state = start + hlen, {}
        for name, shape in header["arrays"]:
            count = int(np.prod(shape)) if shape else 1
            nbytes = count * dt.itemsize
            if offset + nbytes > len(blob):
                raise StateError("snapshot is shorter than its header says")
            state[name] = np.frombuffer(blob, dtype=dt, count=count, offset=offset).reshape(shape)
            offset += nbytes
        return header, state


class _SingleStream(_StreamBase):
    def __init__(self, model):
        super().__init__(model, 1, True)

    def reset(self):
        """Back to the initial state (the model's initial_h/initial_c, or zeros)."""
        self._reset_rows(slice(None))

    @classmethod
    def from_bytes(cls, data, model):
        """A new stream of ``model`` resumed from a ``to_bytes()`` snapshot."""
        header, state = cls._parse_snapshot(data, model)
        if not header.get("single"):
            raise StateError("this snapshot is of a Streams group; restore it with Streams.from_bytes")
        stream = cls(model)
        stream.set_state(state)
        return stream

    def __repr__(self):
        return f"<Stream of {self._model.describe_short()}>"


class _StreamGroup(_StreamBase):
    def __init__(self, model, n, threads=1):
        if isinstance(threads, bool) or threads not in (1, 2):
            raise ValueError(f"threads must be 1 or 2 (this machine has {os.cpu_count()} cores), got {threads!r}")
        super().__init__(model, n, False)
        self.set_threads(threads)

    @property
    def n(self):
        return self._n

    def __len__(self):
        return self._n

    def reset(self, i=None):
        """Reset stream ``i`` (or all streams when i is None) to the initial state."""
        self._reset_rows(self._rows(i))

    @classmethod
    def from_bytes(cls, data, model):
        """A new group of streams of ``model`` resumed from a ``to_bytes()`` snapshot."""
        header, state = cls._parse_snapshot(data, model)
        if header.get("single"):
            raise StateError("this snapshot is of a single Stream; restore it with Stream.from_bytes")
        streams = cls(model, header["n"])
        streams.set_state(state)
        return streams

    def __repr__(self):
        return f"<Streams n={self._n} of {self._model.describe_short()}>"


class Stream(_SingleStream, StepCore):
    """One stream: ``step(x)`` with x (input_size,) -> (output_size,). Build with ``model.stream()``."""


class Streams(_StreamGroup, StepCore):
    """n independent streams stepped together: ``step(X)`` with X (n, input_size) -> (n, output_size).

    One call steps them all; each stream's numbers are what a lone stream would give. Build with
    ``model.streams(n)``.
    """
