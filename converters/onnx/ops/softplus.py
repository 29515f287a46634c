"""ONNX Softplus (1, 22); see _activation.py."""

from ._activation import activation


def convert_softplus_1(ctx, node):
    activation(ctx, node, "softplus")
