"""ONNX LeakyRelu (6, 16): alpha default 0.01; see _activation.py."""

from ._activation import activation


def convert_leakyrelu_6(ctx, node):
    activation(ctx, node, "leaky_relu", "alpha", alpha_default=0.01)
