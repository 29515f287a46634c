"""LayerNorm and BatchNorm over frames (frame-wise: no state, no future).

LayerNorm normalizes over the frame's last axes (``normalized_shape``, as torch.nn.LayerNorm), with or without
its affine weight and bias. BatchNorm is the inference form of torch.nn.BatchNorm1d/2d (running statistics, no
momentum): per channel, the channel being the frame's first axis (torch's (batch, channels, ...) with time taken
out), it is ``x * scale + shift`` with ``scale = weight / sqrt(var + eps)`` and ``shift = bias - mean * scale``
folded at pack time, in float64.
"""

import numpy as np

from ..errors import SpecError
from ..kernels import layout as L
from ..kernels.norm import (F_FRAME_AFFINE, channel_affine_entry, channel_affine_step, l2_norm_entry, l2_norm_step,
                            layer_norm_entry, layer_norm_step)
from .base import Buffer, Kind, Packed
from .validate import _array, _expect_shape, _f


def _float_input(layer, inputs, where):
    (edge, shape, dtype), = inputs
    if dtype != "float":
        raise SpecError(f"{where}: a {type(layer).__name__} reads float frames, but edge {edge!r} carries {dtype} ids")
    return edge, tuple(shape)


class LayerNorm:
    """torch.nn.LayerNorm: over the last ``len(normalized_shape)`` axes of each frame."""

    kind = "layer_norm"
    input_size = None

    def __init__(self, normalized_shape, weight=None, bias=None, eps=1e-5, name=None):
        where = "LayerNorm" + (f" {name!r}" if name else "")
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        if not self.normalized_shape or min(self.normalized_shape) < 1:
            raise SpecError(f"{where}: normalized_shape must be positive sizes, got {normalized_shape!r}")
        self.name = name
        self.weight = _array(weight, "weight", where, len(self.normalized_shape))
        self.bias = _array(bias, "bias", where, len(self.normalized_shape))
        _expect_shape(self.weight, self.normalized_shape, "weight (normalized_shape)", where)
        _expect_shape(self.bias, self.normalized_shape, "bias (normalized_shape)", where)
        self.eps = _f(eps, "eps", where)
        if self.eps <= 0:
            raise SpecError(f"{where}: eps must be > 0, got {self.eps}")

    def __repr__(self):
        affine = "" if self.weight is not None else ", no affine"
        return f"LayerNorm({self.normalized_shape}, eps={self.eps:g}{affine})"

    def to_config(self):
        arrays = {k: v for k, v in (("weight", self.weight), ("bias", self.bias)) if v is not None}
        return {"kind": self.kind, "name": self.name, "normalized_shape": list(self.normalized_shape),
                "eps": self.eps}, arrays

    @classmethod
    def from_config(cls, config, arrays):
        return cls(tuple(config["normalized_shape"]), arrays.get("weight"), arrays.get("bias"), config["eps"],
                   name=config.get("name"))


class LayerNormKind(Kind):
    name, code, spec_class = "layer_norm", L.OP_LAYER_NORM, LayerNorm
    step, entry = staticmethod(layer_norm_step), staticmethod(layer_norm_entry)

    def infer(self, layer, inputs, where):
        edge, shape = _float_input(layer, inputs, where)
        k = len(layer.normalized_shape)
        if shape[len(shape) - k:] != layer.normalized_shape or len(shape) < k:
            raise SpecError(f"{where}: LayerNorm over the last axes {layer.normalized_shape}, but edge {edge!r} "
                            f"carries frames of shape {shape}")
        return shape, "float"

    def pack_node(self, layer, shapes, dtype):
        (shape,) = shapes
        size, inner = int(np.prod(shape)), int(np.prod(layer.normalized_shape))
        buf = Buffer()
        buf.add(np.array([layer.eps]))
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        meta[L.M_DIR + L.D_W] = buf.add(layer.weight) if layer.weight is not None else -1
        meta[L.M_DIR + L.D_BIAS] = buf.add(layer.bias) if layer.bias is not None else -1
        meta[L.M_H], meta[L.M_D] = size // inner, inner
        return Packed(layer, self, buf.finish(dtype), meta, size, size)


