"""GRU: gates r, z, n (PyTorch's order; ONNX's and Keras's z, r, h are permuted by the converters), with
``linear_before_reset`` kept as a flag (PyTorch and Keras reset_after=True: 1; ONNX's default: 0).

Packed per direction (kernels/layout.py): D_M [W_rz^T; R_rz^T] (I + H, 2H) as panels and D_B their pre-added
biases; the candidate n apart, since r multiplies only its recurrent part: D_WXN W_n^T (I, H), D_RHN R_n^T
(H, H) as panels, D_BXN and D_BHN its two biases. A stream's state row is h (H).
"""

import numpy as np

from ..kernels import layout as L
from ..kernels.gru import (gru_blas_finish, gru_blas_gates, gru_entry, gru_fast_entry, gru_fast_step, gru_masked_entry,
                           gru_masked_step, gru_sequence, gru_step, gru_work_size)
from ..kernels.recurrence import seq_blas_load
from .recurrent import Recurrent, RecurrentKind


class GRU(Recurrent):
    """GRU layer; gates r, z, n; activations (f, g), default (sigmoid, tanh)."""

    cell = "gru"
    gates = 3
    default_activations = ("sigmoid", "tanh")
    _activation_roles = "f for the r/z gates, g for the candidate"

    def __init__(self, input_size, hidden_size, weights, *, direction="forward", activations=None, clip=None,
                 initial_h=None, linear_before_reset=True, name=None):
        super().__init__(input_size, hidden_size, weights, direction=direction, activations=activations,
                         clip=clip, initial_h=initial_h, linear_before_reset=linear_before_reset, name=name)

    @classmethod
    def _config_kwargs(cls, config, arrays):
        return dict(linear_before_reset=config["linear_before_reset"])


class GRUKind(RecurrentKind):
    name, code, spec_class = "gru", L.OP_GRU, GRU
    step, entry, work_size = staticmethod(gru_step), staticmethod(gru_entry), staticmethod(gru_work_size)
    masked_step, masked_entry = staticmethod(gru_masked_step), staticmethod(gru_masked_entry)
    fast_step, fast_entry = staticmethod(gru_fast_step), staticmethod(gru_fast_entry)
    convention = "gates r,z,n (PyTorch order; ONNX z,r,h and Keras z,r,h are permuted on load)"

    def pack_weights(self, buf, meta, base, layer, w, b_ih, b_hh):
        W, R = w["weight_ih"], w["weight_hh"]                       # (3H, I), (3H, H)
        H = layer.hidden_size
        # canonical r,z,n rows -> stacked [W_rz^T; R_rz^T] (I+H, 2H); n kept apart: W_n^T (I,H), R_n^T (H,H)
        meta[base + L.D_M] = buf.add_panels(np.concatenate([W[:2 * H].T, R[:2 * H].T], axis=0))
        meta[base + L.D_B] = buf.add(b_ih[:2 * H] + b_hh[:2 * H])   # r, z biases pre-added
        meta[base + L.D_WXN] = buf.add_panels(W[2 * H:].T)
        meta[base + L.D_RHN] = buf.add_panels(R[2 * H:].T)
        meta[base + L.D_BXN] = buf.add(b_ih[2 * H:])
        meta[base + L.D_BHN] = buf.add(b_hh[2 * H:])                # apart: r multiplies it (lbr=1)

    def flags(self, layer):
        return L.F_LBR if layer.linear_before_reset else 0

    def sizes(self, layer):
        H = layer.hidden_size
        # gru_step's scratch regions per row: XH (I + H), 5H of gates and candidates, PART (max(TILE, 2H))
        return H, layer.input_size + H + 5 * H + max(L.TILE, 2 * H)

    def sequence_kernel(self, p, d, seq, h0, c0, Y, lens, reverse, hT, cT, work):
        gru_sequence(seq, p.params, p.meta, d, h0, Y, lens, reverse, hT, work)

    def blas_recurrence(self, p, d, seq, HT, CT, XH, Y, lens, reverse, longest):
        layer, m, P = p.layer, p.meta, p.params
        I, H = layer.input_size, layer.hidden_size
        B, dt = seq.shape[1], seq.dtype
        M, bias = p.matrix(d, L.D_M, I + H, 2 * H), p.view(d, L.D_B, (2 * H,))
        Wn, Rn = p.matrix(d, L.D_WXN, I, H), p.matrix(d, L.D_RHN, H, H)
        GRZ, GXN, GHN, RH = np.empty((B, 2 * H), dt), np.empty((B, H), dt), np.empty((B, H), dt), np.zeros((B, H), dt)
        lbr = layer.linear_before_reset
        for s in range(longest):
            seq_blas_load(XH, seq, HT, lens, s, reverse)
            np.dot(XH, M, out=GRZ)
            np.dot(XH[:, :I], Wn, out=GXN)
            gru_blas_gates(GRZ, bias, HT, RH, P, m, d, lens, s, reverse)
            np.dot(HT if lbr else RH, Rn, out=GHN)
            gru_blas_finish(GRZ, GXN, GHN, HT, Y, P, m, d, lens, s, reverse)


KIND = GRUKind()
