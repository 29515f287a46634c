"""ONNX LSTM: opsets 7 and 14 (14 adds ``layout``; 22 only widens the types). See _recurrent.py."""

from . import _recurrent


def convert_lstm_7(ctx, node):
    _recurrent.convert(ctx, node, "LSTM", opset_has_layout=False)


def convert_lstm_14(ctx, node):
    _recurrent.convert(ctx, node, "LSTM", opset_has_layout=True)
