"""PyTorch models -> ModelSpec: checkpoints read without torch (reader.py), state_dicts by parameter names
(state_dict.py), live nn.Module objects when torch is installed (module.py)."""

import os

import numpy as np

from engine.errors import FormatError

from .module import spec_from_module
from .reader import load_checkpoint
from .state_dict import spec_from_state_dict

# where training scripts usually put the model's weights inside a checkpoint dict
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "module", "weights")


def _is_array_dict(obj):
    return isinstance(obj, dict) and obj and all(hasattr(v, "shape") for v in obj.values())


def select_state_dict(obj, key=None, source="checkpoint"):
    """The {name: array} part of a loaded checkpoint: itself, ``obj[key]``, or the one usual key holding it."""
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            top = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
            raise FormatError(f"{source}: no key {key!r} at the top of the checkpoint; it has {top}")
        obj = obj[key]
        if not isinstance(obj, dict):
            raise FormatError(f"{source}: checkpoint[{key!r}] is a {type(obj).__name__}, not a state_dict")
        return {k: v for k, v in obj.items() if hasattr(v, "shape")}
    if _is_array_dict(obj):
        return obj
    if isinstance(obj, dict):
        found = [k for k in _CHECKPOINT_KEYS if _is_array_dict(obj.get(k))]
        if len(found) == 1:
            return obj[found[0]]
        raise FormatError(f"{source}: the checkpoint is a dict with keys {sorted(map(str, obj))[:20]}; say which "
                          f"holds the model's state_dict with key='...'")
    raise FormatError(f"{source}: expected a state_dict (a dict of tensors), got {type(obj).__name__}")


def read_arrays(path):
    """{name: array} from a .pt/.pth/.bin checkpoint, a .safetensors file or an .npz of named arrays."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".safetensors":
        from ..safetensors_reader import load_safetensors

        return load_safetensors(path), "chain"
    if ext == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}, "module"
        except (OSError, ValueError, EOFError) as exc:
            raise FormatError(f"{path}: unreadable .npz ({exc})") from None
    return load_checkpoint(path), "module"


def from_torch(obj, *, key=None, dtype="float32", **options):
    """A ModelSpec from a PyTorch model: a path (.pt .pth .bin .safetensors .npz), a state_dict, or a live
    nn.Module. ``key`` picks the state_dict inside a checkpoint dict; other options go to
    ``spec_from_state_dict`` (layers, activations, head_activation, rnn_nonlinearity, ignore, order)."""
    if isinstance(obj, (str, os.PathLike)):
        source = os.fspath(obj)
        loaded, order = read_arrays(obj)
        options.setdefault("order", order)
        state = select_state_dict(loaded, key, source)
        return spec_from_state_dict(state, dtype=dtype, source=source, **options)
    if hasattr(obj, "named_children") and hasattr(obj, "state_dict"):
        if options or key:
            raise TypeError(f"a live module needs no options (its structure says it all), got "
                            f"{sorted(options) + (['key'] if key else [])}")
        return spec_from_module(obj, dtype=dtype)
    state = select_state_dict(obj, key, "state_dict")
    return spec_from_state_dict(state, dtype=dtype, **options)


def _option_names():
    import inspect

    from .state_dict import spec_from_state_dict

    params = inspect.signature(spec_from_state_dict).parameters.values()
    return {"key", "dtype"} | {p.name for p in params if p.kind == p.KEYWORD_ONLY}


from_torch.option_names = _option_names()
