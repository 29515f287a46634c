"""Dense: y = x W^T + b, W (out, in) as torch.nn.Linear stores it. Packed as given (D_W, and D_BIAS or -1)."""

import numpy as np

from ..kernels import layout as L
from ..kernels.dense import dense_entry, dense_step
from ..errors import SpecError
from .base import Buffer, Kind, Packed
from .validate import _array, _expect_shape


class Dense:
    """y = x @ weight.T + bias, with ``weight`` (out_features, in_features) as in torch.nn.Linear."""

    kind = "dense"

    def __init__(self, weight, bias=None, name=None):
        where = "Dense layer" + (f" {name!r}" if name else "")
        self.name = name
        self.weight = _array(weight, "weight", where, 2)
        self.bias = _array(bias, "bias", where, 1)
        _expect_shape(self.bias, (self.weight.shape[0],), "bias (out_features,)", where)

    @property
    def in_features(self):
        return self.weight.shape[1]

    input_size = in_features

    @property
    def out_features(self):
        return self.weight.shape[0]

    def output_size(self, input_size=None):
        return self.out_features

    def validate(self, input_size, where):
        if input_size != self.in_features:
            raise SpecError(f"{where}: Dense weight has shape {self.weight.shape} (out, in) and expects "
                            f"{self.in_features} inputs, but the layer before it outputs {input_size}")
        return self.out_features

    def __repr__(self):
        return f"Dense({self.in_features} -> {self.out_features}{'' if self.bias is not None else ', no bias'})"

    def to_config(self):
        arrays = {"weight": self.weight}
        if self.bias is not None:
            arrays["bias"] = self.bias
        return {"kind": self.kind, "name": self.name}, arrays

    @classmethod
    def from_config(cls, config, arrays):
        return cls(arrays["weight"], arrays.get("bias"), name=config.get("name"))


class DenseKind(Kind):
    name, code, spec_class = "dense", L.OP_DENSE, Dense
    takes_epilogue = True
    step, entry = staticmethod(dense_step), staticmethod(dense_entry)

    def infer(self, layer, inputs, where):
        """1-D frames (in,) -> (out,); a frame of (..., in) projects each of its vectors, as torch's Linear."""
        (edge, shape, dtype), = inputs
        if dtype == "float" and len(shape) > 1:
            if shape[-1] != layer.in_features:
                raise SpecError(f"{where}: Dense weight has shape {layer.weight.shape} (out, in) and expects "
                                f"{layer.in_features} inputs on the last axis, but edge {edge!r} carries frames of "
                                f"shape {shape}")
            return tuple(shape[:-1]) + (layer.out_features,), "float"
        return super().infer(layer, inputs, where)

    def pack_node(self, layer, shapes, dtype):
        (shape,) = shapes
        outer = int(np.prod(shape[:-1]))
        buf = Buffer()
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        meta[L.M_DIR + L.D_W] = buf.add(layer.weight)          # (out, in) as given: a dot product per output
        meta[L.M_DIR + L.D_BIAS] = buf.add(layer.bias) if layer.bias is not None else -1
        meta[L.M_H] = outer if len(shape) > 1 else 0   # (0: a 1-D frame, the meta chains always had)
        return Packed(layer, self, buf.finish(dtype), meta, outer * layer.in_features, outer * layer.out_features)

    def fold_affine(self, layer, scale, shift, out_shape):
        if len(out_shape) != 1:   # on N-d frames the channel axis (0) is not the one Dense writes (the last)
            return None
        bias = np.zeros(layer.out_features) if layer.bias is None else np.asarray(layer.bias, np.float64)
        return Dense(np.asarray(layer.weight, np.float64) * scale[:, None], bias * scale + shift, name=layer.name)

    def run(self, p, seq, lengths, states_in, states_out, prefix):
        """All T * B frames (and each frame's vectors) as one BLAS GEMM."""
        T, B = seq.shape[:2]
        nin, nout = p.layer.in_features, p.layer.out_features
        y = seq.reshape(-1, nin) @ p.view(0, L.D_W, (nout, nin)).T
        if p.meta[L.M_DIR + L.D_BIAS] >= 0:
            y += p.view(0, L.D_BIAS, (nout,))
        return y.reshape(T, B, p.out_size)


KIND = DenseKind()
