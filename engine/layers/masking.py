"""Masking, as Keras defines it: a timestep whose features all equal ``mask_value`` is skipped by the recurrent
layers that take the mask.

The Masking node outputs the mask, one value per timestep (shape (1,)): 1 to keep the timestep, 0 to skip it.
A recurrent node reading it as a second input (``Node("gru", GRU(...), ["x", "mask"])``) leaves its state as it
was on a skipped timestep and outputs what it output the step before (kernels/masking.py); Keras's Masking layer
also zeroes the skipped timesteps' features, which is ``Mul(x, mask)``. A converter wires the mask to every
recurrent layer Keras would propagate it to.
"""

import numpy as np

from ..errors import SpecError
from ..kernels import layout as L
from ..kernels.masking import mask_entry, mask_step
from .base import Kind, Packed
from .validate import _f


class Masking:
    """The mask of a timestep: 1 if any of its features differs from ``mask_value``, else 0."""

    kind = "masking"
    input_size = None

    def __init__(self, mask_value=0.0, name=None):
        self.mask_value, self.name = _f(mask_value, "mask_value", "Masking"), name

    def __repr__(self):
        return f"Masking({self.mask_value:g})"

    def to_config(self):
        return {"kind": self.kind, "name": self.name, "mask_value": self.mask_value}, {}

    @classmethod
    def from_config(cls, config, arrays):
        return cls(config["mask_value"], name=config.get("name"))


class MaskingKind(Kind):
    name, code, spec_class = "masking", L.OP_MASKING, Masking
    step, entry = staticmethod(mask_step), staticmethod(mask_entry)

    def infer(self, layer, inputs, where):
        (edge, shape, dtype), = inputs
        if dtype != "float":
            raise SpecError(f"{where}: Masking reads float frames, but edge {edge!r} carries {dtype} ids")
        return (1,), "float"

    def pack_node(self, layer, shapes, dtype):
        (shape,) = shapes
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        return Packed(layer, self, np.array([layer.mask_value], dtype=dtype), meta, int(np.prod(shape)), 1)


KIND = MaskingKind()
