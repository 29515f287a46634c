"""Converters: model files from other frameworks -> engine.ModelSpec.

Converters may import onnx, h5py or safetensors (and torch when present and asked for); the engine never
does. Each converter writes down, where the translation happens, every gate permutation and transpose
from its source layout into the engine's canonical one (engine/spec.py).

This release reads the native format only (engine.load); the ONNX, PyTorch, safetensors and Keras
readers are being added. ``load_spec`` says so clearly instead of guessing.
"""

import os

from engine.errors import FormatError

_PLANNED = {".onnx": "ONNX", ".pt": "PyTorch", ".pth": "PyTorch", ".bin": "PyTorch",
            ".safetensors": "safetensors", ".keras": "Keras", ".h5": "Keras"}


def load_spec(path, **options):
    """A ModelSpec from a non-native model file."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext in _PLANNED:
        raise FormatError(f"{path}: reading {_PLANNED[ext]} files is not supported by this rnnjit version yet; "
                          f"supported now: the native .npz format (ModelSpec.save)")
    raise FormatError(f"{path}: unrecognized model format {ext or '(no extension)'!r}; expected a native .npz "
                      f"written by rnnjit")
