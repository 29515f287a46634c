"""ONNX Transpose (opset 1+): permutes the data's axis roles, or a state's."""

from ..graph import Dyn, State, Zeros
from ._common import attrs, rank, set_out


def convert_transpose_1(ctx, node):
    v = ctx.value(node.input[0])
    perm = attrs(node).get("perm") or list(range(rank(v)))[::-1]
    if isinstance(v, Dyn):
        out = v.with_roles([v.roles[p] for p in perm])
    elif isinstance(v, State):
        out = State(v.layer, v.kind, [v.roles[p] for p in perm], v.directions)
    elif isinstance(v, Zeros):
        out = Zeros([v.shape[p] for p in perm])
    else:
        raise ValueError("unreachable: constants are folded")
    set_out(ctx, node, out)