class BatchNorm:
    """torch.nn.BatchNorm1d/2d in inference: running ``mean`` and ``var`` per channel (the frame's first axis),
    optional affine ``weight`` and ``bias``."""

    kind = "batch_norm"
    input_size = None

    def __init__(self, mean, var, weight=None, bias=None, eps=1e-5, name=None):
        where = "BatchNorm" + (f" {name!r}" if name else "")
        self.name = name
        self.mean = _array(mean, "running_mean", where, 1)
        self.var = _array(var, "running_var", where, 1)
        C = self.mean.shape[0]
        _expect_shape(self.var, (C,), "running_var (channels,)", where)
        if np.any(self.var < 0):
            raise SpecError(f"{where}: running_var holds negative values")
        self.weight = _array(weight, "weight", where, 1)
        self.bias = _array(bias, "bias", where, 1)
        _expect_shape(self.weight, (C,), "weight (channels,)", where)
        _expect_shape(self.bias, (C,), "bias (channels,)", where)
        self.eps = _f(eps, "eps", where)
        if self.eps <= 0:
            raise SpecError(f"{where}: eps must be > 0, got {self.eps}")

    @property
    def channels(self):
        return self.mean.shape[0]

    def folded(self):
        """(scale, shift) per channel in float64: y = x * scale + shift."""
        scale = 1.0 / np.sqrt(np.asarray(self.var, np.float64) + self.eps)
        if self.weight is not None:
            scale = scale * self.weight
        shift = -np.asarray(self.mean, np.float64) * scale
        if self.bias is not None:
            shift = shift + self.bias
        return scale, shift

    def __repr__(self):
        return f"BatchNorm({self.channels}, eps={self.eps:g})"

    def to_config(self):
        arrays = {"running_mean": self.mean, "running_var": self.var}
        arrays.update({k: v for k, v in (("weight", self.weight), ("bias", self.bias)) if v is not None})
        return {"kind": self.kind, "name": self.name, "eps": self.eps}, arrays

    @classmethod
    def from_config(cls, config, arrays):
        return cls(arrays["running_mean"], arrays["running_var"], arrays.get("weight"), arrays.get("bias"),
                   config["eps"], name=config.get("name"))


class PerChannelKind(Kind):
    """A frame-wise kind over frames of (channels, ...), the layer's ``channels`` (None: any), shape kept."""

    def infer(self, layer, inputs, where):
        edge, shape = _float_input(layer, inputs, where)
        if layer.channels is not None and (not shape or shape[0] != layer.channels):
            raise SpecError(f"{where}: {type(layer).__name__} of {layer.channels} channels (the frame's first axis), "
                            f"but edge {edge!r} carries frames of shape {shape}")
        return shape, "float"


class BatchNormKind(PerChannelKind):
    name, code, spec_class = "batch_norm", L.OP_CHANNEL_AFFINE, BatchNorm
    step, entry = staticmethod(channel_affine_step), staticmethod(channel_affine_entry)

    def channel_affine(self, layer):
        return layer.folded()

    def pack_node(self, layer, shapes, dtype):
        (shape,) = shapes
        size = int(np.prod(shape))
        scale, shift = layer.folded()
        buf = Buffer()
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        meta[L.M_DIR + L.D_W] = buf.add(scale)
        meta[L.M_DIR + L.D_BIAS] = buf.add(shift)
        meta[L.M_H], meta[L.M_D] = layer.channels, size // layer.channels
        return Packed(layer, self, buf.finish(dtype), meta, size, size)


