"""Model: a ModelSpec packed for the kernels once; immutable and shared by every stream and thread.

``run`` scores whole sequences layer by layer, each through its kind's ``run`` (engine/layers/): a recurrent
layer runs its compiled sequence kernel per direction below the BLAS batch (the input projections a few
timesteps at a time inside it), and from BLAS_MIN_BATCH sequences one BLAS GEMM of [x_t, H_t-1] per timestep;
a dense layer is one GEMM over all frames. Streaming goes through ``stream()`` / ``streams(n)``
(engine/session.py).

Shapes: ``run(X)`` takes (T, I), or (B, T, I) with ``batch_first=True`` (the default) or (T, B, I) with
``batch_first=False``, and returns the same leading shape with output_size last. ``lengths`` (B,) gives
each sequence's valid length: a recurrent layer outputs zeros past it (as PyTorch's packed sequences
and ONNX ``sequence_lens`` do) and its final state is the state at the last valid step; a reverse
direction starts from each sequence's own last valid step.
"""

import hashlib

import numpy as np

from .errors import ShapeError, StateError
from .layers import pack_spec
from .layers.recurrent import BLAS_MIN_BATCH  # noqa: F401 - where run() switches to BLAS, re-exported
from .session import Stream, Streams
from .spec import ModelSpec


class Model:
    """A runnable model. ``Model(spec, dtype=None)``; dtype defaults to the spec's ("float32")."""

    __slots__ = ("_spec", "_dtype", "_packed", "_identity")

    def __init__(self, spec, dtype=None):
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"Model takes a ModelSpec (see engine.load for files), got {type(spec).__name__}")
        dt = np.dtype(dtype or spec.dtype)
        if dt not in (np.float32, np.float64):
            raise TypeError(f"Model dtype must be float32 or float64, got {dt}")
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_dtype", dt)
        object.__setattr__(self, "_packed", tuple(pack_spec(spec, dt)))
        digest = hashlib.sha256(dt.name.encode())
        for p in self._packed:
            digest.update(p.meta.tobytes())
            digest.update(p.params.tobytes())
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
        return self._spec.input_size

    @property
    def output_size(self):
        return self._spec.output_size

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
        return sum(int(sum(a.size for a in layer.to_config()[1].values())) for layer in self._spec.layers)

    def describe_short(self):
        kinds = "+".join(type(layer).__name__ for layer in self._spec.layers)
        return f"Model({kinds}, {self.input_size} -> {self.output_size}, {self._dtype.name})"

    def summary(self):
        lines = [f"{self.describe_short()}, {self.num_parameters} parameters, "
                 f"{'streamable' if self.streamable else 'sequence-only (run)'}"]
        size = self.input_size
        for i, layer in enumerate(self._spec.layers):
            out = layer.output_size(size)
            lines.append(f"  ({i}) {layer!r}: {size} -> {out}")
            size = out
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

    def streams(self, n):
        """n independent streams stepped together with X (n, input_size)."""
        return Streams(self, n)

    # ---- whole sequences ----
    def run(self, X, lengths=None, *, batch_first=True, initial_state=None, return_state=False):
        """Outputs for whole sequences (see the module docstring for shapes and ``lengths``).

        ``initial_state``: optional dict ``layers.<i>.h`` (D, B, H_out) / ``layers.<i>.c`` (D, B, H) for
        recurrent layer i (D directions, forward first); (D, H) broadcasts over the batch. Layers not
        named start from the spec's initial state (or zeros). With ``return_state=True`` the final
        states come back in the same form, as ``(Y, state)``.
        """
        arr = np.asarray(X) if not isinstance(X, np.ndarray) else X
        if arr.dtype.kind not in "fiu":
            raise ShapeError(f"expected a float array of shape (T, {self.input_size}) or (B, T, {self.input_size}),"
                             f" got dtype {arr.dtype}")
        if arr.ndim == 2:
            seq = arr[:, None, :]                                  # (T, 1, I)
        elif arr.ndim == 3:
            seq = arr.transpose(1, 0, 2) if batch_first else arr   # (T, B, I)
        else:
            raise ShapeError(f"expected X of shape (T, {self.input_size}) or "
                             f"{'(B, T' if batch_first else '(T, B'}, {self.input_size}), got {arr.shape}")
        if seq.shape[2] != self.input_size:
            raise ShapeError(f"expected input width {self.input_size}, got X of shape {arr.shape}")
        T, B = seq.shape[0], seq.shape[1]
        seq = np.ascontiguousarray(seq, dtype=self._dtype)
        lens = self._lengths(lengths, T, B)
        states_in = self._initial_states(initial_state, B, arr.ndim == 2)
        states_out = {}
        for i, p in enumerate(self._packed):
            seq = p.kind.run(p, seq, lens, states_in, states_out, f"layers.{i}")
        if arr.ndim == 2:
            out = seq[:, 0, :]
            states_out = {k: v[:, 0, :] for k, v in states_out.items()}
        else:
            out = seq.transpose(1, 0, 2) if batch_first else seq
        out = np.ascontiguousarray(out)
        return (out, states_out) if return_state else out

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
        for i, p in enumerate(self._packed):
            for slot in p.kind.state_slots(p.layer):
                allowed[f"layers.{i}.{slot.name}"] = (slot.directions, slot.size)
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
