"""Converters: model files from other frameworks -> engine.ModelSpec.

Converters may import onnx, h5py or safetensors (and torch when present and asked for); the engine never
does. Each converter writes down, where the translation happens, every gate permutation and transpose
from its source layout into the engine's canonical one (engine/spec.py).

    converters.from_torch(path | state_dict | nn.Module, **options)   .pt .pth .bin .ckpt .pkl .safetensors .npz
    converters.from_keras(path)                                        .keras .h5
    converters.from_onnx(path | bytes | onnx.ModelProto)               .onnx

What a file is, and which reader takes it with which options, is one table: ``converters.formats`` (by
content first, then extension). ``load_spec(path, **options)`` and ``engine.load`` go through it.
"""

from .formats import FORMATS, identify
from .pytorch import from_torch


def from_keras(path, **options):
    from .keras import from_keras as _from_keras

    return _from_keras(path, **options)


def from_onnx(model, **options):
    from .onnx import from_onnx as _from_onnx

    return _from_onnx(model, **options)


def load_spec(path, **options):
    """A ModelSpec from a model file of any supported format, recognized by content (converters/formats.py)."""
    return identify(path).read(path, **options)


__all__ = ["FORMATS", "from_keras", "from_onnx", "from_torch", "identify", "load_spec"]