class GroupNorm:
    """torch.nn.GroupNorm: the frame's channels (its first axis) in ``groups`` groups, each normalized over its
    channels and positions, then an affine per channel. ``InstanceNorm(C)`` is GroupNorm(C, C) (torch's
    InstanceNorm1d/2d without running statistics, the default)."""

    kind = "group_norm"
    input_size = None

    def __init__(self, groups, channels, weight=None, bias=None, eps=1e-5, name=None):
        where = "GroupNorm" + (f" {name!r}" if name else "")
        self.groups, self.channels, self.name = int(groups), int(channels), name
        if self.groups < 1 or self.channels < 1 or self.channels % self.groups:
            raise SpecError(f"{where}: {groups} groups must divide {channels} channels")
        self.weight = _array(weight, "weight", where, 1)
        self.bias = _array(bias, "bias", where, 1)
        _expect_shape(self.weight, (self.channels,), "weight (channels,)", where)
        _expect_shape(self.bias, (self.channels,), "bias (channels,)", where)
        self.eps = _f(eps, "eps", where)
        if self.eps <= 0:
            raise SpecError(f"{where}: eps must be > 0, got {self.eps}")

    def __repr__(self):
        return f"GroupNorm({self.groups}, {self.channels}, eps={self.eps:g})"

    def to_config(self):
        arrays = {k: v for k, v in (("weight", self.weight), ("bias", self.bias)) if v is not None}
        return {"kind": self.kind, "name": self.name, "groups": self.groups, "channels": self.channels,
                "eps": self.eps}, arrays

    @classmethod
    def from_config(cls, config, arrays):
        return cls(config["groups"], config["channels"], arrays.get("weight"), arrays.get("bias"), config["eps"],
                   name=config.get("name"))


def InstanceNorm(channels, weight=None, bias=None, eps=1e-5, name=None):
    """torch.nn.InstanceNorm1d/2d (no running statistics): each channel normalized over its own positions."""
    return GroupNorm(channels, channels, weight, bias, eps, name)


class GroupNormKind(PerChannelKind):
    name, code, spec_class = "group_norm", L.OP_GROUP_NORM, GroupNorm
    step, entry = staticmethod(layer_norm_step), staticmethod(layer_norm_entry)

    def pack_node(self, layer, shapes, dtype):
        (shape,) = shapes
        size = int(np.prod(shape))
        per_channel = size // layer.channels
        buf = Buffer()
        buf.add(np.array([layer.eps]))
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        meta[L.M_DIR + L.D_W] = buf.add(np.repeat(layer.weight, per_channel)) if layer.weight is not None else -1
        meta[L.M_DIR + L.D_BIAS] = buf.add(np.repeat(layer.bias, per_channel)) if layer.bias is not None else -1
        meta[L.M_H], meta[L.M_D], meta[L.M_FLAGS] = layer.groups, size // layer.groups, F_FRAME_AFFINE
        return Packed(layer, self, buf.finish(dtype), meta, size, size)


class L2Norm:
    """x / max(||x||_2, eps) along one axis of the frame (torch.nn.functional.normalize; Keras UnitNormalization)."""

    kind = "l2_norm"
    input_size = None

    def __init__(self, axis=-1, eps=1e-12, name=None):
        self.axis, self.name = int(axis), name
        self.eps = _f(eps, "eps", "L2Norm")

    def __repr__(self):
        return f"L2Norm(axis={self.axis})"

    def to_config(self):
        return {"kind": self.kind, "name": self.name, "axis": self.axis, "eps": self.eps}, {}

    @classmethod
    def from_config(cls, config, arrays):
        return cls(config["axis"], config["eps"], name=config.get("name"))


class L2NormKind(Kind):
    name, code, spec_class = "l2_norm", L.OP_L2_NORM, L2Norm
    step, entry = staticmethod(l2_norm_step), staticmethod(l2_norm_entry)

    def infer(self, layer, inputs, where):
        edge, shape = _float_input(layer, inputs, where)
        if not -len(shape) <= layer.axis < len(shape):
            raise SpecError(f"{where}: L2Norm along axis {layer.axis}, but edge {edge!r} carries frames of shape "
                            f"{shape}")
        return shape, "float"

    def pack_node(self, layer, shapes, dtype):
        (shape,) = shapes
        axis = layer.axis % len(shape)
        size = int(np.prod(shape))
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        meta[L.M_H], meta[L.M_HO], meta[L.M_D] = (int(np.prod(shape[:axis])), shape[axis],
                                                  int(np.prod(shape[axis + 1:])))
        return Packed(layer, self, np.array([layer.eps], dtype=dtype), meta, size, size)


LAYER_NORM = LayerNormKind()
BATCH_NORM = BatchNormKind()
GROUP_NORM = GroupNormKind()
L2_NORM = L2NormKind()
