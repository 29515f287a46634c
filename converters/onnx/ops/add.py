"""ONNX Add (7, 13, 14): the data and a per-feature constant; see _arith.py."""

from ._arith import arith


def convert_add_7(ctx, node):
    arith(ctx, node, "Add")
