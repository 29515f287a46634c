"""ONNX ReduceMean / ReduceSum (1: axes attribute; 13 / 18: axes input): over the time axis of a graph that takes
one frame per call (a mean over that one frame is the frame: nothing to do). Reductions over a frame's axes or
over a whole sequence's time are refused: a stream cannot see the sequence's end."""

from ..graph import Dyn, Unsupported
from ._common import attrs, axis_list, norm_axes, set_out


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
    if not ctx.per_call() or any(r not in ("T", "1") for r in over):
        raise Unsupported(f"{op} over {over}; rnnjit reduces only over the time axis of a graph that takes one "
                          f"frame per call")
    keep = attrs(node).get("keepdims", 1)
    set_out(ctx, node, x if keep else x.with_roles([r for i, r in enumerate(x.roles) if i not in axes]))


def convert_reduce(ctx, node):
    """ReduceMean / ReduceSum at every opset: the axes come as an attribute or as an input (axis_list)."""
    _reduce(ctx, node, node.op_type)
