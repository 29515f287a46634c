"""What the LSTM, GRU and RNN rooms share: the spec layer's attributes and validation (``Recurrent``; see
engine/spec.py for the canonical layout), packing per direction, the h (and c) state slots, the reverse and
bidirectional directions, and running whole sequences (the compiled per-sequence kernels below the BLAS batch,
BLAS GEMMs per timestep from it).

Design: each cell's room (lstm.py, gru.py, rnn.py) says what differs: how its weights pack (``pack_weights``),
its state and scratch sizes, its sequence kernel and that kernel's scratch (``sequence_kernel``, ``work_size``)
and the timestep of its BLAS path (``blas_recurrence``). Shapes in ``run``: seq (T, B, I), states (D, B, size),
Y (T, B, D * H_out).
"""

import concurrent.futures
import contextvars
import os

import numpy as np

from ..kernels import layout as L
from ..kernels.activations import CODES
from ..kernels.recurrence import _start
from ..errors import SpecError
from .activation import Activation, _is_activation_like
from .base import Buffer, Kind, Packed, Slot
from .validate import _array, _expect_shape, _f, _positive_int

DIRECTIONS = ("forward", "reverse", "bidirectional")


class Recurrent:
    """Common part of LSTM, GRU and RNN layers. Construct those, not this.

    ``weights`` is one dict per direction (forward first) with the canonical arrays named in the module
    docstring; missing biases are zeros. ``activations`` is one tuple per direction, or one tuple used for
    every direction, or None for the cell's defaults.
    """

    cell = None
    gates = 0
    default_activations = ()
    kind = "recurrent"

    def __init__(self, input_size, hidden_size, weights, *, direction="forward", activations=None, clip=None,
                 initial_h=None, initial_c=None, proj_size=0, input_forget=False, linear_before_reset=True,
                 name=None):
        where = f"{self.cell.upper()} layer" + (f" {name!r}" if name else "")
        self.name = name
        self.input_size = _positive_int(input_size, "input_size", where)
        self.hidden_size = _positive_int(hidden_size, "hidden_size", where)
        if direction not in DIRECTIONS:
            raise SpecError(f"{where}: direction must be one of {DIRECTIONS}, got {direction!r}")
        self.direction = direction
        self.num_directions = 2 if direction == "bidirectional" else 1
        self.proj_size = 0 if proj_size in (None, 0) else _positive_int(proj_size, "proj_size", where)
        if self.proj_size and self.cell != "lstm":
            raise SpecError(f"{where}: proj_size is an LSTM feature, got proj_size={proj_size}")
        if self.proj_size and self.proj_size >= self.hidden_size:
            # PyTorch's own rule; a projection is meant to shrink the state.
            raise SpecError(f"{where}: proj_size ({self.proj_size}) must be smaller than hidden_size "
                            f"({self.hidden_size})")
        self.clip = None if clip is None else _f(clip, "clip", where)
        if self.clip is not None and self.clip <= 0:
            raise SpecError(f"{where}: clip must be > 0 (or None for no clipping), got {self.clip}")
        self.input_forget = bool(input_forget)
        if self.input_forget and self.cell != "lstm":
            raise SpecError(f"{where}: input_forget is an LSTM feature")
        self.linear_before_reset = bool(linear_before_reset) if self.cell == "gru" else False

        G, H, I, Ho, D = self.gates, self.hidden_size, self.input_size, self.output_hidden, self.num_directions
        if isinstance(weights, dict):
            weights = [weights]
        weights = list(weights)
        if len(weights) != D:
            raise SpecError(f"{where}: direction {direction!r} needs {D} weight set(s), got {len(weights)}")
        self.weights = []
        for d, w in enumerate(weights):
            dw = f"{where} direction {d}"
            unknown = set(w) - {"weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "peephole"}
            if unknown:
                raise SpecError(f"{dw}: unknown weight name(s) {sorted(unknown)}")
            for required in ("weight_ih", "weight_hh"):
                if w.get(required) is None:
                    raise SpecError(f"{dw}: {required} is required")
            arrs = {
                "weight_ih": _array(w["weight_ih"], "weight_ih", dw, 2),
                "weight_hh": _array(w["weight_hh"], "weight_hh", dw, 2),
                "bias_ih": _array(w.get("bias_ih"), "bias_ih", dw, 1),
                "bias_hh": _array(w.get("bias_hh"), "bias_hh", dw, 1),
                "weight_hr": _array(w.get("weight_hr"), "weight_hr", dw, 2),
                "peephole": _array(w.get("peephole"), "peephole", dw, 2),
            }
            _expect_shape(arrs["weight_ih"], (G * H, I), f"weight_ih ({G} gates x hidden {H}, input {I})", dw)
            _expect_shape(arrs["weight_hh"], (G * H, Ho), f"weight_hh ({G} gates x hidden {H}, state {Ho})", dw)
            _expect_shape(arrs["bias_ih"], (G * H,), "bias_ih", dw)
            _expect_shape(arrs["bias_hh"], (G * H,), "bias_hh", dw)
            if arrs["weight_hr"] is not None and not self.proj_size:
                raise SpecError(f"{dw}: weight_hr given but proj_size is 0")
            if self.proj_size and arrs["weight_hr"] is None:
                raise SpecError(f"{dw}: proj_size={self.proj_size} needs weight_hr of shape ({self.proj_size}, {H})")
            _expect_shape(arrs["weight_hr"], (self.proj_size, H), "weight_hr (proj_size, hidden)", dw)
            if arrs["peephole"] is not None and self.cell != "lstm":
                raise SpecError(f"{dw}: peepholes are an LSTM feature")
            _expect_shape(arrs["peephole"], (3, H), "peephole (gates i, f, o; hidden)", dw)
            self.weights.append({k: v for k, v in arrs.items() if v is not None})

        if activations is None:
            activations = [self.default_activations] * D
        else:
            activations = list(activations)
            # A flat list of activations applies to every direction; otherwise one list per direction.
            if all(_is_activation_like(a) for a in activations):
                activations = [activations] * D
            if len(activations) != D:
                raise SpecError(f"{where}: activations must give one list per direction ({D}), got {len(activations)}")
        self.activations = []
        for d, acts in enumerate(activations):
            acts = tuple(Activation.of(a) for a in acts)
            if len(acts) != len(self.default_activations):
                raise SpecError(f"{where}: a {self.cell.upper()} takes {len(self.default_activations)} activation "
                                f"functions per direction ({self._activation_roles}), got {len(acts)}")
            for a in acts:
                if not a.usable_in_cell:
                    raise SpecError(f"{where}: {a.name} cannot be a recurrent gate function")
            self.activations.append(acts)
        self.activations = tuple(self.activations)

        self.initial_h = _array(initial_h, "initial_h", where, 2)
        _expect_shape(self.initial_h, (D, Ho), "initial_h (directions, state size)", where)
        self.initial_c = _array(initial_c, "initial_c", where, 2)
        if self.initial_c is not None and self.cell != "lstm":
            raise SpecError(f"{where}: initial_c is an LSTM feature")
        _expect_shape(self.initial_c, (D, H), "initial_c (directions, hidden)", where)

    _activation_roles = ""

    @property
    def output_hidden(self):
        """Size of the hidden state h fed back and emitted per direction (proj_size if projected)."""
        return self.proj_size or self.hidden_size

    @property
    def has_peepholes(self):
        return any("peephole" in w for w in self.weights)

    def output_size(self, input_size=None):
        return self.num_directions * self.output_hidden

    def validate(self, input_size, where):
        if input_size != self.input_size:
            raise SpecError(f"{where}: {self.cell.upper()} expects input_size {self.input_size}, "
                            f"but the layer before it outputs {input_size}")
        return self.output_size()

    def __repr__(self):
        extras = []
        if self.direction != "forward":
            extras.append(f"direction={self.direction!r}")
        if self.proj_size:
            extras.append(f"proj_size={self.proj_size}")
        if self.clip is not None:
            extras.append(f"clip={self.clip}")
        if self.input_forget:
            extras.append("input_forget=True")
        if self.has_peepholes:
            extras.append("peepholes")
        if self.cell == "gru":
            extras.append(f"linear_before_reset={int(self.linear_before_reset)}")
        if any(a != tuple(Activation.of(x) for x in self.default_activations) for a in self.activations):
            extras.append("activations=" + "/".join(",".join(a.name for a in acts) for acts in self.activations))
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}{''.join(', ' + e for e in extras)})"

    # ---- serialization: a JSON-able config plus named arrays ----
    def to_config(self):
        config = {
            "kind": self.kind, "cell": self.cell, "name": self.name, "input_size": self.input_size,
            "hidden_size": self.hidden_size, "direction": self.direction, "proj_size": self.proj_size,
            "clip": self.clip, "input_forget": self.input_forget,
            "linear_before_reset": self.linear_before_reset,
            "activations": [[[a.name, a.alpha, a.beta] for a in acts] for acts in self.activations],
        }
        arrays = {}
        for d, w in enumerate(self.weights):
            for key, arr in w.items():
                arrays[f"dir{d}.{key}"] = arr
        if self.initial_h is not None:
            arrays["initial_h"] = self.initial_h
        if self.initial_c is not None:
            arrays["initial_c"] = self.initial_c
        return config, arrays

    @classmethod
    def from_config(cls, config, arrays):
        D = 2 if config["direction"] == "bidirectional" else 1
        weights = [{k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(f"dir{d}.")} for d in range(D)]
        kwargs = dict(direction=config["direction"], clip=config["clip"], name=config.get("name"),
                      activations=[[tuple(a) for a in acts] for acts in config["activations"]],
                      initial_h=arrays.get("initial_h"), **cls._config_kwargs(config, arrays))
        return cls(config["input_size"], config["hidden_size"], weights, **kwargs)

    @classmethod
    def _config_kwargs(cls, config, arrays):
        """The cell's own constructor arguments from a native-format config (none here)."""
        return {}


