"""ONNX Cast (1, 6, 13, 19, 21): float to float only on the data; see passthrough.py."""

from .passthrough import cast


def convert_cast_1(ctx, node):
    cast(ctx, node)
