"""ONNX Concat (1, 4, 11, 13): joins shape vectors (symbolic or constant) or zero tensors."""

import numpy as np

from ..graph import State, StateCat, SymVec, Unsupported, Zeros
from ._common import attrs, set_out


def convert_concat_1(ctx, node):
    values = [ctx.value(i) for i in node.input if i]
    axis = attrs(node).get("axis", 0)
    if all(isinstance(v, (SymVec, np.ndarray)) for v in values):
        items = []
        for v in values:
            items += v.items if isinstance(v, SymVec) else [int(x) for x in np.asarray(v).reshape(-1)]
        set_out(ctx, node, SymVec(items))
        return
    if all(isinstance(v, (Zeros, np.ndarray)) for v in values) and all(
            isinstance(v, Zeros) or not np.any(v) for v in values):
        shapes = [list(v.shape) for v in values]
        total = sum(s[axis] for s in shapes)
        shape = list(shapes[0])
        shape[axis] = total
        set_out(ctx, node, Zeros(shape))
        return
    if all(isinstance(v, (State, StateCat)) for v in values) and axis == 0:
        parts = []
        for v in values:
            parts += v.parts if isinstance(v, StateCat) else [v]
        if any(p.roles != ("D", "B", "F") for p in parts):
            raise Unsupported("concatenating states that are not (directions, batch, hidden)")
        set_out(ctx, node, StateCat(parts))
        return
    raise Unsupported(f"Concat of {[type(v).__name__ for v in values]} is not supported (data is not concatenated)")
