"""ONNX Dropout (1, 7, 10, 12, 13): the identity at inference; see passthrough.py."""

from .passthrough import dropout


def convert_dropout_1(ctx, node):
    dropout(ctx, node)
