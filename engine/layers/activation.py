"""Activation: a function applied elementwise, or softmax / log-softmax over the features. Packed as its code
(meta[M_CODE], kernels/activations.py's CODES) and params [alpha, beta]."""

import numpy as np

from ..kernels import layout as L
from ..kernels.activations import CODES, activation_entry, activation_step
from ..spec import Activation
from .base import Kind, Packed


class ActivationKind(Kind):
    name, code, spec_class = "activation", L.OP_ACT, Activation
    step, entry = staticmethod(activation_step), staticmethod(activation_entry)

    def pack(self, layer, in_size, dtype):
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        meta[L.M_CODE] = CODES[layer.name]
        return Packed(layer, self, np.array([layer.alpha, layer.beta], dtype=dtype), meta, in_size, in_size)


KIND = ActivationKind()
