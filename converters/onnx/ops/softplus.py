"""ONNX Softplus (1, 22); see _activation.py."""

from ._activation import activation, over_features  # noqa: F401


def convert_softplus_1(ctx, node):
    activation(ctx, node, "softplus")
