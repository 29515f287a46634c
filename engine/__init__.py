"""rnnjit: a CPU inference engine for recurrent networks (LSTM, GRU, RNN).

    import engine
    model = engine.load("model.npz")          # or engine.Model(spec)
    s = model.stream()
    y = s.step(x)                             # x (input_size,) -> (output_size,)
    Y = model.run(X)                          # X (T, input_size) or (B, T, input_size)

``import engine`` never imports onnx, torch or keras: converters (the ``converters`` package) turn their
files into a ModelSpec, and the engine runs ModelSpecs.
"""

from ._ext import COMPILED
from .errors import (FormatError, RnnjitError, ShapeError, SpecError, StateError, StreamingError,
                     UnsafeFileError)
from .io import FORMAT_VERSION, load, load_spec
from .model import Model
from .session import Stream, Streams
from .spec import GRU, LSTM, RNN, Activation, Dense, ModelSpec, Normalize

__version__ = "0.1.0"

__all__ = [
    "Activation", "COMPILED", "Dense", "FORMAT_VERSION", "FormatError", "GRU", "LSTM", "Model", "ModelSpec",
    "Normalize", "RNN", "RnnjitError", "ShapeError", "SpecError", "StateError", "Stream", "Streams",
    "StreamingError", "UnsafeFileError", "load", "load_spec", "__version__",
]
