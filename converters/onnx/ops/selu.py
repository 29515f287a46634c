"""ONNX Selu (6, 22): gamma * (x if x > 0 else alpha (e^x - 1)); our alpha, beta = alpha, gamma; see _activation.py."""

from ._activation import activation


def convert_selu_6(ctx, node):
    activation(ctx, node, "selu", "alpha", "gamma", 1.67326319217681884765625, 1.05070102214813232421875)
