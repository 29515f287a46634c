"""ONNX ConstantOfShape (9): zeros of a symbolic shape = an all-zero (initial) state."""

import onnx

from ..graph import SymVec, Unsupported, Zeros
from ._common import attrs, set_out


def convert_constantofshape_9(ctx, node):
    shape = ctx.value(node.input[0])
    value = attrs(node).get("value")
    fill = 0.0 if value is None else float(onnx.numpy_helper.to_array(value).reshape(-1)[0])
    if not isinstance(shape, SymVec):
        raise Unsupported(f"ConstantOfShape of a {type(shape).__name__}")
    if fill != 0.0:
        raise Unsupported(f"ConstantOfShape filled with {fill} over a dynamic shape (only zeros are supported)")
    set_out(ctx, node, Zeros(shape.items))
