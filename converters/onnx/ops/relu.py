"""ONNX Relu (6, 13, 14); see _activation.py."""

from ._activation import activation, over_features  # noqa: F401


def convert_relu_6(ctx, node):
    activation(ctx, node, "relu")
