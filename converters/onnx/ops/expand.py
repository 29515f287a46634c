"""ONNX Expand (8): a zero tensor broadcast to a (symbolic) shape is still zeros."""

import numpy as np

from ..graph import SymVec, Unsupported, Zeros
from ._common import set_out


def convert_expand_8(ctx, node):
    v = ctx.value(node.input[0])
    shape = ctx.value(node.input[1])
    items = shape.items if isinstance(shape, SymVec) else [int(x) for x in ctx.const(node, 1).reshape(-1)]
    if isinstance(v, Zeros):
        set_out(ctx, node, Zeros(items))
        return
    if isinstance(v, np.ndarray) and not np.any(v):
        set_out(ctx, node, Zeros(items))
        return
    raise Unsupported(f"Expand of a {type(v).__name__} to a dynamic shape")