# run(): from this many sequences on, the recurrent GEMM of each timestep goes to BLAS. Measured crossover
# (LSTM 32x128, T=300, float32, AVX-512, 2026-12-01, with gemm_acc's vector tiles; us per timestep, compiled vs
# BLAS path): 16: 34.1 vs 49.6, 24: 53.7 vs 62.9, 32: 76.1 vs 87.2, 64: 138.7 vs 134.4, 128: 305 vs 271,
# 256: 606 vs 492. (Before those tiles it was 24: BLAS won from 32 on.)
BLAS_MIN_BATCH = 64

# Model.run(threads=): 1, or 2 to split the compiled recurrence's sequences across this thread and a worker
RUN_THREADS = contextvars.ContextVar("rnnjit_run_threads", default=1)
_WORKER = []


def _worker():
    """The one worker thread of ``run(threads=2)`` (started on first use, a daemon; a forked child starts its own)."""
    if not _WORKER or _WORKER[0][1] != os.getpid():
        _WORKER[:] = [(concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rnnjit-run"), os.getpid())]
    return _WORKER[0][0]


class RecurrentKind(Kind):
    """A recurrent cell's kind; lstm.py, gru.py and rnn.py fill in the cell."""

    # ---- what each cell says ----
    def pack_weights(self, buf, meta, base, layer, w, b_ih, b_hh):
        """Pack one direction's canonical weights (w: the spec's dict; biases widened to float64)."""
        raise NotImplementedError

    def flags(self, layer):
        """The cell's own F_* bits (beyond F_FAST and F_CLIP)."""
        return 0

    def is_fast(self, layer, acts):
        """Whether the branch-free vectorized update applies (default activations, no clip or peepholes)."""
        return layer.clip is None and acts == tuple(Activation(a) for a in layer.default_activations)

    def sizes(self, layer):
        """(state floats per row, scratch floats per row) for the *_step kernel."""
        raise NotImplementedError

    work_size = None   # the cell's *_work_size(B, I, H, H_out): floats of scratch its sequence kernel needs

    def sequence_kernel(self, p, d, seq, h0, c0, Y, lens, reverse, hT, cT, work):
        """Call the cell's compiled sequence kernel for direction d."""
        raise NotImplementedError

    def blas_recurrence(self, p, d, seq, HT, CT, XH, Y, lens, reverse, longest):
        """The recurrence of direction d with each timestep's [x_t, H_t-1] [W^T; R^T] as one BLAS GEMM."""
        raise NotImplementedError

    # ---- shared ----
    def pack(self, layer, in_size, dtype):
        """Canonical (PyTorch) layout in, kernel layout out, per direction; see kernels/layout.py."""
        G, H = layer.gates, layer.hidden_size
        buf = Buffer()
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        fast = all(self.is_fast(layer, acts) for acts in layer.activations)
        for d, (w, acts) in enumerate(zip(layer.weights, layer.activations)):
            base = L.M_DIR + d * L.DIR_STRIDE
            # widened before the biases are pre-added: float32 weights summed in float32 would round the sum
            b_ih = np.asarray(w.get("bias_ih", np.zeros(G * H)), np.float64)
            b_hh = np.asarray(w.get("bias_hh", np.zeros(G * H)), np.float64)
            self.pack_weights(buf, meta, base, layer, w, b_ih, b_hh)
            floats = [layer.clip if layer.clip is not None else 0.0]
            for k, act in enumerate(acts):
                floats += [act.alpha, act.beta]
                meta[base + L.D_ACT0 + k] = CODES[act.name]
            floats += [0.0] * (7 - len(floats))
            meta[base + L.D_FLT] = buf.add(np.array(floats))
        flags = (L.F_FAST if fast else 0) | (L.F_CLIP if layer.clip is not None else 0) | self.flags(layer)
        meta[L.M_H], meta[L.M_HO], meta[L.M_D], meta[L.M_FLAGS] = H, layer.output_hidden, layer.num_directions, flags
        state, scratch = self.sizes(layer)
        return Packed(layer, self, buf.finish(dtype), meta, layer.input_size, layer.output_size(), state, scratch)

    def state_slots(self, layer):
        return (Slot("h", 0, layer.output_hidden, layer.num_directions, layer.initial_h),)

    accepts_mask = True   # (x, mask): Keras masking (reverse and bidirectional layers in run)

    def infer(self, layer, inputs, where):
        if len(inputs) == 2:
            (edge, shape, dtype) = inputs[1]
            if dtype != "float" or tuple(shape) != (1,):
                raise SpecError(f"{where}: a recurrent node's second input is a mask, one value per timestep (a "
                                f"Masking node's output, shape (1,)); edge {edge!r} carries {dtype} frames of shape "
                                f"{shape}")
        return super().infer(layer, inputs[:1], where)

    def pack_node(self, layer, shapes, dtype):
        p = self.pack(layer, shapes[0][0], dtype)
        if len(shapes) == 2:   # masked: the state of skipped rows is kept past the cell's scratch
            p.extra_scratch = p.state_size
        return p

    def reads_future(self, layer):
        return None if layer.direction == "forward" else f"direction={layer.direction}"

    def run(self, p, seq, lengths, states_in, states_out, prefix):
        if isinstance(seq, list):
            return self._run_masked(p, seq[0], seq[1], lengths, states_in, states_out, prefix)
        layer = p.layer
        T, B, _ = seq.shape
        D = layer.num_directions
        dt = seq.dtype
        starts, finals = {}, {}
        for slot in self.state_slots(layer):
            name = f"{prefix}.{slot.name}"
            if name in states_in:
                starts[slot.name] = states_in[name]
            else:
                init = np.zeros((D, slot.size), dt) if slot.initial is None else slot.initial.astype(dt)   # (D, size)
                starts[slot.name] = np.ascontiguousarray(np.broadcast_to(init[:, None, :], (D, B, slot.size)))
            finals[slot.name] = np.zeros((D, B, slot.size), dt)
        h0, hT, c0, cT = starts["h"], finals["h"], starts.get("c"), finals.get("c")
        outs = []
        for d in range(D):
            reverse = layer.direction == "reverse" or d == 1
            Y = np.zeros((T, B, layer.output_hidden), dt)
            if B >= BLAS_MIN_BATCH:
                self._recurrence_blas(p, d, seq, h0, hT, c0, cT, Y, lengths, reverse)
            elif RUN_THREADS.get() == 2 and B >= 2:
                self._recurrence_split(p, d, seq, h0, hT, c0, cT, Y, lengths, reverse)
            else:   # the compiled recurrence, input projections a few timesteps at a time
                self._recurrence_rows(p, d, seq, h0, hT, c0, cT, Y, lengths, reverse, 0, B)
            outs.append(Y)
        for name, final in finals.items():
            states_out[f"{prefix}.{name}"] = final
        return outs[0] if D == 1 else np.concatenate(outs, axis=2)

    def _run_masked(self, p, seq, mask, lengths, states_in, states_out, prefix):
        """A masked layer over whole sequences: its masked step kernel once per timestep over all B sequences, per
        direction in its own order (a timestep past a sequence's length is skipped too, and outputs zeros as
        unmasked runs do). A skipped timestep outputs the direction's previous output (Keras's RNN), except in a
        bidirectional layer, where it outputs zeros (Keras's Bidirectional)."""
        layer = p.layer
        T, B, _ = seq.shape
        D, Ho = layer.num_directions, layer.output_hidden
        dt = seq.dtype
        valid = (np.arange(T)[:, None] < np.asarray(lengths)[None, :])[..., None]          # (T, B, 1)
        M = np.ascontiguousarray(np.where(valid, mask, 0), dt)
        outs, finals = [], {slot.name: np.zeros((D, B, slot.size), dt) for slot in self.state_slots(layer)}
        for d in range(D):
            meta = p.meta
            if D > 1:   # the step kernel steps direction 0: give it direction d's block there
                meta = p.meta.copy()
                block = L.M_DIR + d * L.DIR_STRIDE
                meta[L.M_DIR:L.M_DIR + L.DIR_STRIDE] = p.meta[block:block + L.DIR_STRIDE]
                meta[L.M_D], meta[L.M_OUT] = 1, Ho
            S = np.zeros((B, p.state_size), dt)
            for slot in self.state_slots(layer):
                name = f"{prefix}.{slot.name}"
                if name in states_in:
                    S[:, slot.offset:slot.offset + slot.size] = states_in[name][d]
                elif slot.initial is not None:
                    S[:, slot.offset:slot.offset + slot.size] = slot.initial[d]
            SC = np.zeros(B * (p.scratch_size + p.state_size), dt)
            Y = np.zeros((T, B, Ho), dt)
            reverse = layer.direction == "reverse" or d == 1
            for t in (range(T - 1, -1, -1) if reverse else range(T)):
                self.masked_step(seq[t], M[t], Y[t], p.params, S, SC, meta)
            Y *= M if D > 1 else valid
            outs.append(Y)
            for slot in self.state_slots(layer):
                finals[slot.name][d] = S[:, slot.offset:slot.offset + slot.size]
        for name, final in finals.items():
            states_out[f"{prefix}.{name}"] = final
        return outs[0] if D == 1 else np.concatenate(outs, axis=2)

    def _recurrence_rows(self, p, d, seq, h0, hT, c0, cT, Y, lengths, reverse, lo, hi):
        """The compiled recurrence of direction d for sequences lo..hi-1 (all of them: the arrays as they are; a
        part: contiguous copies of its inputs, results written back into its rows)."""
        layer = p.layer
        whole = lo == 0 and hi == seq.shape[1]
        rows = slice(lo, hi)
        part = seq if whole else np.ascontiguousarray(seq[:, rows])
        out = Y if whole else np.zeros((Y.shape[0], hi - lo, Y.shape[2]), Y.dtype)
        work = np.zeros(self.work_size(hi - lo, layer.input_size, layer.hidden_size, layer.output_hidden), seq.dtype)
        self.sequence_kernel(p, d, part, h0[d][rows], None if c0 is None else c0[d][rows], out,
                             np.ascontiguousarray(lengths[rows]), reverse, hT[d][rows],
                             None if cT is None else cT[d][rows], work)
        if not whole:
            Y[:, rows] = out

    def _recurrence_split(self, p, d, seq, h0, hT, c0, cT, Y, lengths, reverse):
        """``Model.run(threads=2)``: the first half of the sequences on this thread, the second on a worker, at
        once (the kernels run without the GIL). A sequence's numbers do not depend on the others in its batch:
        bit for bit what one thread gives."""
        B = seq.shape[1]
        a = (B + 1) // 2
        other = _worker().submit(self._recurrence_rows, p, d, seq, h0, hT, c0, cT, Y, lengths, reverse, a, B)
        self._recurrence_rows(p, d, seq, h0, hT, c0, cT, Y, lengths, reverse, 0, a)
        other.result()

    def _recurrence_blas(self, p, d, seq, h0, hT, c0, cT, Y, lengths, reverse):
        """The recurrence of direction d with each timestep's [x_t, H_t-1] [W^T; R^T] as one BLAS GEMM over the
        batch (numpy's np.dot), the cell updates in compiled kernels. For B >= BLAS_MIN_BATCH: there the path is
        faster than the engine's own recurrence (see BLAS_MIN_BATCH), which stays in use below it, where a Python-level loop per timestep would cost more than it saves. The input projection is
        not done for all T up front here: its (T, B, 4H) result would be written to fresh memory, and at batch
        32 the page faults alone cost as much as the recurrence."""
        layer = p.layer
        HT = hT[d]
        longest = _start(HT, h0[d], lengths)
        CT = None
        if cT is not None:
            CT = cT[d]
            _start(CT, c0[d], lengths)
        XH = np.zeros((seq.shape[1], layer.input_size + layer.output_hidden), seq.dtype)   # [x_t, H_t-1]
        self.blas_recurrence(p, d, seq, HT, CT, XH, Y, lengths, reverse, longest)
