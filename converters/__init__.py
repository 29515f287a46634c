"""Converters: model files from other frameworks -> engine.ModelSpec.

Converters may import onnx, h5py or safetensors (and torch when present and asked for); the engine never
does. Each converter writes down, where the translation happens, every gate permutation and transpose
from its source layout into the engine's canonical one (engine/spec.py).

    converters.from_torch(path | state_dict | nn.Module, **options)   .pt .pth .bin .safetensors .npz
    converters.from_keras(path)                                        .keras .h5
    converters.from_onnx(path | bytes | onnx.ModelProto)               .onnx

``load_spec(path, **options)`` picks one by file extension; ``engine.load`` calls it for non-native files.
"""

import os

from engine.errors import FormatError

from .pytorch import from_torch

_TORCH = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".npz")


def from_keras(path, **options):
    from .keras import from_keras as _from_keras

    return _from_keras(path, **options)


def from_onnx(model, **options):
    from .onnx import from_onnx as _from_onnx

    return _from_onnx(model, **options)


def reader_for(path):
    """The converter function for ``path``, by extension."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext in _TORCH:
        return from_torch
    if ext in (".keras", ".h5", ".hdf5"):
        return from_keras
    if ext == ".onnx":
        return from_onnx
    raise FormatError(f"{path}: unrecognized model format {ext or '(no extension)'!r}; expected .onnx, .npz (native "
                      f"or PyTorch names), .pt/.pth/.bin, .safetensors, .keras or .h5")


def load_spec(path, **options):
    """A ModelSpec from a non-native model file, by extension."""
    return reader_for(path)(path, **options)


__all__ = ["from_keras", "from_onnx", "from_torch", "load_spec", "reader_for"]
