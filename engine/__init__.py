"""rnnjit: a CPU inference engine for recurrent networks (LSTM, GRU, RNN).

    import engine
    model = engine.load("model.npz")          # or engine.Model(spec)
    s = model.stream()
    y = s.step(x)                             # x (input_size,) -> (output_size,)
    Y = model.run(X)                          # X (T, input_size) or (B, T, input_size)

    # a graph: named inputs, nodes reading named edges, named outputs
    spec = engine.ModelSpec.graph(inputs={"x": 8, "mask": 8},
                                  nodes=[engine.Node("gru", engine.GRU(8, 8, weights), "x"),
                                         engine.Node("res", engine.Add(), ["gru", "x"]),
                                         engine.Node("out", engine.Mul(), ["res", "mask"])],
                                  outputs=["out"])

``import engine`` never imports onnx, torch or keras: converters (the ``converters`` package) turn their
files into a ModelSpec, and the engine runs ModelSpecs.
"""

from ._ext import COMPILED
from .errors import FormatError, RnnjitError, ShapeError, SpecError, StateError, StreamingError, UnsafeFileError
from .io import FORMAT_VERSION, load, load_spec
from .model import Model
from .session import Stream, Streams
from .warmup import warmup
from .spec import (Activation, Add, BatchNorm, Concat, CumulativePool, Dense, Div, Embedding, Flatten, FrameConv,
                   FrameConvTranspose, GRU, GroupNorm, Input, InstanceNorm, L2Norm, LSTM, LayerNorm,
                   Masking, Max, Min, ModelSpec, Mul, Node, Normalize, PReLU, Pad, Pool, RNN,
                   Reshape, Slice, Squeeze, Sub, TemporalConv1d, TemporalConv2d, TemporalPool,
                   Transpose, Unsqueeze, split)

__version__ = "0.1.0"

__all__ = [
    "Activation", "Add", "BatchNorm", "COMPILED", "Concat", "CumulativePool", "Dense", "Div", "Embedding",
    "FORMAT_VERSION", "Flatten", "FormatError", "FrameConv", "FrameConvTranspose", "GRU", "GroupNorm", "Input",
    "InstanceNorm", "L2Norm", "LSTM", "LayerNorm", "Masking", "Max", "Min", "Model", "ModelSpec", "Mul", "Node",
    "Normalize", "PReLU", "Pad", "Pool", "RNN", "Reshape", "RnnjitError", "ShapeError", "Slice", "SpecError",
    "Squeeze", "StateError", "Stream", "StreamingError", "Streams", "Sub", "TemporalConv1d", "TemporalConv2d",
    "TemporalPool", "Transpose", "UnsafeFileError", "Unsqueeze", "__version__", "load", "load_spec", "split",
    "warmup",
]
