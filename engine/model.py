"""Model: a ModelSpec planned and packed for the kernels once; immutable, shared by every stream and thread.

``run`` scores whole sequences node by node in the plan's order (engine/plan.py), each through its kind's
``run`` (engine/layers/), all timesteps and sequences at once: a recurrent layer runs its compiled sequence
kernel per direction below the BLAS batch (the input projections a few timesteps at a time inside it), and from
BLAS_MIN_BATCH sequences one BLAS GEMM of [x_t, H_t-1] per timestep; a dense layer is one GEMM over all frames.
Streaming goes through ``stream()`` / ``streams(n)`` (engine/session.py).

Shapes: ``run(X)`` takes (T, I), or (B, T, I) with ``batch_first=True`` (the default) or (T, B, I) with
``batch_first=False``, and returns the same leading shape with output_size last. (An input of N-d frames has
the frame's shape where I stands; a model of several inputs takes a tuple in graph order or a dict by name,
and one of several outputs returns a tuple in graph order.) ``lengths`` (B,) gives
each sequence's valid length: a recurrent layer outputs zeros past it (as PyTorch's packed sequences
and ONNX ``sequence_lens`` do) and its final state is the state at the last valid step; a reverse
direction starts from each sequence's own last valid step.
"""

import hashlib

import numpy as np

from .errors import ShapeError, StateError
from .layers.recurrent import BLAS_MIN_BATCH  # noqa: F401 - where run() switches to BLAS, re-exported
from .layers.recurrent import RUN_THREADS
from .plan import Plan
from .session import Stream, Streams
from .spec import ModelSpec


