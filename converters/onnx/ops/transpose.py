"""ONNX Transpose (opset 1+): permutes the data's axis roles, or a state's."""

from engine.spec import Transpose

from ..graph import Dyn, Late, Zeros
from ._common import attrs, rank, set_out
from ._late import late_transpose


def convert_transpose_1(ctx, node):
    v = ctx.value(node.input[0])
    perm = attrs(node).get("perm") or list(range(rank(v)))[::-1]
    if isinstance(v, Dyn):
        roles = [v.roles[p] for p in perm]
        if [r for r in roles if r in ("C", "F")] == ["F", "C"]:    # the frame's two axes swap: a Transpose node
            moved = ctx.emit(v, Transpose([1, 0]))
            sizes = dict(v.sizes, C=v.sizes["F"], F=v.sizes["C"])
            roles = [{"C": "F", "F": "C"}.get(r, r) for r in roles]
            out = Dyn(roles, sizes, moved.edge, v.reversed_time)
        else:
            out = v.with_roles(roles)
    elif isinstance(v, Late):
        out = late_transpose(v, perm)
    elif isinstance(v, Zeros):
        out = Zeros([v.shape[p] for p in perm])
    else:
        raise ValueError("unreachable: constants are folded")
    set_out(ctx, node, out)
