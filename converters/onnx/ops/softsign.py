"""ONNX Softsign (1, 22); see _activation.py."""

from ._activation import activation


def convert_softsign_1(ctx, node):
    activation(ctx, node, "softsign")
