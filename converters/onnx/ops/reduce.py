"""ONNX ReduceMean / ReduceSum (1: axes attribute; 13 / 18: axes input): over the time axis of a graph that takes
one frame per call (a mean over that one frame is the frame: nothing to do), or over a frame's own axes (a linear
map of the frame: _linear.py). Over a whole sequence's time they are refused: a stream cannot see its end."""

import numpy as np

from ..graph import FRAME_ROLES, Dyn, Unsupported
from ._common import attrs, axis_list, norm_axes, set_out
from ._linear import frame_linear


def _reduce(ctx, node, op):
    x = ctx.value(node.input[0])
    if not isinstance(x, Dyn):
        raise Unsupported(f"{op} of a {type(x).__name__}")
    axes = axis_list(ctx, node)
    if axes is None:
        raise Unsupported(f"{op} over every axis")
    axes = norm_axes(axes, len(x.roles))
    roles = [ctx.resolve(r) for r in x.roles]
    over = [roles[a] for a in axes]
    keep = attrs(node).get("keepdims", 1)
    if over and all(r in FRAME_ROLES + ("1",) for r in over) and any(r in FRAME_ROLES for r in over):
        out_roles = [r for i, r in enumerate(roles) if keep or i not in axes]
        frame = [i for i, r in enumerate(out_roles) if r in FRAME_ROLES]
        if not keep and len(frame) == 1:   # (a reduced axis kept stays, of size 1) the one axis left: features
            out_roles[frame[0]] = "F"
        fn = np.mean if op == "ReduceMean" else np.sum
        set_out(ctx, node, frame_linear(ctx, x, lambda a: fn(a, axis=tuple(axes), keepdims=bool(keep)), out_roles,
                                        f"{op} over {over}"))
        return
    if not ctx.per_call() or any(r not in ("T", "1") for r in over):
        raise Unsupported(f"{op} over {over}; rnnjit reduces over the frame's own axes, or over the time axis of "
                          f"a graph that takes one frame per call")
    set_out(ctx, node, x if keep else x.with_roles([r for i, r in enumerate(x.roles) if i not in axes]))


def convert_reduce(ctx, node):
    """ReduceMean / ReduceSum at every opset: the axes come as an attribute or as an input (axis_list)."""
    _reduce(ctx, node, node.op_type)
