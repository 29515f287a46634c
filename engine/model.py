"""Model: a ModelSpec packed for the kernels once; immutable and shared by every stream and thread.

``run`` scores whole sequences: for each recurrent layer the input projection of all timesteps is one
GEMM through numpy's BLAS (X @ W^T + b, the packed (I, G*H) block), then the recurrence runs in one
compiled call per direction (engine/kernels/cells.py). Streaming goes through ``stream()`` /
``streams(n)`` (engine/session.py).

Shapes: ``run(X)`` takes (T, I), or (B, T, I) with ``batch_first=True`` (the default) or (T, B, I) with
``batch_first=False``, and returns the same leading shape with output_size last. ``lengths`` (B,) gives
each sequence's valid length: a recurrent layer outputs zeros past it (as PyTorch's packed sequences
and ONNX ``sequence_lens`` do) and its final state is the state at the last valid step; a reverse
direction starts from each sequence's own last valid step.
"""

import hashlib

import numpy as np

from .errors import ShapeError, StateError
from .kernels import layout as L
from .kernels.cells import (_start, gru_blas_finish, gru_blas_gates, gru_sequence, lstm_blas_post, lstm_sequence,
                            rnn_blas_post, rnn_sequence, seq_blas_load, seq_blas_store, sequence_work_size)
from .kernels.ops import run_op
from .layers.pack import pack_spec
from .session import Stream, Streams
from .spec import ModelSpec


