"""ONNX Relu (6, 13, 14); see _activation.py."""

from ._activation import activation


def convert_relu_6(ctx, node):
    activation(ctx, node, "relu")
