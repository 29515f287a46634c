"""Dense: y = x W^T + b, W (out, in) as torch.nn.Linear stores it. Packed as given (D_W, and D_BIAS or -1)."""

import numpy as np

from ..kernels import layout as L
from ..kernels.dense import dense_entry, dense_step
from ..spec import Dense
from .base import Buffer, Kind, Packed


class DenseKind(Kind):
    name, code, spec_class = "dense", L.OP_DENSE, Dense
    step, entry = staticmethod(dense_step), staticmethod(dense_entry)

    def pack(self, layer, in_size, dtype):
        buf = Buffer()
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        meta[L.M_DIR + L.D_W] = buf.add(layer.weight)          # (out, in) as given: a dot product per output
        meta[L.M_DIR + L.D_BIAS] = buf.add(layer.bias) if layer.bias is not None else -1
        return Packed(layer, self, buf.finish(dtype), meta, layer.in_features, layer.out_features)

    def run(self, p, seq, lengths, states_in, states_out, prefix):
        """All T * B frames as one BLAS GEMM."""
        T, B = seq.shape[:2]
        y = seq.reshape(T * B, p.in_size) @ p.view(0, L.D_W, (p.out_size, p.in_size)).T
        if p.meta[L.M_DIR + L.D_BIAS] >= 0:
            y += p.view(0, L.D_BIAS, (p.out_size,))
        return y.reshape(T, B, p.out_size)


KIND = DenseKind()
