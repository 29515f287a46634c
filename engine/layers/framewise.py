"""Frame-wise convolution and pooling over a frame's own axes, and PReLU (frame-wise: no state, no future).

A frame here is (channels, *spatial), PyTorch's (batch, channels, *spatial) per timestep: a spectrogram frame
(channels, frequency) convolved along frequency is Conv1d-like, (channels, height, width) Conv2d-like. Time is not
one of these axes (a convolution along time is TemporalConv1d). ``FrameConv`` takes torch's weight
(C_out, C_in / groups, *kernel) with stride, padding (an int, or (before, after) per axis), dilation and groups;
``Pool`` is max or average pooling (torch's MaxPool/AvgPool: kernel, stride (default: the kernel), padding,
``count_include_pad``), or global over all spatial axes. Both are packed as index maps of each output's
receptive field (kernels/framewise.py), worked out with numpy once.
"""

import numpy as np

from ..errors import SpecError
from ..kernels import layout as L
from ..kernels.framewise import (F_DIRECT_1D, F_GEMM, M_CONV_CIN, M_CONV_DIL, M_CONV_F, M_CONV_K, M_CONV_PL, POOL_AVG,
                                 POOL_AVG_VALID, POOL_MAX, frame_conv_entry, frame_conv_step, pool_entry, pool_step,
                                 prelu_entry, prelu_step)
from .base import Buffer, Kind, Packed
from .norm import PerChannelKind
from .validate import _array, _expect_shape

GEMM_MIN_OUTPUTS = 16   # output channels per group from which a frame convolution takes im2col + gemm_acc


def _per_axis(value, n, what, where, minimum):
    """An int for every axis, or a tuple of n ints."""
    values = [value] * n if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else list(value)
    if len(values) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum
                                   for v in values):
        raise SpecError(f"{where}: {what} must be an int >= {minimum} or {n} of them, got {value!r}")
    return [int(v) for v in values]


def _pads(padding, n, where):
    """(before, after) per axis, from an int, a tuple of n ints (both sides) or n (before, after) pairs."""
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        padding = [padding] * n
    padding = list(padding)
    if len(padding) != n:
        raise SpecError(f"{where}: padding must give {n} axes, got {padding!r}")
    out = []
    for p in padding:
        pair = (p, p) if isinstance(p, (int, np.integer)) else tuple(p)
        if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 0 for v in pair):
            raise SpecError(f"{where}: padding must be ints >= 0 or (before, after) pairs, got {padding!r}")
        out.append([int(pair[0]), int(pair[1])])
    return out


def _flat_index(spatial, kernel, outs, per_axis):
    """Per output position (C order) and tap, the flat spatial index read, or -1: (positions, taps). ``per_axis``:
    for each axis, the (outs[d], kernel[d]) input positions and whether each is a real input."""
    n = len(spatial)
    mult = [int(np.prod(spatial[d + 1:])) for d in range(n)]
    flat = np.zeros(list(outs) + list(kernel), np.int64)
    valid = np.ones(list(outs) + list(kernel), bool)
    for d, (pos, ok) in enumerate(per_axis):
        shape = [1] * (2 * n)
        shape[d], shape[n + d] = outs[d], kernel[d]
        flat = flat + pos.reshape(shape) * mult[d]
        valid = valid & ok.reshape(shape) & (pos >= 0).reshape(shape) & (pos < spatial[d]).reshape(shape)
    return np.where(valid, flat, -1).reshape(int(np.prod(outs)), int(np.prod(kernel)))


def window_index(spatial, kernel, stride, pads, dilation):
    """For a window sliding over ``spatial``: the output shape and, per output position (C order) and tap, the
    flat spatial index it reads, or -1 in the padding: (positions, taps)."""
    n = len(spatial)
    outs = [(spatial[d] + pads[d][0] + pads[d][1] - dilation[d] * (kernel[d] - 1) - 1) // stride[d] + 1
            for d in range(n)]
    if min(outs) < 1:
        return tuple(outs), None
    per_axis = []
    for d in range(n):
        pos = np.arange(outs[d])[:, None] * stride[d] - pads[d][0] + np.arange(kernel[d])[None, :] * dilation[d]
        per_axis.append((pos, np.ones(pos.shape, bool)))
    return tuple(outs), _flat_index(spatial, kernel, outs, per_axis)


