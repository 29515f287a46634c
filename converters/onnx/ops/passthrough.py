"""Shared body of Identity, Cast (to a float type) and Dropout (inference): the value passes unchanged."""

import onnx

from ..graph import Dyn, Unsupported
from ._common import attrs, set_out

FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}


def identity(ctx, node):
    set_out(ctx, node, ctx.value(node.input[0]))


def cast(ctx, node):
    v = ctx.value(node.input[0])
    if isinstance(v, Dyn) and attrs(node).get("to") not in FLOATS:
        raise Unsupported(f"Cast of the data to {onnx.TensorProto.DataType.Name(attrs(node).get('to'))}")
    set_out(ctx, node, v)


def dropout(ctx, node):
    if len(node.output) > 1 and node.output[1]:
        raise Unsupported("Dropout's mask output is used; at inference there is no mask to give")
    if len(node.input) > 2 and node.input[2]:
        if bool(ctx.const(node, 2, "training_mode")):
            raise Unsupported("Dropout in training mode")
    set_out(ctx, node, ctx.value(node.input[0]))
