"""ONNX LayerNormalization (17): over the frame's trailing axes -> LayerNorm."""

import numpy as np

from engine import LayerNorm
from engine.errors import SpecError

from ..graph import FRAME_ROLES, Dyn, Unsupported
from ._common import attrs, reject_attributes, set_out


def convert_layernormalization_17(ctx, node):
    reject_attributes(node, {"axis", "epsilon", "stash_type"})
    if len(node.output) > 1 and any(node.output[1:]):
        raise Unsupported("the mean / inverse-deviation outputs are used (training outputs)")
    x = ctx.value(node.input[0])
    if not isinstance(x, Dyn):
        raise Unsupported(f"LayerNormalization of a {type(x).__name__}")
    a = attrs(node)
    axis = int(a.get("axis", -1)) % len(x.roles)
    over = [ctx.resolve(r) for r in x.roles[axis:]]
    if not over or any(r not in FRAME_ROLES and r != "1" for r in over) or \
            [r for r in over if r != "1"] != list(x.frame_roles)[-len([r for r in over if r != "1"]):]:
        raise Unsupported(f"normalizing over axes {over}: rnnjit normalizes over a frame's trailing axes only")
    shape = tuple(x.sizes[r] for r in over if r != "1")
    scale = ctx.const(node, 1, "Scale")
    bias = ctx.const(node, 2, "B")
    try:
        weight = None if scale is None else np.broadcast_to(np.asarray(scale, np.float64).reshape(
            np.shape(scale)[-len(shape):] if np.ndim(scale) else ()), shape)
        bias = None if bias is None else np.broadcast_to(np.asarray(bias, np.float64), shape)
        layer = LayerNorm(shape, weight, bias, eps=float(a.get("epsilon", 1e-5)))
    except (SpecError, ValueError) as exc:
        raise Unsupported(f"Scale {np.shape(scale)} / B over a frame of {shape}: {exc}") from None
    set_out(ctx, node, ctx.emit(x, layer))
