"""Normalize: y = (x - mean) * scale per feature. Packed as D_MEAN and D_SCALE."""

import numpy as np

from ..kernels import layout as L
from ..kernels.normalize import normalize_entry, normalize_step
from ..spec import Normalize
from .base import Buffer, Kind, Packed


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
