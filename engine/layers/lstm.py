"""LSTM: gates i, f, g, o (PyTorch's order; ONNX's i, o, f, c and Keras's i, f, c, o are permuted by the
converters); optional projection (proj_size), peepholes, clip, coupled input and forget gates.

Packed per direction (kernels/layout.py): D_M [W^T; R^T] (I + H_out, 4H) as panels, D_B the pre-added biases,
D_PEEP (3, H) i, f, o, D_PROJ weight_hr^T (H, H_out) as panels. A stream's state row is [h (H_out) | c (H)].
"""

import numpy as np

from ..kernels import layout as L
from ..kernels.lstm import (lstm_blas_post, lstm_entry, lstm_fast_entry, lstm_fast_step, lstm_masked_entry,
                            lstm_masked_step, lstm_sequence, lstm_step, lstm_work_size)
from ..kernels.recurrence import seq_blas_load, seq_blas_store
from .base import Slot
from .recurrent import Recurrent, RecurrentKind


class LSTM(Recurrent):
    """LSTM layer; gates i, f, g, o; activations (f, g, h), default (sigmoid, tanh, tanh)."""

    cell = "lstm"
    gates = 4
    default_activations = ("sigmoid", "tanh", "tanh")
    _activation_roles = "f for the i/f/o gates, g for the cell candidate, h for the output"

    def __init__(self, input_size, hidden_size, weights, *, direction="forward", activations=None, clip=None,
                 initial_h=None, initial_c=None, proj_size=0, input_forget=False, name=None):
        super().__init__(input_size, hidden_size, weights, direction=direction, activations=activations,
                         clip=clip, initial_h=initial_h, initial_c=initial_c, proj_size=proj_size,
                         input_forget=input_forget, name=name)

    @classmethod
    def _config_kwargs(cls, config, arrays):
        return dict(proj_size=config["proj_size"], input_forget=config["input_forget"],
                    initial_c=arrays.get("initial_c"))


class LSTMKind(RecurrentKind):
    name, code, spec_class = "lstm", L.OP_LSTM, LSTM
    step, entry, work_size = staticmethod(lstm_step), staticmethod(lstm_entry), staticmethod(lstm_work_size)
    masked_step, masked_entry = staticmethod(lstm_masked_step), staticmethod(lstm_masked_entry)
    fast_step, fast_entry = staticmethod(lstm_fast_step), staticmethod(lstm_fast_entry)
    convention = "gates i,f,g,o (PyTorch order; ONNX i,o,f,c and Keras i,f,c,o are permuted on load)"

    def pack_weights(self, buf, meta, base, layer, w, b_ih, b_hh):
        W, R = w["weight_ih"], w["weight_hh"]                       # (4H, I), (4H, H_out)
        # canonical (4H, I) and (4H, H_out), gates i,f,g,o -> stacked [W^T; R^T] (I + H_out, 4H), same gate order
        meta[base + L.D_M] = buf.add_panels(np.concatenate([W.T, R.T], axis=0))
        meta[base + L.D_B] = buf.add(b_ih + b_hh)                   # biases pre-added
        meta[base + L.D_PEEP] = buf.add(w.get("peephole", np.zeros((3, layer.hidden_size))))   # (3, H): i, f, o
        if layer.proj_size:
            meta[base + L.D_PROJ] = buf.add_panels(w["weight_hr"].T)                       # (H_out, H) -> (H, H_out)

    def flags(self, layer):
        return (L.F_INPUT_FORGET if layer.input_forget else 0) | (L.F_PROJ if layer.proj_size else 0)

    def is_fast(self, layer, acts):
        return not (layer.has_peepholes or layer.input_forget) and super().is_fast(layer, acts)

    def sizes(self, layer):
        H, Ho = layer.hidden_size, layer.output_hidden
        K = layer.input_size + Ho
        # lstm_step's scratch regions per row: XH (K), G (4H), HF (H), PART (max(TILE, 4H))
        return Ho + H, K + 5 * H + max(L.TILE, 4 * H)

    def state_slots(self, layer):
        return super().state_slots(layer) + (Slot("c", layer.output_hidden, layer.hidden_size, layer.num_directions,
                                                layer.initial_c),)

    def sequence_kernel(self, p, d, seq, h0, c0, Y, lens, reverse, hT, cT, work):
        lstm_sequence(seq, p.params, p.meta, d, h0, c0, Y, lens, reverse, hT, cT, work)

    def blas_recurrence(self, p, d, seq, HT, CT, XH, Y, lens, reverse, longest):
        layer, m, P = p.layer, p.meta, p.params
        I, H, Ho = layer.input_size, layer.hidden_size, layer.output_hidden
        B, dt = seq.shape[1], seq.dtype
        M, bias = p.matrix(d, L.D_M, I + Ho, 4 * H), p.view(d, L.D_B, (4 * H,))   # [W^T; R^T]
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


KIND = LSTMKind()
