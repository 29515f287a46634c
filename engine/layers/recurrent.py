"""What the LSTM, GRU and RNN rooms share: packing per direction, the h (and c) state slots, the reverse and
bidirectional directions, and running whole sequences (the compiled per-sequence kernels below the BLAS batch,
BLAS GEMMs per timestep from it).

Design: each cell's room (lstm.py, gru.py, rnn.py) says what differs: how its weights pack (``pack_weights``),
its state and scratch sizes, its sequence kernel (``sequence``) and the timestep of its BLAS path
(``blas_recurrence``). Shapes in ``run``: seq (T, B, I), states (D, B, size), Y (T, B, D * H_out).
"""

import numpy as np

from ..kernels import layout as L
from ..kernels.activations import CODES
from ..kernels.recurrence import _start
from ..spec import Activation
from .base import Buffer, Kind, Packed, Slot

# run(): from this many sequences on, the recurrent GEMM of each timestep goes to BLAS. Measured crossover
# (LSTM 32x128, T=200): the compiled path is faster at 8 and 16 sequences (22.9 vs 24.0, 54.9 vs 61.3 us per
# step), BLAS at 32 and 64 (99.8 vs 116.3, 144.1 vs 197.2).
BLAS_MIN_BATCH = 24


class RecurrentKind(Kind):
    """A recurrent cell's kind; lstm.py, gru.py and rnn.py fill in the cell."""

    extra_flags = 0

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

    def reads_future(self, layer):
        return None if layer.direction == "forward" else f"direction={layer.direction}"

    def run(self, p, seq, lengths, states_in, states_out, prefix):
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
            else:   # the compiled recurrence, input projections a few timesteps at a time
                work = np.zeros(self.work_size(B, layer.input_size, layer.hidden_size, layer.output_hidden), dt)
                self.sequence_kernel(p, d, seq, h0[d], None if c0 is None else c0[d], Y, lengths, reverse, hT[d],
                                     None if cT is None else cT[d], work)
            outs.append(Y)
        for name, final in finals.items():
            states_out[f"{prefix}.{name}"] = final
        return outs[0] if D == 1 else np.concatenate(outs, axis=2)

    def _recurrence_blas(self, p, d, seq, h0, hT, c0, cT, Y, lengths, reverse):
        """The recurrence of direction d with each timestep's [x_t, H_t-1] [W^T; R^T] as one BLAS GEMM over the
        batch (numpy's np.dot), the cell updates in compiled kernels. For B >= BLAS_MIN_BATCH: there the GEMM
        is 1.4-2x faster than the engine's own accumulation (benchmarks/kernel_variants.py), which stays in use
        below it, where a Python-level loop per timestep would cost more than it saves. The input projection is
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
