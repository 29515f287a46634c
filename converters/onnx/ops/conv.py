"""ONNX Conv (1, 11): a convolution along time -> TemporalConv1d (N, C, time) or TemporalConv2d (N, C, H, W with
time one of H, W).

ONNX lays a 1-D convolution's input out as (batch, channels, length); the length must be the data's time axis.
Its weight (C_out, C_in / group, K...) is torch's layout, which the engine's kinds take as they are; a 2-D
convolution with time last (batch, channels, frequency, time) has its weight's last two axes swapped for
TemporalConv2d's (time, frequency). ``pads`` (begin..., end...) along time become the kind's (left, right)
padding: left up to (K - 1) * dilation, right any (a stream gives those outputs that many frames late).

A streaming export that keeps the last frames of the input in a cache (Concat(cache_in, x) along time ->
Conv with no time padding, and Slice(...)[-L:] -> cache_out) is a causal convolution whose state is that cache:
the converter pairs the two into a state loop (graph.StateLoop) the stream owns.
"""

import numpy as np

from engine import Dense, FrameConv, FrameConvTranspose, TemporalConv1d, TemporalConv2d
from engine.errors import SpecError
from engine.spec import Reshape

from ..graph import CacheCat, Dyn, Unsupported
from ._common import attrs, reject_attributes, set_out


