"""ONNX LogSoftmax (1, 11, 13) over the features only; see _activation.py."""

from ._activation import over_features


def convert_logsoftmax_1(ctx, node):
    over_features(ctx, node, "log_softmax", 1)


def convert_logsoftmax_13(ctx, node):
    over_features(ctx, node, "log_softmax", -1)
