"""ONNX Split (2: split attribute; 13: split input; 18: num_outputs): splits zero states."""

import numpy as np

from ..graph import Unsupported, Zeros
from ._common import attrs, norm_axes


def _split(ctx, node, sizes):
    v = ctx.value(node.input[0])
    if not isinstance(v, Zeros):
        raise Unsupported(f"Split of a {type(v).__name__} (only zero states and constants)")
    axis = norm_axes([attrs(node).get("axis", 0)], len(v.shape))[0]
    total = v.shape[axis]
    if not isinstance(total, int):
        raise Unsupported("Split along a dynamic axis")
    n = len([o for o in node.output])
    sizes = sizes or [total // n] * n
    for out, size in zip(node.output, sizes):
        shape = list(v.shape)
        shape[axis] = int(size)
        if out:
            ctx.values[out] = Zeros(shape)


def convert_split_2(ctx, node):
    _split(ctx, node, attrs(node).get("split"))


def convert_split_13(ctx, node):
    sizes = None
    if len(node.input) > 1 and node.input[1]:
        sizes = [int(x) for x in np.asarray(ctx.const(node, 1, "split")).reshape(-1)]
    _split(ctx, node, sizes)
