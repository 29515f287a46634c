"""ONNX BatchNormalization (7, 9, 14, 15: inference), InstanceNormalization (6: over a frame's own axes only) and
PRelu (7, 9): per-channel kinds (the channel is ONNX's axis 1, the frame's first axis)."""

import numpy as np

from engine import BatchNorm, InstanceNorm, PReLU
from engine.errors import SpecError

from ..graph import Dyn, Unsupported
from ._channels import channel_layout
from ._common import attrs, reject_attributes, set_out


def convert_batchnormalization_7(ctx, node):
    reject_attributes(node, {"epsilon", "momentum", "spatial", "training_mode", "is_test"})
    a = attrs(node)
    if a.get("training_mode", 0):
        raise Unsupported("BatchNormalization in training mode (batch statistics)")
    if a.get("spatial", 1) != 1:
        raise Unsupported("BatchNormalization with spatial=0")
    if len(node.output) > 1 and any(node.output[1:]):
        raise Unsupported("the running-statistics outputs are used (training outputs)")
    x = ctx.value(node.input[0])
    channel_layout(ctx, x, "BatchNormalization")
    scale, bias, mean, var = (np.asarray(ctx.const(node, i, n), np.float64)
                              for i, n in enumerate(("scale", "B", "mean", "var"), 1))
    try:
        layer = BatchNorm(mean, var, scale, bias, eps=float(a.get("epsilon", 1e-5)))
    except SpecError as exc:
        raise Unsupported(str(exc)) from None
    set_out(ctx, node, ctx.emit(x, layer))


def convert_instancenormalization_6(ctx, node):
    reject_attributes(node, {"epsilon"})
    x = ctx.value(node.input[0])
    roles, spatial = channel_layout(ctx, x, "InstanceNormalization")
    if any(roles[i] in ("T", "x0", "x1") for i in spatial):
        raise Unsupported("InstanceNormalization over time normalizes each channel by statistics of the whole "
                          "sequence, which a stream never has; rnnjit takes it over a frame's own axes only")
    scale, bias = np.asarray(ctx.const(node, 1, "scale"), np.float64), np.asarray(ctx.const(node, 2, "B"), np.float64)
    try:
        layer = InstanceNorm(scale.size, scale, bias, eps=float(attrs(node).get("epsilon", 1e-5)))
    except SpecError as exc:
        raise Unsupported(str(exc)) from None
    set_out(ctx, node, ctx.emit(x, layer))


def convert_prelu_7(ctx, node):
    x = ctx.value(node.input[0])
    if not isinstance(x, Dyn):
        raise Unsupported(f"PRelu of a {type(x).__name__}")
    slope = np.asarray(ctx.const(node, 1, "slope"), np.float64)
    if slope.size != 1:     # numpy-style broadcast against the data: one axis left, the frame's first (channels)
        roles = [ctx.resolve(r) for r in x.roles]
        if slope.ndim > len(roles):
            raise Unsupported(f"a slope of shape {slope.shape} for data of rank {len(roles)}")
        shape = (1,) * (len(roles) - slope.ndim) + slope.shape
        axes = [i for i, d in enumerate(shape) if d != 1]
        if len(axes) != 1 or not x.frame_roles or roles[axes[0]] != x.frame_roles[0]:
            raise Unsupported(f"a slope of shape {slope.shape} over data with axes {roles}: rnnjit takes one slope "
                              f"per channel (the frame's first axis) or one for all")
    try:
        layer = PReLU(slope.reshape(-1))
    except SpecError as exc:
        raise Unsupported(str(exc)) from None
    set_out(ctx, node, ctx.emit(x, layer))