# run(): from this many sequences on, the recurrent GEMM of each timestep goes to BLAS. Measured crossover
# (LSTM 32x128, T=200): the compiled path is faster at 8 and 16 sequences (22.9 vs 24.0, 54.9 vs 61.3 us per
# step), BLAS at 32 and 64 (99.8 vs 116.3, 144.1 vs 197.2).
BLAS_MIN_BATCH = 24


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
            if p.kind in (L.OP_LSTM, L.OP_GRU, L.OP_RNN):
                seq = self._run_recurrent(i, p, seq, lens, states_in, states_out)
            elif p.kind == L.OP_DENSE:
                W = p.view(0, L.D_W, (p.out_size, p.in_size))
                y = seq.reshape(T * B, p.in_size) @ W.T
                if p.meta[L.M_DIR + L.D_BIAS] >= 0:
                    y += p.view(0, L.D_BIAS, (p.out_size,))
                seq = y.reshape(T, B, p.out_size)
            else:
                y = np.empty((T * B, p.out_size), self._dtype)
                run_op(seq.reshape(T * B, p.in_size), y, p.params, np.empty((T * B, 0), self._dtype),
                       np.empty(0, self._dtype), p.meta)
                seq = y.reshape(T, B, p.out_size)
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
        allowed = {}
        for i, p in enumerate(self._packed):
            if p.kind in (L.OP_LSTM, L.OP_GRU, L.OP_RNN):
                layer = p.layer
                allowed[f"layers.{i}.h"] = (layer.num_directions, layer.output_hidden)
                if p.kind == L.OP_LSTM:
                    allowed[f"layers.{i}.c"] = (layer.num_directions, layer.hidden_size)
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

    def _run_recurrent(self, i, p, seq, lens, states_in, states_out):
        layer = p.layer
        T, B, I = seq.shape
        H, Ho, D = layer.hidden_size, layer.output_hidden, layer.num_directions
        dt = self._dtype

        def start(name, size, spec_initial):
            if name in states_in:
                return states_in[name]
            init = np.zeros((D, size), dt) if spec_initial is None else spec_initial.astype(dt)
            return np.ascontiguousarray(np.broadcast_to(init[:, None, :], (D, B, size)))

        h0 = start(f"layers.{i}.h", Ho, layer.initial_h)
        hT = np.zeros((D, B, Ho), dt)
        c0 = cT = None
        if p.kind == L.OP_LSTM:
            c0 = start(f"layers.{i}.c", H, layer.initial_c)
            cT = np.zeros((D, B, H), dt)
        outs = []
        for d in range(D):
            reverse = layer.direction == "reverse" or d == 1
            Y = np.zeros((T, B, Ho), dt)
            if B >= BLAS_MIN_BATCH:
                self._recurrence_blas(p, d, seq, B, h0, hT, c0, cT, Y, lens, reverse)
            else:
                work = np.zeros(sequence_work_size(layer.cell, B, I, H, Ho), dt)
                if p.kind == L.OP_LSTM:
                    lstm_sequence(seq, p.params, p.meta, d, h0[d], c0[d], Y, lens, reverse, hT[d], cT[d], work)
                elif p.kind == L.OP_GRU:
                    gru_sequence(seq, p.params, p.meta, d, h0[d], Y, lens, reverse, hT[d], work)
                else:
                    rnn_sequence(seq, p.params, p.meta, d, h0[d], Y, lens, reverse, hT[d], work)
            outs.append(Y)
        states_out[f"layers.{i}.h"] = hT
        if cT is not None:
            states_out[f"layers.{i}.c"] = cT
        return outs[0] if D == 1 else np.concatenate(outs, axis=2)

    @staticmethod
    def _recurrence_blas(p, d, seq, B, h0, hT, c0, cT, Y, lens, reverse):
        """The recurrence of direction d with each timestep's [x_t, H_t-1] [W^T; R^T] as one BLAS GEMM over the
        batch (numpy's np.dot), the cell updates in compiled kernels. For B >= BLAS_MIN_BATCH: there the GEMM
        is 1.4-2x faster than the engine's own accumulation (benchmarks/kernel_variants.py), which stays in use
        below it, where a Python-level loop per timestep would cost more than it saves. The input projection is
        not done for all T up front here: its (T, B, 4H) result would be written to fresh memory, and at batch
        32 the page faults alone cost as much as the recurrence."""
        layer, m, P = p.layer, p.meta, p.params
        I, H, Ho = layer.input_size, layer.hidden_size, layer.output_hidden
        dt = hT.dtype
        HT = hT[d]
        longest = _start(HT, h0[d], lens)
        XH = np.zeros((B, I + Ho), dt)                                                  # [x_t, H_t-1]
        if p.kind == L.OP_LSTM:
            M, bias = p.matrix(d, L.D_M, I + Ho, 4 * H), p.view(d, L.D_B, (4 * H,))   # [W^T; R^T]
            CT = cT[d]
            _start(CT, c0[d], lens)
            G, HF = np.empty((B, 4 * H), dt), np.empty((B, H), dt)
            projected = bool(layer.proj_size)
            if projected:
                Wp, PROJ = p.matrix(d, L.D_PROJ, H, Ho), np.empty((B, Ho), dt)
            for s in range(longest):
                seq_blas_load(XH, seq, HT, lens, s, reverse)
                np.dot(XH, M, out=G)
                lstm_blas_post(G, bias, P, m, d, CT, HF, HT, Y, lens, s, reverse, projected)
                if projected:
                    np.dot(HF, Wp, out=PROJ)
                    seq_blas_store(PROJ, HT, Y, lens, s, reverse)
        elif p.kind == L.OP_GRU:
            M, bias = p.matrix(d, L.D_M, I + H, 2 * H), p.view(d, L.D_B, (2 * H,))
            Wn, Rn = p.matrix(d, L.D_WXN, I, H), p.matrix(d, L.D_RHN, H, H)
            GRZ, GXN, GHN, RH = (np.empty((B, 2 * H), dt), np.empty((B, H), dt), np.empty((B, H), dt),
                                 np.zeros((B, H), dt))
            lbr = layer.linear_before_reset
            for s in range(longest):
                seq_blas_load(XH, seq, HT, lens, s, reverse)
                np.dot(XH, M, out=GRZ)
                np.dot(XH[:, :I], Wn, out=GXN)
                gru_blas_gates(GRZ, bias, HT, RH, P, m, d, lens, s, reverse)
                np.dot(HT if lbr else RH, Rn, out=GHN)
                gru_blas_finish(GRZ, GXN, GHN, HT, Y, P, m, d, lens, s, reverse)
        else:
            M, bias = p.matrix(d, L.D_M, I + H, H), p.view(d, L.D_B, (H,))
            G = np.empty((B, H), dt)
            for s in range(longest):
                seq_blas_load(XH, seq, HT, lens, s, reverse)
                np.dot(XH, M, out=G)
                rnn_blas_post(G, bias, P, m, d, HT, Y, lens, s, reverse)
