"""Normalize: y = (x - mean) * scale per feature. Packed as D_MEAN and D_SCALE."""

import numpy as np

from ..kernels import layout as L
from ..kernels.normalize import normalize_entry, normalize_step
from ..errors import SpecError
from .base import Buffer, Kind, Packed
from .validate import _array, _expect_shape


class Normalize:
    """Affine input normalization, y = (x - mean) * scale, per feature (as sensor pipelines standardize)."""

    kind = "normalize"

    def __init__(self, mean, scale, name=None):
        where = "Normalize layer" + (f" {name!r}" if name else "")
        self.name = name
        self.mean = _array(mean, "mean", where, 1)
        self.scale = _array(scale, "scale", where, 1)
        _expect_shape(self.scale, self.mean.shape, "scale (same as mean)", where)

    @property
    def size(self):
        return self.mean.shape[0]

    input_size = size

    def output_size(self, input_size=None):
        return self.size

    def validate(self, input_size, where):
        if input_size != self.size:
            raise SpecError(f"{where}: Normalize has {self.size} features, but its input has {input_size}")
        return self.size

    def __repr__(self):
        return f"Normalize({self.size})"

    def to_config(self):
        return {"kind": self.kind, "name": self.name}, {"mean": self.mean, "scale": self.scale}

    @classmethod
    def from_config(cls, config, arrays):
        return cls(arrays["mean"], arrays["scale"], name=config.get("name"))


class NormalizeKind(Kind):
    name, code, spec_class = "normalize", L.OP_NORM, Normalize
    step, entry = staticmethod(normalize_step), staticmethod(normalize_entry)

    def pack(self, layer, in_size, dtype):
        buf = Buffer()
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        meta[L.M_DIR + L.D_MEAN] = buf.add(layer.mean)
        meta[L.M_DIR + L.D_SCALE] = buf.add(layer.scale)
        return Packed(layer, self, buf.finish(dtype), meta, layer.size, layer.size)


KIND = NormalizeKind()
