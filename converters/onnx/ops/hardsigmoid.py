"""ONNX HardSigmoid (6, 22): max(0, min(1, alpha x + beta)), defaults 0.2, 0.5; see _activation.py."""

from ._activation import activation


def convert_hardsigmoid_6(ctx, node):
    activation(ctx, node, "hard_sigmoid", "alpha", "beta", 0.2, 0.5)