class Model:
    """A runnable model. ``Model(spec, dtype=None)``; dtype defaults to the spec's ("float32")."""

    __slots__ = ("_spec", "_dtype", "_plan", "_packed", "_identity")

    def __init__(self, spec, dtype=None):
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"Model takes a ModelSpec (see engine.load for files), got {type(spec).__name__}")
        dt = np.dtype(dtype or spec.dtype)
        if dt not in (np.float32, np.float64):
            raise TypeError(f"Model dtype must be float32 or float64, got {dt}")
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_dtype", dt)
        plan = Plan(spec, dt)
        object.__setattr__(self, "_plan", plan)
        object.__setattr__(self, "_packed", plan.packed)
        digest = hashlib.sha256(dt.name.encode())
        for step in plan.steps:
            if not spec.is_chain:   # a chain's identity is what it was before graphs: its snapshots stay valid
                digest.update(repr((step.name, step.inputs, step.output)).encode())
            for part in step.packed.parts:   # (a fused activation: the two nodes it was, as a chain had them)
                digest.update(part.meta.tobytes())
                digest.update(part.params.tobytes())
        for e, value in plan.constants:
            digest.update(repr(e).encode())
            digest.update(value.tobytes())
        object.__setattr__(self, "_identity", digest.hexdigest()[:32])

    def __setattr__(self, name, value):
        raise AttributeError("a Model is immutable; build a new one from a ModelSpec")

    # ---- description ----
    @property
    def spec(self):
        return self._spec

    @property
    def dtype(self):
        return self._dtype

    @property
    def input_size(self):
        """The width of the one input's frames (several inputs: ``inputs``)."""
        return self._spec.input_size

    @property
    def output_size(self):
        """The width of the one output's frames (several outputs: ``outputs``)."""
        return self._spec.output_size

    @property
    def inputs(self):
        """The graph inputs in order: {name: (frame shape, dtype)}."""
        return {i.name: (i.shape, self._dtype.name if i.dtype == "float" else i.dtype) for i in self._spec.inputs}

    @property
    def outputs(self):
        """The graph outputs in order: {name: frame shape}."""
        return {o: self._spec.edges[o][0] for o in self._spec.outputs}

    @property
    def timing(self):
        """Per graph output, when its frames come: ``(stride, delay)``, frame j once input frame j * stride + delay
        has been stepped ((1, 0): one output per input, at once). A stride along time (a strided convolution,
        pooling along time) or padding that reads ahead changes it; ``step`` returns None on the ticks where an
        output has no frame, ``step_n`` returns only the frames that came due."""
        return {o: (self._spec.clocks[o].stride, self._spec.clocks[o].delay) for o in self._spec.outputs}

    @property
    def streamable(self):
        """Whether stream()/streams() work (no reverse or bidirectional recurrent layer)."""
        return self._spec.streamable

    @property
    def identity(self):
        """A hash of the packed weights and dtype: equal models have equal identities."""
        return self._identity

    @property
    def num_parameters(self):
        return (sum(int(sum(a.size for a in node.layer.to_config()[1].values())) for node in self._spec.nodes)
                + sum(int(v.size) for v in self._spec.constants.values()))

    def describe_short(self):
        kinds = "+".join(type(node.layer).__name__ for node in self._spec.nodes)
        if self._spec.is_chain:
            return f"Model({kinds}, {self.input_size} -> {self.output_size}, {self._dtype.name})"
        return (f"Model({kinds}, inputs {', '.join(self.inputs)} -> outputs {', '.join(self.outputs)}, "
                f"{self._dtype.name})")

    def summary(self):
        lines = [f"{self.describe_short()}, {self.num_parameters} parameters, "
                 f"{'streamable' if self.streamable else 'sequence-only (run)'}"]
        edges = self._spec.edges
        for i, node in enumerate(self._spec.nodes):
            if self._spec.is_chain:
                lines.append(f"  ({i}) {node.layer!r}: {edges[node.inputs[0]][0][0]} -> {edges[node.name][0][0]}")
            else:
                ins = ", ".join(f"{e} {edges[e][0]}" for e in node.inputs)
                lines.append(f"  {node.name} = {node.layer!r}({ins}) -> {edges[node.name][0]}")
        return "\n".join(lines)

    def __repr__(self):
        return self.summary()

    def save(self, path):
        """Write the model's spec in the native format."""
        return self._spec.save(path)

    # ---- streaming ----
    def stream(self):
        """A new stream with its own state, at the initial state."""
        return Stream(self)

    def streams(self, n, *, threads=1):
        """n independent streams stepped together with X (n, input_size).

        ``threads=2`` steps the first half of the streams on the calling thread and the second on a worker
        thread of the group's own, in every call (each stream's numbers stay bit for bit those of one thread);
        it pays from a few hundred microseconds of work per call (see benchmarks/README.md, threads)."""
        return Streams(self, n, threads)

    # ---- whole sequences ----
    def run(self, X, lengths=None, *, batch_first=True, initial_state=None, return_state=False, threads=1):
        """Outputs for whole sequences (see the module docstring for shapes and ``lengths``).

        ``initial_state``: optional dict ``<node>.h`` (D, B, H_out) / ``<node>.c`` (D, B, H) for recurrent
        node ``<node>`` (a chain's nodes are ``layers.<i>``; D directions, forward first); (D, H) broadcasts
        over the batch. Nodes not named start from the spec's initial state (or zeros). With
        ``return_state=True`` the final states come back in the same form, as ``(Y, state)``.

        ``threads=2`` runs the first half of the sequences' recurrences on this thread and the second on a worker
        thread, at once: each sequence's numbers stay bit for bit what one thread gives.
        """
        if isinstance(threads, bool) or threads not in (1, 2):
            raise ValueError(f"threads must be 1 or 2, got {threads!r}")
        token = RUN_THREADS.set(threads)
        try:
            return self._run(X, lengths, batch_first, initial_state, return_state)
        finally:
            RUN_THREADS.reset(token)

    def _run(self, X, lengths, batch_first, initial_state, return_state):
        plan = self._plan
        seqs, unbatched = self._sequences(X, batch_first)
        T, B = seqs[0].shape[:2]
        lens = self._lengths(lengths, T, B)
        states_in = self._initial_states(initial_state, B, unbatched)
        states_out = {}
        values = dict(zip(plan.inputs, seqs))
        lengths = {e: lens for e in plan.inputs}   # per edge: each sequence's valid length (a stride shortens it)
        constants = dict(plan.constants)
        for step in plan.steps:
            p = step.packed
            first = next((e for e in step.inputs if e not in constants), None)
            t_in = T if first is None else values[first].shape[0]
            lens_in = lens if first is None else lengths[first]
            ins = [values[e] if e not in constants else
                   np.ascontiguousarray(np.broadcast_to(constants[e], (t_in, B, constants[e].size)))
                   for e in step.inputs]
            # (an activation fused into the node (Plan._fuse) runs after it here: the node is run as packed alone)
            node = p.parts[0]
            values[step.output] = node.kind.run(node, ins[0] if len(ins) == 1 else ins, lens_in, states_in,
                                                states_out, step.name)
            if p.epilogue is not None:
                values[step.output] = p.epilogue.kind.run(p.epilogue, values[step.output], lens_in, {}, {}, "")
            phases = states_in.get(f"{step.name}.phase")
            lengths[step.output] = p.kind.run_lengths(p.layer, lens_in, None if phases is None else
                                                      np.asarray(phases).reshape(-1))
        outs = []
        for e in plan.outputs:
            y = values[e].reshape(values[e].shape[:2] + plan.edges[e].shape)
            if unbatched:
                y = y[:, 0]
            elif batch_first:
                y = y.swapaxes(0, 1)
            outs.append(np.ascontiguousarray(y))
        if unbatched:
            states_out = {k: v[:, 0, :] for k, v in states_out.items()}
        out = outs[0] if len(outs) == 1 else tuple(outs)
        return (out, states_out) if return_state else out

    def _sequences(self, X, batch_first):
        """The inputs as (T, B, frame size) arrays in graph order, and whether they came without a batch axis."""
        plan = self._plan
        inputs = [plan.edges[e] for e in plan.inputs]
        names = [e.name for e in inputs]
        if len(inputs) == 1:
            values = [X]
        elif isinstance(X, dict):
            if set(X) != set(names):
                raise ShapeError(f"expected inputs {names}, got {sorted(X)}")
            values = [X[name] for name in names]
        elif isinstance(X, (tuple, list)) and len(X) == len(names):
            values = list(X)
        else:
            raise ShapeError(f"this model has {len(names)} inputs {names}: give a tuple of {len(names)} arrays in "
                             f"that order or a dict by name, got {type(X).__name__}")
        seqs, unbatched, TB = [], None, None
        for edge, value in zip(inputs, values):
            arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
            frame = edge.shape
            what = "features" if len(frame) == 1 else f"frames {frame}"
            width = frame[0] if len(frame) == 1 else ", ".join(map(str, frame))
            name = "" if len(inputs) == 1 else f"input {edge.name!r}: "
            if arr.dtype.kind not in ("iu" if edge.dtype == "int64" else "fiu"):
                raise ShapeError(f"{name}expected a {'integer' if edge.dtype == 'int64' else 'float'} array of "
                                 f"shape (T, {width}) or (B, T, {width}), got dtype {arr.dtype}")
            if arr.shape[arr.ndim - len(frame):] != tuple(frame) or arr.ndim not in (len(frame) + 1, len(frame) + 2):
                if len(frame) == 1 and arr.ndim in (2, 3):
                    raise ShapeError(f"{name}expected input width {frame[0]}, got X of shape {arr.shape}")
                raise ShapeError(f"{name}expected X of shape (T, {width}) or "
                                 f"{'(B, T' if batch_first else '(T, B'}, {width}) ({what}), got {arr.shape}")
            flat = arr.reshape(arr.shape[:arr.ndim - len(frame)] + (edge.size,))
            if flat.ndim == 2:
                seq, this_unbatched = flat[:, None, :], True
            else:
                seq, this_unbatched = (flat.transpose(1, 0, 2) if batch_first else flat), False
            if unbatched is not None and (this_unbatched != unbatched or seq.shape[:2] != TB):
                raise ShapeError(f"the inputs disagree on time and batch: {name}{arr.shape} against "
                                 f"{values[0].shape if hasattr(values[0], 'shape') else '?'} for {names[0]!r}")
            unbatched, TB = this_unbatched, seq.shape[:2]
            dtype = self._dtype if edge.dtype == "float" else np.int64
            seq = np.ascontiguousarray(seq, dtype=dtype)
            plan.check_ids(plan.inputs[len(seqs)], seq, f"input {edge.name!r}")
            seqs.append(seq)
        return seqs, unbatched

    def _lengths(self, lengths, T, B):
        if lengths is None:
            return np.full(B, T, dtype=np.int64)
        lens = np.asarray(lengths)
        if lens.shape != (B,) or lens.dtype.kind not in "iu":
            raise ShapeError(f"lengths must be {B} integers (one per sequence), got {lens.dtype} {lens.shape}")
        if lens.size and (lens.min() < 0 or lens.max() > T):
            raise ShapeError(f"lengths must lie in [0, T={T}], got min {lens.min()} max {lens.max()}")
        return lens.astype(np.int64)

    def _initial_states(self, initial_state, B, unbatched):
        if initial_state is None:
            return {}
        if not isinstance(initial_state, dict):
            raise StateError(f"initial_state must be a dict of arrays, got {type(initial_state).__name__}")
        allowed = {}   # name -> (directions, size)
        for step in self._plan.steps:
            p = step.packed
            for slot in p.kind.slots(p):
                allowed[f"{step.name}.{slot.name}"] = (slot.directions, slot.size)
        unknown = set(initial_state) - set(allowed)
        if unknown:
            raise StateError(f"initial_state has unknown keys {sorted(unknown)}; this model takes {sorted(allowed)}")
        out = {}
        for name, value in initial_state.items():
            D, size = allowed[name]
            arr = np.asarray(value)
            if arr.shape == (D, size):
                arr = np.broadcast_to(arr[:, None, :], (D, B, size))
            elif arr.shape != (D, B, size):
                batch = "" if unbatched else f" or (D, B, H) = {(D, B, size)}"
                raise StateError(f"initial_state {name!r} must have shape (D, H) = {(D, size)}{batch}, got {arr.shape}")
            out[name] = np.ascontiguousarray(arr, dtype=self._dtype)
        return out
