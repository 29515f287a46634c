"""The room of the test-only Scale kind: its ModelSpec class and its Kind."""

import numpy as np

from engine.errors import SpecError
from engine.kernels import layout as L
from engine.layers.base import Kind, Packed

from .kernel import scale_entry, scale_step

OP_SCALE = 99   # a code no rnnjit kind uses


class Scale:
    """y = x * s per feature: the ModelSpec layer."""

    kind = "scale"

    def __init__(self, s, name=None):
        self.s, self.name = np.asarray(s, np.float64), name
        self.input_size = self.s.shape[0]

    def output_size(self, input_size=None):
        return self.input_size

    def validate(self, input_size, where):
        if input_size != self.input_size:
            raise SpecError(f"{where}: Scale has {self.input_size} features, but its input has {input_size}")
        return self.input_size

    def to_config(self):
        return {"kind": self.kind, "name": self.name}, {"s": self.s}

    @classmethod
    def from_config(cls, config, arrays):
        return cls(arrays["s"], name=config.get("name"))

    def __repr__(self):
        return f"Scale({self.input_size})"


class ScaleKind(Kind):
    name, code, spec_class = "scale", OP_SCALE, Scale
    step, entry = staticmethod(scale_step), staticmethod(scale_entry)

    def pack(self, layer, in_size, dtype):
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        return Packed(layer, self, np.asarray(layer.s, dtype), meta, layer.input_size, layer.input_size)


KIND = ScaleKind()