def convert_conv_1(ctx, node):
    reject_attributes(node, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"})
    a = attrs(node)
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad not in ("NOTSET", "VALID"):
        raise Unsupported(f"auto_pad={auto_pad} (give explicit pads)")
    x = ctx.value(node.input[0])
    cache = None
    if isinstance(x, CacheCat):
        cache, x = x, x.data
    if not isinstance(x, Dyn):
        raise Unsupported(f"Conv of a {type(x).__name__}: the data must be its input")
    W = np.asarray(ctx.const(node, 1, "W"), np.float64)
    bias = ctx.const(node, 2, "B")
    n = W.ndim - 2
    if n not in (1, 2) or len(x.roles) != n + 2:
        raise Unsupported(f"a {n}-D convolution over data of rank {len(x.roles)}; rnnjit converts 1-D and 2-D "
                          f"convolutions along time")
    if "kernel_shape" in a and tuple(a["kernel_shape"]) != W.shape[2:]:
        raise Unsupported(f"kernel_shape {a['kernel_shape']} does not match the weight's {W.shape[2:]}")
    strides = list(a.get("strides", [1] * n))
    dilations = list(a.get("dilations", [1] * n))
    pads = list(a.get("pads", [0] * 2 * n)) if auto_pad == "NOTSET" else [0] * 2 * n
    group = int(a.get("group", 1))
    roles = [ctx.resolve(r) for r in x.roles]
    spatial = list(range(2, n + 2))
    time = [i for i in spatial if roles[i] in ("T", "x0", "x1")]
    if cache is None and ctx.per_call() and all(roles[i] in ("C", "F", "1") for i in spatial):
        set_out(ctx, node, _frame_conv(ctx, x, W, bias, strides, dilations, pads, group, roles))
        return
    if len(time) != 1:
        raise Unsupported(f"the convolution's spatial axes hold {[roles[i] for i in spatial]}; one of them must be "
                          f"time (when the data input's axes have no names that say which is time, pass time_axis= "
                          f"and batch_axis= to engine.load)")
    t = time[0]
    ctx.bind(x.roles[t], "T")
    ctx.bind(x.roles[0], "B")
    k = t - 2                                        # index of time among the spatial axes
    pad_t = (int(pads[k]), int(pads[k + n]))
    if cache is not None:
        if pad_t != (0, 0):
            raise Unsupported("a convolution over a cache and the input pads time too")
        if cache.axis != t:
            raise Unsupported("the cache is concatenated along another axis than the convolution's time")
        span = (W.shape[2 + k] - 1) * dilations[k]
        if cache.frames != span or strides[k] != 1:
            raise Unsupported(f"a cache of {cache.frames} frames before a convolution that reads {span} past frames "
                              f"(stride {strides[k]}); rnnjit pairs a cache with a convolution it feeds exactly")
        pad_t = (span, 0)
    try:
        if n == 1:
            if roles[1] not in ("F", "1") or (roles[1] == "1" and x.frame_roles):
                raise Unsupported(f"axis 1 of the convolution's input holds {roles[1]}, not the channels")
            if W.shape[2] == 1 and group == 1 and strides[0] == 1 and pad_t == (0, 0):   # pointwise: a Dense
                layer = Dense(W[:, :, 0], bias)
            else:
                layer = TemporalConv1d(W, bias, dilation=dilations[0], groups=group, padding=pad_t,
                                       stride=strides[0])
            out = ctx.emit(x, layer)
            sizes = dict(x.sizes, F=W.shape[0])
            out = Dyn([r if i != 1 else "F" for i, r in enumerate(x.roles)], sizes, out.edge, x.reversed_time)
        else:
            f = spatial[1 - k]
            if roles[f] != "F" or roles[1] not in ("C", "1"):
                raise Unsupported(f"a 2-D convolution over axes {roles}: rnnjit takes (batch, channels, time, "
                                  f"frequency) or (batch, channels, frequency, time)")
            if roles[1] == "1":
                x = _unit_channels(ctx, x)
            Wt = W if k == 0 else W.transpose(0, 1, 3, 2)      # -> (C_out, C_in / group, K_time, K_frequency)
            fi = 1 - k
            layer = TemporalConv2d(Wt, bias, stride=(strides[k], strides[fi]), dilation=(dilations[k], dilations[fi]),
                                   padding=(pad_t, (int(pads[fi]), int(pads[fi + n]))), groups=group)
            out = ctx.emit(x, layer)
            kf = W.shape[2 + fi]
            size_f = (x.sizes["F"] + pads[fi] + pads[fi + n] - dilations[fi] * (kf - 1) - 1) // strides[fi] + 1
            out = Dyn(x.roles, dict(x.sizes, C=W.shape[0], F=int(size_f)), out.edge, x.reversed_time)
    except SpecError as exc:
        raise Unsupported(str(exc)) from None
    if cache is not None:
        cache.loop.bind(out.edge, [ctx.resolve(r) for r in x.roles], x)
    set_out(ctx, node, out)


def _frame_conv(ctx, x, W, bias, strides, dilations, pads, group, roles):
    """A convolution over the frame's own axes (a chunk model's convolution inside its chunk): FrameConv over a
    frame (channels, *axes); a unit channel axis the frame does not have is added first."""
    n = W.ndim - 2
    if roles[1] == "T":       # one frame per call: the unit axis that was read as time is the channel axis
        x = x.with_roles([r if i != 1 else "1" for i, r in enumerate(x.roles)])
        roles[1] = "1"
    frame = [r for r in roles if r in ("C", "F", "1")]
    if roles[1] == "1" and n == 1 and frame == ["1", "F"]:
        x = _unit_channels(ctx, x)
        roles = [ctx.resolve(r) for r in x.roles]
    if roles[1:] != ["C", "F"] or n != 1:
        raise Unsupported(f"a convolution over axes {roles} inside a frame; rnnjit converts (batch, channels, length) "
                          f"frames")
    try:
        layer = FrameConv(W, bias, stride=strides, padding=[[int(pads[0]), int(pads[1])]], dilation=dilations,
                          groups=group)
        out = ctx.emit(x, layer)
    except SpecError as exc:
        raise Unsupported(str(exc)) from None
    length = (x.sizes["F"] + pads[0] + pads[1] - dilations[0] * (W.shape[2] - 1) - 1) // strides[0] + 1
    return Dyn(x.roles, dict(x.sizes, C=W.shape[0], F=int(length)), out.edge, x.reversed_time)


def _unit_channels(ctx, x):
    """The data with its unit axis 1 made the frame's channel axis: (F,) frames -> (1, F), a Reshape node."""
    x = ctx.emit(x, Reshape([1, x.sizes["F"]]))
    return Dyn([r if i != 1 else "C" for i, r in enumerate(x.roles)], dict(x.sizes, C=1), x.edge, x.reversed_time)


def convert_convtranspose_1(ctx, node):
    """ConvTranspose inside a frame (FrameConvTranspose); along time it would give more frames than it reads (a
    higher frame rate), which a stream of one frame per step cannot, and is refused."""
    reject_attributes(node, {"auto_pad", "dilations", "group", "kernel_shape", "output_padding", "pads", "strides"})
    a = attrs(node)
    auto_pad = a.get("auto_pad", b"NOTSET")
    if (auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad) != "NOTSET":
        raise Unsupported(f"auto_pad={auto_pad} (give explicit pads)")
    x = ctx.value(node.input[0])
    if not isinstance(x, Dyn):
        raise Unsupported(f"ConvTranspose of a {type(x).__name__}: the data must be its input")
    W = np.asarray(ctx.const(node, 1, "W"), np.float64)
    bias = ctx.const(node, 2, "B")
    n = W.ndim - 2
    roles = [ctx.resolve(r) for r in x.roles]
    if n != 1 or len(roles) != 3:
        raise Unsupported(f"a {n}-D transposed convolution over data of rank {len(roles)}; rnnjit converts 1-D ones "
                          f"inside a frame")
    if roles[2] == "T" and not ctx.per_call():
        raise Unsupported("a transposed convolution along time gives more frames than it reads (a higher frame "
                          "rate); rnnjit streams one frame per step")
    if roles[1] == "T":       # one frame per call: the unit axis read as time is the channel axis
        x = x.with_roles([r if i != 1 else "1" for i, r in enumerate(x.roles)])
        roles[1] = "1"
    if roles[1] == "1" and roles[2] == "F":
        x = _unit_channels(ctx, x)
        roles = [ctx.resolve(r) for r in x.roles]
    if roles[1:] != ["C", "F"]:
        raise Unsupported(f"a transposed convolution over axes {roles}; rnnjit converts (batch, channels, length) "
                          f"frames")
    strides, dilations = list(a.get("strides", [1])), list(a.get("dilations", [1]))
    pads, out_pad = list(a.get("pads", [0, 0])), list(a.get("output_padding", [0]))
    try:
        layer = FrameConvTranspose(W, bias, stride=strides, padding=[[int(pads[0]), int(pads[1])]],
                                   output_padding=out_pad, dilation=dilations, groups=int(a.get("group", 1)))
        out = ctx.emit(x, layer)
    except SpecError as exc:
        raise Unsupported(str(exc)) from None
    length = (x.sizes["F"] - 1) * strides[0] - pads[0] - pads[1] + dilations[0] * (W.shape[2] - 1) + out_pad[0] + 1
    set_out(ctx, node, Dyn(x.roles, dict(x.sizes, C=layer.out_channels, F=int(length)), out.edge, x.reversed_time))
