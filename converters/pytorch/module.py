"""A live torch ``nn.Module`` -> ModelSpec: the module tree read the way a pickled one is (pickled.py).

Each module becomes the same inert record a ``torch.save(model)`` file gives (its class, its attributes, its
parameters and buffers as numpy arrays), so a live module and a saved one convert by one set of rules: torch.nn
classes to their node kinds, a class of the user's own as a container of its children in registration order
(an assumption, said in ``spec.metadata``), ``layers=[...]`` for the functional steps ``forward()`` takes.
Nothing is pickled, so a class defined inside a function converts too.
"""


from engine.errors import FormatError

from .pickled import spec_from_pickled
from .reader import stand_in

_PLAIN = (bool, int, float, str, type(None))


def _array(value):
    t = value.detach().cpu()
    return (t.float() if str(t.dtype) == "torch.bfloat16" else t).numpy().copy()


def _value(value, depth):
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (tuple, list)) and depth < 4:
        return type(value)(_value(v, depth + 1) for v in value)
    return repr(value)[:80]   # a torch.device, a dtype, a function: what a pickled record would show, as text


def _record(module, types, seen):
    """The PickledObject standing for ``module`` (children recursively)."""
    if id(module) in seen:
        raise FormatError(f"{type(module).__name__}: the module contains itself")
    cls = stand_in(type(module).__module__, type(module).__qualname__, "live module", types)
    obj = cls.__new__(cls)   # (calling it is what a pickle may not do: refused)
    state = {}
    for name, value in vars(module).items():
        if name in ("_parameters", "_buffers"):
            state[name] = {k: (None if v is None else _array(v)) for k, v in value.items()}
        elif name == "_modules":
            state[name] = {k: (None if v is None else _record(v, types, seen | {id(module)}))
                           for k, v in value.items()}
        elif not name.startswith("_"):
            state[name] = _value(value, 0)
    obj.__setstate__(state)
    return obj


def spec_from_module(module, *, dtype=None, layers=None, ignore=()):
    """A ModelSpec from a live module (see the module docstring; ``layers`` and ``ignore`` as spec_from_pickled)."""
    root = _record(module, {}, frozenset())
    spec = spec_from_pickled(root, layers=layers, ignore=ignore, dtype=dtype,
                             source=f"torch module {type(module).__name__}")
    spec.metadata["source"] = f"torch module {type(module).__name__}"
    return spec
