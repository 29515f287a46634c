"""ONNX GRU: opsets 7 and 14 (14 adds ``layout``; 22 only widens the types). See _recurrent.py."""

from . import _recurrent


def convert_gru_7(ctx, node):
    _recurrent.convert(ctx, node, "GRU", opset_has_layout=False)


def convert_gru_14(ctx, node):
    _recurrent.convert(ctx, node, "GRU", opset_has_layout=True)
