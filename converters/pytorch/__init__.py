"""PyTorch models -> ModelSpec: checkpoints read without torch (reader.py), state_dicts by parameter names
(state_dict.py), live nn.Module objects when torch is installed (module.py)."""

import os

from engine.errors import FormatError

from ..dtypes import arrays_dtype

from .module import spec_from_module
from .pickled import is_module, spec_from_pickled
from .state_dict import spec_from_state_dict

# where training scripts usually put the model's weights inside a checkpoint dict
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "net", "network", "module", "weights")


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


def _pickled_module(loaded, key):
    """The pickled module a checkpoint holds (itself, ``loaded[key]``, or the one module under a usual key), or
    None when it holds a state_dict."""
    if is_module(loaded):
        return loaded
    if isinstance(loaded, dict):
        if key is not None:
            return loaded.get(key) if is_module(loaded.get(key)) else None
        found = [k for k in _CHECKPOINT_KEYS if is_module(loaded.get(k))]
        if len(found) == 1 and not any(_is_array_dict(loaded.get(k)) for k in _CHECKPOINT_KEYS):
            return loaded[found[0]]
    return None


def spec_from_arrays(loaded, *, key=None, source="checkpoint", dtype=None, **options):
    """A ModelSpec from what a checkpoint file held (its state_dict, or a dict around one, or a whole pickled
    module): ``key`` picks the state_dict (or module) inside; ``dtype`` defaults to the file's own
    (converters/dtypes.py); the other options go to ``spec_from_state_dict`` (or, for a pickled module, layers and
    ignore go to ``spec_from_pickled``). Around a state_dict, what was left out (optimizer state, epoch counters)
    is said in ``spec.metadata["checkpoint"]``."""
    module = _pickled_module(loaded, key)
    if module is not None:
        options.pop("order", None)
        defaults = {"activations": None, "head_activation": None, "rnn_nonlinearity": "tanh"}
        given = sorted(k for k, v in options.items() if k in defaults and v != defaults[k])
        if given:
            raise FormatError(f"{source}: the file holds a whole module, whose layers say their own activations and "
                              f"nonlinearity; {', '.join(given)} apply to state_dicts (use layers=[...] for the "
                              f"functional steps forward() takes)")
        return spec_from_pickled(module, layers=options.get("layers"), ignore=options.get("ignore") or (),
                                 dtype=dtype, source=source)
    state = select_state_dict(loaded, key, source)
    if dtype is None:
        dtype = arrays_dtype(state.values())
    spec = spec_from_state_dict(state, dtype=dtype, source=source, **options)
    where = key if key is not None else next((k for k, v in loaded.items() if v is state), None) \
        if isinstance(loaded, dict) and state is not loaded else None
    if where is not None:
        rest = sorted(str(k) for k in loaded if k != where)
        spec.metadata["checkpoint"] = (f"the state_dict under {where!r}"
                                       + (f"; left out: {', '.join(rest)}" if rest else ""))
    return spec


def from_torch(obj, *, key=None, dtype=None, **options):
    """A ModelSpec from a PyTorch model: a path (a torch.save checkpoint, zip or legacy, whatever its name; a
    .safetensors file; an .npz of named arrays), a state_dict, or a live nn.Module. ``key`` picks the
    state_dict inside a checkpoint dict; other options go to ``spec_from_state_dict`` (layers, activations,
    head_activation, rnn_nonlinearity, ignore)."""
    if isinstance(obj, (str, os.PathLike)):
        from ..formats import TORCH_FORMATS, identify

        source = os.fspath(obj)
        fmt = identify(source)
        if fmt.name not in TORCH_FORMATS:
            raise FormatError(f"{source}: this is a {fmt.title} file, not a PyTorch checkpoint, safetensors or "
                              f".npz of named arrays; engine.load(path) reads it")
        return fmt.read(source, key=key, dtype=dtype, **options)
    if hasattr(obj, "named_children") and hasattr(obj, "state_dict"):
        extra = sorted(k for k in options if k not in ("layers", "ignore")) + (["key"] if key else [])
        if extra:
            raise TypeError(f"a live module takes layers= and ignore= (its structure says the rest), got {extra}")
        return spec_from_module(obj, dtype=dtype, layers=options.get("layers"), ignore=options.get("ignore") or ())
    return spec_from_arrays(obj, key=key, source="state_dict", dtype=dtype, order="module", **options)
