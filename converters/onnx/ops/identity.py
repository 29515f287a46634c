"""ONNX Identity (1); see passthrough.py."""

from .passthrough import identity


def convert_identity_1(ctx, node):
    identity(ctx, node)
