"""ONNX Softsign (1, 22); see _activation.py."""

from ._activation import activation, over_features  # noqa: F401


def convert_softsign_1(ctx, node):
    activation(ctx, node, "softsign")
