"""Vanilla (Elman) RNN: one gate, H_t = f(X_t W^T + H_t-1 R^T + b).

Packed per direction (kernels/layout.py): D_M [W^T; R^T] (I + H, H) as panels, D_B the pre-added biases.
A stream's state row is h (H).
"""

import numpy as np

from ..kernels import layout as L
from ..kernels.recurrence import seq_blas_load
from ..kernels.rnn import (rnn_blas_post, rnn_entry, rnn_fast_entry, rnn_fast_step, rnn_masked_entry, rnn_masked_step,
                           rnn_sequence, rnn_step, rnn_work_size)
from .activation import Activation
from .recurrent import Recurrent, RecurrentKind


class RNN(Recurrent):
    """Vanilla (Elman) RNN layer; one gate; activations (f,), default (tanh,)."""

    cell = "rnn"
    gates = 1
    default_activations = ("tanh",)
    _activation_roles = "f"

    def __init__(self, input_size, hidden_size, weights, *, direction="forward", activations=None, clip=None,
                 initial_h=None, name=None):
        super().__init__(input_size, hidden_size, weights, direction=direction, activations=activations,
                         clip=clip, initial_h=initial_h, name=name)


class RNNKind(RecurrentKind):
    name, code, spec_class = "rnn", L.OP_RNN, RNN
    step, entry, work_size = staticmethod(rnn_step), staticmethod(rnn_entry), staticmethod(rnn_work_size)
    masked_step, masked_entry = staticmethod(rnn_masked_step), staticmethod(rnn_masked_entry)
    fast_step, fast_entry = staticmethod(rnn_fast_step), staticmethod(rnn_fast_entry)
    convention = "one gate"

    def pack_weights(self, buf, meta, base, layer, w, b_ih, b_hh):
        # canonical (H, I) and (H, H) -> stacked [W^T; R^T] (I + H, H)
        meta[base + L.D_M] = buf.add_panels(np.concatenate([w["weight_ih"].T, w["weight_hh"].T], axis=0))
        meta[base + L.D_B] = buf.add(b_ih + b_hh)                   # biases pre-added

    def is_fast(self, layer, acts):
        # the branch-free path knows tanh and ReLU (kernels/rnn.py: _rnn_row)
        return layer.clip is None and acts[0] in (Activation("tanh"), Activation("relu"))

    def sizes(self, layer):
        H = layer.hidden_size
        # rnn_step's scratch regions per row: XH (I + H), G (H), PART (max(TILE, H))
        return H, layer.input_size + H + H + max(L.TILE, H)

    def sequence_kernel(self, p, d, seq, h0, c0, Y, lens, reverse, hT, cT, work):
        rnn_sequence(seq, p.params, p.meta, d, h0, Y, lens, reverse, hT, work)

    def blas_recurrence(self, p, d, seq, HT, CT, XH, Y, lens, reverse, longest):
        layer, m, P = p.layer, p.meta, p.params
        I, H = layer.input_size, layer.hidden_size
        M, bias = p.matrix(d, L.D_M, I + H, H), p.view(d, L.D_B, (H,))
        G = np.empty((seq.shape[1], H), seq.dtype)
        for s in range(longest):
            seq_blas_load(XH, seq, HT, lens, s, reverse)
            np.dot(XH, M, out=G)
            rnn_blas_post(G, bias, P, m, d, HT, Y, lens, s, reverse)


KIND = RNNKind()
