"""One module per ONNX operator; registry.py lists which function converts which op from which opset."""
