"""ONNX Shape (1; 15 adds start/end): the data's shape as a symbolic vector (time and batch stay symbols)."""

from ..graph import Dyn, RuntimeInput, SymVec, Unsupported, Zeros
from ._common import attrs, set_out


def _dims(ctx, v):
    if isinstance(v, Zeros):
        return list(v.shape)
    if isinstance(v, RuntimeInput):
        return [d if isinstance(d, int) else f"{v.name}:{i}" for i, d in enumerate(v.dims)]
    if not isinstance(v, Dyn):
        raise Unsupported(f"Shape of a {type(v).__name__} is not supported")
    dims = []
    for role in v.roles:
        role = ctx.resolve(role)
        if role == "1" or (role == "T" and ctx.per_call()):   # (a graph that takes one frame per call sees 1)
            dims.append(1)
        elif role in ("F", "D") and v.sizes.get(role) is not None:
            dims.append(int(v.sizes[role]))
        else:
            dims.append(role)
    return dims


def convert_shape_1(ctx, node):
    set_out(ctx, node, SymVec(_dims(ctx, ctx.value(node.input[0]))))


def convert_shape_15(ctx, node):
    a = attrs(node)
    dims = _dims(ctx, ctx.value(node.input[0]))
    start, end = a.get("start", 0), a.get("end", len(dims))
    set_out(ctx, node, SymVec(dims[start:end]))
