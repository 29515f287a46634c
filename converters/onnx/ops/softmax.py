"""ONNX Softmax (1, 11: axis default 1 over a flattened tail; 13: default -1) over the features only; see _activation.py."""

from ._activation import over_features


def convert_softmax_1(ctx, node):
    over_features(ctx, node, "softmax", 1)


def convert_softmax_13(ctx, node):
    over_features(ctx, node, "softmax", -1)