def transpose_window_index(spatial, kernel, stride, pads, dilation, output_padding):
    """The same as ``window_index`` for a transposed convolution: output position p reads input position
    q = (p + pad_before - tap * dilation) / stride where that is a whole number inside the input."""
    n = len(spatial)
    outs = [(spatial[d] - 1) * stride[d] - pads[d][0] - pads[d][1] + dilation[d] * (kernel[d] - 1)
            + output_padding[d] + 1 for d in range(n)]
    if min(outs) < 1:
        return tuple(outs), None
    per_axis = []
    for d in range(n):
        num = np.arange(outs[d])[:, None] + pads[d][0] - np.arange(kernel[d])[None, :] * dilation[d]
        per_axis.append((num // stride[d], num % stride[d] == 0))
    return tuple(outs), _flat_index(spatial, kernel, outs, per_axis)


def _frame_of_channels(layer, inputs, where, channels=None):
    (edge, shape, dtype), = inputs
    if dtype != "float":
        raise SpecError(f"{where}: {type(layer).__name__} reads float frames, but edge {edge!r} carries {dtype} ids")
    if channels is not None and (not shape or shape[0] != channels):
        raise SpecError(f"{where}: {type(layer).__name__} takes frames of {channels} channels (the first axis), but "
                        f"edge {edge!r} carries frames of shape {shape}")
    return edge, tuple(shape)


class FrameConv:
    """A convolution over the frame's axes after the first (channels): torch's Conv1d/Conv2d/Conv3d applied to
    each timestep's frame."""

    kind = "frame_conv"
    input_size = None

    def __init__(self, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1, name=None):
        where = "FrameConv" + (f" {name!r}" if name else "")
        w = np.asarray(weight)
        if w.ndim < 3:
            raise SpecError(f"{where}: weight must be (out_channels, in_channels / groups, *kernel), got shape "
                            f"{w.shape}")
        self.name = name
        self.weight = _array(weight, "weight", where, w.ndim)
        self.bias = _array(bias, "bias", where, 1)
        n = w.ndim - 2
        _expect_shape(self.bias, (w.shape[0],), "bias (out_channels,)", where)
        self.stride = _per_axis(stride, n, "stride", where, 1)
        self.dilation = _per_axis(dilation, n, "dilation", where, 1)
        self.padding = _pads(padding, n, where)
        self.groups = int(groups)
        if self.groups < 1 or w.shape[0] % self.groups:
            raise SpecError(f"{where}: groups={groups} must divide the {w.shape[0]} output channels")

    @property
    def in_channels(self):
        return self.weight.shape[1] * self.groups

    def __repr__(self):
        return (f"FrameConv({self.in_channels} -> {self.weight.shape[0]}, kernel={tuple(self.weight.shape[2:])}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, groups={self.groups})")

    def to_config(self):
        arrays = {"weight": self.weight}
        if self.bias is not None:
            arrays["bias"] = self.bias
        return {"kind": self.kind, "name": self.name, "stride": self.stride, "padding": self.padding,
                "dilation": self.dilation, "groups": self.groups}, arrays

    @classmethod
    def from_config(cls, config, arrays):
        return cls(arrays["weight"], arrays.get("bias"), stride=config["stride"], padding=config["padding"],
                   dilation=config["dilation"], groups=config["groups"], name=config.get("name"))


class FrameConvKind(Kind):
    name, code, spec_class = "frame_conv", L.OP_FRAME_CONV, FrameConv
    takes_epilogue = True
    step, entry = staticmethod(frame_conv_step), staticmethod(frame_conv_entry)
    direct_ok = True   # a 1-D, stride-1, groups-1 convolution may take the direct loop

    def _gather_weight(self, layer):
        return np.asarray(layer.weight).reshape(layer.weight.shape[0], -1)

    def fold_affine(self, layer, scale, shift, out_shape):
        if type(layer) is not FrameConv:   # (a transposed convolution's weights are laid out by input channel)
            return None
        cout = layer.weight.shape[0]
        bias = np.zeros(cout) if layer.bias is None else np.asarray(layer.bias, np.float64)
        w = np.asarray(layer.weight, np.float64) * scale.reshape((cout,) + (1,) * (layer.weight.ndim - 1))
        return FrameConv(w, bias * scale + shift, stride=layer.stride, padding=layer.padding,
                         dilation=layer.dilation, groups=layer.groups, name=layer.name)

    def _window(self, layer, spatial, kernel):
        return window_index(spatial, kernel, layer.stride, layer.padding, layer.dilation)

    def _cout(self, layer):
        return layer.weight.shape[0]

    def _index(self, layer, shape, where="node"):
        spatial = shape[1:]
        kernel = list(layer.weight.shape[2:])
        if len(spatial) != len(kernel):
            raise SpecError(f"{where}: a kernel of {len(kernel)} axes over frames of shape {shape} (channels and "
                            f"{len(spatial)} axes)")
        outs, flat = self._window(layer, spatial, kernel)
        if flat is None:
            raise SpecError(f"{where}: the kernel {tuple(kernel)} (dilation {layer.dilation}, padding "
                            f"{layer.padding}) does not fit in frames of shape {shape}")
        G, cin_g = layer.groups, layer.in_channels // layer.groups
        size = int(np.prod(spatial))
        chan = (np.arange(G)[:, None] * cin_g + np.arange(cin_g)[None, :]) * size           # (G, cin_g)
        idx = np.where(flat[None, :, None, :] >= 0, chan[:, None, :, None] + flat[None, :, None, :], -1)
        return outs, idx.reshape(G * flat.shape[0], cin_g * flat.shape[1])

    def infer(self, layer, inputs, where):
        edge, shape = _frame_of_channels(layer, inputs, where, layer.in_channels)
        outs, _ = self._index(layer, shape, f"{where} on edge {edge!r}")
        return (self._cout(layer),) + outs, "float"

    def pack_node(self, layer, shapes, dtype):
        (shape,) = shapes
        outs, idx = self._index(layer, shape)
        cout = self._cout(layer)
        G, npos, window = layer.groups, int(np.prod(outs)), idx.shape[1]
        cout_g = self._cout(layer) // G
        # many outputs per group: im2col and the register-tiled product (kernels/framewise.py); else the direct
        # loop for a 1-D stride-1 convolution over long frames, else the index-map loop
        gemm = cout_g >= GEMM_MIN_OUTPUTS
        direct = not gemm and len(shape) == 2 and layer.groups == 1 and layer.stride == [1] and self.direct_ok
        buf = Buffer()
        meta = np.zeros(L.META_LEN + (0 if direct else idx.size), dtype=np.int64)
        weight = self._gather_weight(layer)
        if gemm:     # (C_out, window) -> per group (window, C_out / G), the groups stacked: (G * window, C_out / G)
            meta[L.M_DIR + L.D_W] = buf.add_panels(np.concatenate(
                [np.asarray(weight[g * cout_g:(g + 1) * cout_g], np.float64).T for g in range(G)]))
        else:
            meta[L.M_DIR + L.D_W] = buf.add(weight)
        meta[L.M_DIR + L.D_BIAS] = buf.add(layer.bias) if layer.bias is not None else -1
        meta[L.M_H], meta[L.M_HO], meta[L.M_D] = idx.shape[1], int(np.prod(outs)), layer.groups
        scratch = 0
        if gemm:
            width = -(-cout_g // L.PANEL) * L.PANEL
            meta[L.M_FLAGS] = F_GEMM
            meta[L.META_LEN:] = idx.ravel()
            scratch = npos * window + npos * width + 6 * L.TILE
        elif direct:   # the direct loop over a zero-padded copy of the frame (kernels/framewise.py)
            (pl, pr), = layer.padding
            meta[L.M_FLAGS] = F_DIRECT_1D
            meta[M_CONV_CIN], meta[M_CONV_F], meta[M_CONV_K] = shape[0], shape[1], layer.weight.shape[2]
            meta[M_CONV_DIL], meta[M_CONV_PL] = layer.dilation[0], pl
            scratch = shape[0] * (shape[1] + pl + pr)
        else:
            meta[L.META_LEN:] = idx.ravel()
        return Packed(layer, self, buf.finish(dtype), meta, int(np.prod(shape)), cout * int(np.prod(outs)),
                      scratch_size=scratch)


class FrameConvTranspose(FrameConv):
    """A transposed convolution over the frame's axes after the first: torch's ConvTranspose1d/2d per timestep,
    weight (C_in, C_out / groups, *kernel) as torch stores it; stride, padding, output_padding, dilation, groups."""

    kind = "frame_conv_transpose"

    def __init__(self, weight, bias=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1, name=None):
        w = np.asarray(weight)
        if w.ndim < 3 or w.shape[0] % max(int(groups), 1):
            raise SpecError(f"FrameConvTranspose: weight must be (in_channels, out_channels / groups, *kernel) with "
                            f"groups={groups} dividing in_channels, got shape {w.shape}")
        super().__init__(weight, None, stride=stride, padding=padding, dilation=dilation, groups=1, name=name)
        self.groups = int(groups)
        self.output_padding = _per_axis(output_padding, w.ndim - 2, "output_padding", "FrameConvTranspose", 0)
        if any(op >= max(s, d) for op, s, d in zip(self.output_padding, self.stride, self.dilation)):
            raise SpecError(f"FrameConvTranspose: output_padding {self.output_padding} must be smaller than the stride "
                            f"or the dilation")
        self.bias = _array(bias, "bias", "FrameConvTranspose", 1)
        _expect_shape(self.bias, (self.out_channels,), "bias (out_channels,)", "FrameConvTranspose")

    @property
    def in_channels(self):
        return self.weight.shape[0]

    @property
    def out_channels(self):
        return self.weight.shape[1] * self.groups

    def __repr__(self):
        return (f"FrameConvTranspose({self.in_channels} -> {self.out_channels}, kernel={tuple(self.weight.shape[2:])}, "
                f"stride={self.stride}, padding={self.padding}, output_padding={self.output_padding}, "
                f"dilation={self.dilation}, groups={self.groups})")

    def to_config(self):
        config, arrays = super().to_config()
        config["output_padding"] = self.output_padding
        return config, arrays

    @classmethod
    def from_config(cls, config, arrays):
        return cls(arrays["weight"], arrays.get("bias"), stride=config["stride"], padding=config["padding"],
                   output_padding=config["output_padding"], dilation=config["dilation"], groups=config["groups"],
                   name=config.get("name"))

    def gather_weight(self):
        """(C_out, C_in / groups * taps): the weights each output reads, in the index map's order."""
        G, cin_g, cout_g = self.groups, self.in_channels // self.groups, self.weight.shape[1]
        w = np.asarray(self.weight, np.float64).reshape((G, cin_g, cout_g, -1))      # (G, cin_g, cout_g, taps)
        return w.transpose(0, 2, 1, 3).reshape(self.out_channels, -1)


class FrameConvTransposeKind(FrameConvKind):
    """The transposed convolution through the convolution's gather kernel: its own index map and weight order."""

    name, code, spec_class = "frame_conv_transpose", L.OP_FRAME_CONV_T, FrameConvTranspose
    direct_ok = False

    def _window(self, layer, spatial, kernel):
        return transpose_window_index(spatial, kernel, layer.stride, layer.padding, layer.dilation,
                                      layer.output_padding)

    def _cout(self, layer):
        return layer.out_channels

    def _gather_weight(self, layer):
        return layer.gather_weight()


class Pool:
    """Max or average pooling over the frame's axes after the first (channels), as torch's MaxPool/AvgPool on
    each timestep's frame; ``global_pool=True`` pools each channel's whole frame to one value (shape (C, 1, ...))."""

    kind = "pool"
    input_size = None
    MODES = ("max", "avg")

    def __init__(self, mode, kernel=None, stride=None, padding=0, count_include_pad=True, global_pool=False,
                 name=None):
        where = "Pool" + (f" {name!r}" if name else "")
        if mode not in self.MODES:
            raise SpecError(f"{where}: mode must be one of {self.MODES}, got {mode!r}")
        if kernel is None and not global_pool:
            raise SpecError(f"{where}: give a kernel size, or global_pool=True")
        self.mode, self.global_pool, self.name = mode, bool(global_pool), name
        self.kernel = None if kernel is None else [int(k) for k in np.atleast_1d(kernel)]
        self.stride = None if stride is None else [int(k) for k in np.atleast_1d(stride)]
        self.padding = padding if isinstance(padding, (int, np.integer)) else [
            p if isinstance(p, (int, np.integer)) else list(p) for p in padding]
        self.count_include_pad = bool(count_include_pad)

    def __repr__(self):
        if self.global_pool:
            return f"Pool({self.mode!r}, global)"
        return f"Pool({self.mode!r}, kernel={self.kernel}, stride={self.stride or self.kernel}, padding={self.padding})"

    def to_config(self):
        return {"kind": self.kind, "name": self.name, "mode": self.mode, "kernel": self.kernel, "stride": self.stride,
                "padding": self.padding, "count_include_pad": self.count_include_pad,
                "global_pool": self.global_pool}, {}

    @classmethod
    def from_config(cls, config, arrays):
        return cls(config["mode"], config["kernel"], config["stride"], config["padding"], config["count_include_pad"],
                   config["global_pool"], name=config.get("name"))


class PoolKind(Kind):
    name, code, spec_class = "pool", L.OP_POOL, Pool
    step, entry = staticmethod(pool_step), staticmethod(pool_entry)

    def _index(self, layer, shape, where="node"):
        spatial = list(shape[1:])
        if not spatial:
            raise SpecError(f"{where}: pooling needs frames of (channels, *axes), got frames of shape {shape}")
        n = len(spatial)
        if layer.global_pool:
            kernel, stride, pads = spatial, [1] * n, [[0, 0]] * n
        else:
            kernel = _per_axis(layer.kernel if len(layer.kernel) > 1 else layer.kernel[0], n, "kernel", where, 1)
            stride = kernel if layer.stride is None else _per_axis(
                layer.stride if len(layer.stride) > 1 else layer.stride[0], n, "stride", where, 1)
            pads = _pads(layer.padding, n, where)
        outs, flat = window_index(spatial, kernel, stride, pads, [1] * n)
        if flat is None:
            raise SpecError(f"{where}: the pooling window {tuple(kernel)} does not fit in frames of shape {shape}")
        size = int(np.prod(spatial))
        C = shape[0]
        idx = np.where(flat[None] >= 0, np.arange(C)[:, None, None] * size + flat[None], -1)
        return outs, idx.reshape(C * flat.shape[0], flat.shape[1])

    def infer(self, layer, inputs, where):
        edge, shape = _frame_of_channels(layer, inputs, where)
        outs, _ = self._index(layer, shape, f"{where} on edge {edge!r}")
        return (shape[0],) + outs, "float"

    def pack_node(self, layer, shapes, dtype):
        (shape,) = shapes
        outs, idx = self._index(layer, shape)
        meta = np.zeros(L.META_LEN + idx.size, dtype=np.int64)
        meta[L.M_CODE] = POOL_MAX if layer.mode == "max" else (POOL_AVG if layer.count_include_pad else POOL_AVG_VALID)
        meta[L.M_H] = idx.shape[1]
        meta[L.META_LEN:] = idx.ravel()
        return Packed(layer, self, np.zeros(1, dtype=dtype), meta, int(np.prod(shape)), idx.shape[0])


class PReLU:
    """torch.nn.PReLU: y = x if x >= 0 else slope * x, one slope per channel (the frame's first axis) or one for
    all."""

    kind = "prelu"
    input_size = None

    def __init__(self, weight, name=None):
        self.name = name
        self.weight = _array(np.atleast_1d(weight), "weight", "PReLU" + (f" {name!r}" if name else ""), 1)

    @property
    def channels(self):
        """The channels its frames must have, or None (one slope for all)."""
        n = self.weight.shape[0]
        return None if n == 1 else n

    def __repr__(self):
        return f"PReLU({self.weight.shape[0]})"

    def to_config(self):
        return {"kind": self.kind, "name": self.name}, {"weight": self.weight}

    @classmethod
    def from_config(cls, config, arrays):
        return cls(arrays["weight"], name=config.get("name"))


class PReLUKind(PerChannelKind):
    name, code, spec_class = "prelu", L.OP_PRELU, PReLU
    step, entry = staticmethod(prelu_step), staticmethod(prelu_entry)

    def pack_node(self, layer, shapes, dtype):
        (shape,) = shapes
        size = int(np.prod(shape))
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        meta[L.M_H], meta[L.M_D], meta[L.M_HO] = shape[0], size // shape[0], layer.weight.shape[0]
        return Packed(layer, self, np.asarray(layer.weight, dtype), meta, size, size)


FRAME_CONV = FrameConvKind()
FRAME_CONV_T = FrameConvTransposeKind()
POOL = PoolKind()
PRELU = PReLUKind()
