"""ONNX Elu (6, 22): alpha default 1; see _activation.py."""

from ._activation import activation


def convert_elu_6(ctx, node):
    activation(ctx, node, "elu", "alpha", alpha_default=1.0)
