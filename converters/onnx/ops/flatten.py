"""ONNX Flatten (1, 9, 11, 13): to 2-D; allowed where time and batch are not merged with each other."""

from ..graph import Dyn, Unsupported
from ._common import attrs, set_out


def convert_flatten_1(ctx, node):
    x = ctx.value(node.input[0])
    if not isinstance(x, Dyn):
        raise Unsupported(f"Flatten of a {type(x).__name__}")
    axis = attrs(node).get("axis", 1) % (len(x.roles) + 1)
    left = [r for r in (ctx.resolve(r) for r in x.roles[:axis]) if r != "1"]
    right = [r for r in (ctx.resolve(r) for r in x.roles[axis:]) if r != "1"]
    if len(left) > 1 or right not in (["F"], ["D", "F"]):
        raise Unsupported(f"Flatten at axis {axis} merges {left if len(left) > 1 else right}")
    sizes = dict(x.sizes)
    if right == ["D", "F"]:
        sizes["F"] = x.sizes["F"] * x.sizes["D"]
    set_out(ctx, node, Dyn([left[0] if left else "1", "F"], sizes, x.edge, x.reversed_time))
