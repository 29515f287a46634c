"""ONNX Tanh (6, 13); see _activation.py."""

from ._activation import activation


def convert_tanh_6(ctx, node):
    activation(ctx, node, "tanh")
