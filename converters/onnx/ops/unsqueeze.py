"""ONNX Unsqueeze (1: axes attribute; 13: axes input): adds unit axes; turns a symbolic scalar into a vector."""

from ..graph import Dyn, Late, SymVec, Unsupported, Zeros
from ._common import axis_list, rank, set_out
from ._late import late_unsqueeze


def _unsqueeze(ctx, node, axes):
    v = ctx.value(node.input[0])
    if isinstance(v, SymVec):
        if not v.scalar or [a % 1 for a in axes] != [0]:
            raise Unsupported("only a symbolic scalar can be unsqueezed, into a vector")
        set_out(ctx, node, SymVec(v.items))
        return
    if isinstance(v, Late):
        set_out(ctx, node, late_unsqueeze(v, axes))
        return
    r = rank(v) + len(axes)
    axes = sorted(a % r for a in axes)
    if isinstance(v, Zeros):
        shape = list(v.shape)
        for a in axes:
            shape.insert(a, 1)
        set_out(ctx, node, Zeros(shape))
        return
    roles = list(v.roles)
    for a in axes:
        roles.insert(a, "1")
    if isinstance(v, Dyn) and ctx.unbatched and "B" not in roles and len(axes) == 1 and len(roles) == 3:
        roles[axes[0]] = "B"   # an input of (time, features) given the batch axis a recurrent node needs
    elif isinstance(v, Dyn) and ctx.per_call() and not any(ctx.resolve(r) == "T" for r in roles):
        roles[axes[0]] = "T"   # a one-frame-per-call graph gives its time axis back
    set_out(ctx, node, v.with_roles(roles))


def convert_unsqueeze_1(ctx, node):
    _unsqueeze(ctx, node, axis_list(ctx, node))


def convert_unsqueeze_13(ctx, node):
    _unsqueeze(ctx, node, axis_list(ctx, node))
