"""A PyTorch model as a chain of steps, each turned into engine layers where its input frame's shape is known.

A module's ``forward`` is code, and neither a state_dict nor a pickled module holds it: what runs between the
parameterized layers (a ``F.relu``, a ``F.max_pool1d``, a reshape of each frame into a one-channel signal) is in no
file. Both readers therefore describe a model as a list of steps, in order: parameter groups or modules (which know
their own weights), and the functional steps the user names in ``layers=[...]``, written the way ``forward`` writes
them::

    layers=["reshape(1, 272)", "conv1", "relu", "max_pool1d(2)", "flatten", "linear0", "lstm", "linear", "softmax"]

Functional steps (shapes and axes are per frame: without the batch and time axes ``forward`` sees):

* activations: ``relu``, ``tanh``, ``sigmoid``, ``gelu``, ``silu``, ``elu``, ``selu``, ``softsign``, ``softplus``,
  ``relu6``, ``hardswish``, ``mish``, ``leaky_relu(slope)``, ``softmax``, ``log_softmax`` (over the last axis);
* ``max_pool1d(k[, stride])``, ``avg_pool1d(k[, stride])``: over a (channels, length) frame's length, or along
  time on a 1-D frame of features;
* ``reshape(*shape)``, ``flatten``, ``unsqueeze(dim)``, ``squeeze(dim)``, ``transpose(a, b)``.

A step spelled like a module or parameter group of the file is that module; ``F.relu`` (any name with ``F.``)
is always the function. Where a convolution or pooling runs follows from its input frame: on a (channels,
length) frame it convolves the frame's length (a 1-D signal per timestep, ``FrameConv``); on a 1-D frame of
features it runs along time with the features as its channels (``TemporalConv1d``), as after forward's
``x.transpose(1, 2)`` of a (batch, time, features) tensor.
"""

import ast
import re

import numpy as np

from engine import (Activation, Embedding, Flatten, FrameConv, Input, ModelSpec, Node, Pool, Reshape, Squeeze,
                    TemporalConv1d, TemporalPool, Transpose, Unsqueeze)
from engine.errors import FormatError, SpecError
from engine.layers import kind_of

_SIMPLE = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "gelu": "gelu", "silu": "silu", "elu": "elu",
           "selu": "selu", "softsign": "softsign", "softplus": "softplus", "relu6": "relu6", "hardswish": "hard_swish",
           "mish": "mish", "softmax": "softmax", "log_softmax": "log_softmax", "leaky_relu": "leaky_relu"}
_SHAPES = ("reshape", "view", "flatten", "unsqueeze", "squeeze", "transpose")
_POOLS = ("max_pool1d", "avg_pool1d")
FUNCTIONS = tuple(_SIMPLE) + _SHAPES + _POOLS
_CALL = re.compile(r"^(?P<f>F\.|torch\.)?(?P<name>[A-Za-z0-9_][A-Za-z0-9_.]*)\s*(?:\((?P<args>.*)\))?$", re.S)


class Step:
    """One step of the chain: ``label`` names it in errors, ``build(shape)`` gives its engine layers for an input
    frame of ``shape`` (a tuple; () for integer ids), ``in_shape`` the input frame it needs when it can say."""

    def __init__(self, label, build, in_shape=None):
        self.label, self.build, self.in_shape = label, build, in_shape


def parse_call(text):
    """``"name(1, 2, k=3)"`` -> (is_function, name, args, kwargs), or None when it is not a call's spelling. The
    arguments are Python literals (``ast.literal_eval``: no names, nothing evaluated)."""
    m = _CALL.match(text.strip())
    if not m:
        return None
    args, kwargs = (), {}
    if m["args"] is not None and m["args"].strip():
        try:
            call = ast.parse(f"f({m['args']})", mode="eval").body
            args = tuple(ast.literal_eval(a) for a in call.args)
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        except (SyntaxError, ValueError, TypeError):
            raise FormatError(f"step {text!r}: its arguments must be numbers (or tuples of them), like "
                              f"max_pool1d(2) or reshape(1, -1)") from None
        if any(k is None for k in kwargs):
            raise FormatError(f"step {text!r}: **kwargs are not a step's arguments")
    return bool(m["f"]), m["name"], args, kwargs


def read_step(item, names, what, source):
    """One entry of ``layers=[...]``: ``(name, kwargs, None)`` for one of ``names`` (a module path, a parameter
    group), with the attributes a file cannot say given by keyword (``"conv1(padding=2)"``), or ``(None, None,
    step)`` for a functional step. ``what`` says what the names are, in errors."""
    if not isinstance(item, str):
        raise FormatError(f"{source}: layers=[...] holds {what}s and functional steps (strings), got {item!r:.60}")
    text = item.strip()
    known = ", ".join(sorted(n for n in names if n))
    if text.rstrip(".") in names and not text.startswith("F."):
        return text.rstrip("."), {}, None
    call = parse_call(text)
    if call is None:
        raise FormatError(f"{source}: {text!r} is neither a {what} ({known}) nor a functional step")
    is_function, name, args, kwargs = call
    if name in names and not is_function:
        if args:
            raise FormatError(f"{source}: {text!r}: give a {what}'s attributes by name, as in {name}(padding=2)")
        return name, kwargs, None
    try:
        return None, None, function_step(text, name.split(".")[-1], args, dict(kwargs))
    except FormatError as exc:
        if "no such function" in str(exc):
            raise FormatError(f"{source}: {text!r} is neither a {what} ({known}) nor a functional step "
                              f"({exc})") from None
        raise FormatError(f"{source}: {exc}") from None


def _ints(values, what, label):
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise FormatError(f"step {label!r}: {what} must be integers, got {values!r}")
    return [int(v) for v in values]


def function_step(text, name, args, kwargs):
    """The Step of a functional step (``relu``, ``max_pool1d(2)``, ``reshape(1, -1)``, ...)."""
    label = text
    if name in _SIMPLE:
        if name == "leaky_relu":
            slope = kwargs.pop("negative_slope", args[0] if args else 0.01)
            args = ()
        if args or kwargs:
            dim = kwargs.pop("dim", args[0] if args else None)
            if name not in ("softmax", "log_softmax") or kwargs or len(args) > 1 or dim not in (-1,):
                raise FormatError(f"step {label!r}: {name} takes no arguments here (softmax and log_softmax run "
                                  f"over the frame's last axis: dim=-1)")
        act = Activation("leaky_relu", float(slope)) if name == "leaky_relu" else Activation(_SIMPLE[name])
        return Step(label, lambda shape: [act])
    if name in _POOLS:
        if kwargs:
            raise FormatError(f"step {label!r}: give {name}(kernel[, stride])")
        kernel, stride = (_ints(args, "kernel and stride", label) + [None])[:2] if args else (None, None)
        if kernel is None:
            raise FormatError(f"step {label!r}: give the kernel size, as in {name}(2)")
        mode = "max" if name == "max_pool1d" else "avg"
        return Step(label, lambda shape: pool_layers(mode, [kernel], [stride or kernel], [0], shape, label))
    if name in ("reshape", "view"):
        if kwargs or not args:
            raise FormatError(f"step {label!r}: give the frame's new shape, as in reshape(1, -1)")
        shape_to = _ints(args[0] if len(args) == 1 and isinstance(args[0], tuple) else args, "the shape", label)
        size = int(np.prod(shape_to)) if -1 not in shape_to else None
        return Step(label, lambda shape: [Reshape(shape_to)], in_shape=(size,) if size else None)
    if name == "flatten":
        start = kwargs.pop("start_dim", args[0] if args else 0)
        end = kwargs.pop("end_dim", args[1] if len(args) > 1 else -1)
        if kwargs:
            raise FormatError(f"step {label!r}: flatten takes start_dim and end_dim (of the frame)")
        start, end = _ints([start, end], "start_dim and end_dim", label)
        return Step(label, lambda shape: [Flatten(start, end)])
    if name in ("unsqueeze", "squeeze"):
        dims = _ints(args, "the dims", label) if args else None
        if kwargs or (name == "unsqueeze" and not dims):
            raise FormatError(f"step {label!r}: give the frame's dim, as in {name}(0)")

        def build(shape):
            if name == "unsqueeze":
                return [Unsqueeze(dims)]
            return [Squeeze(dims if dims is not None else [i for i, s in enumerate(shape) if s == 1])]
        return Step(label, build)
    if name == "transpose":
        dims = _ints(args, "the two dims", label)
        if kwargs or len(dims) != 2:
            raise FormatError(f"step {label!r}: give the frame's two dims, as in transpose(0, 1)")

        def transpose(shape):
            perm = list(range(len(shape)))
            try:
                a, b = perm[dims[0]], perm[dims[1]]
            except IndexError:
                raise FormatError(f"step {label!r}: a frame of shape {shape} has no dims {dims}") from None
            perm[a], perm[b] = b, a
            return [Transpose(perm)]
        return Step(label, transpose)
    raise FormatError(f"step {label!r}: no such function; the functional steps are {', '.join(FUNCTIONS)}")


def pool_layers(mode, kernel, stride, padding, shape, label, count_include_pad=True):
    """Pooling over a (channels, *spatial) frame with len(kernel) spatial axes, or along time on a 1-D frame."""
    if len(shape) == len(kernel) + 1:
        return [Pool(mode, kernel, stride, [[p, p] for p in padding], count_include_pad=count_include_pad,
                     name=label)]
    if len(shape) == 1 and len(kernel) == 1:
        return [TemporalPool(mode, kernel[0], stride[0], (padding[0], padding[0]),
                             count_include_pad=count_include_pad, name=label)]
    raise FormatError(f"{label}: a {len(kernel)}-D pooling needs frames of (channels, {len(kernel)} axes) (or 1-D "
                      f"frames to pool along time), got frames of shape {shape}")


def conv_layers(weight, bias, stride, padding, dilation, groups, shape, label):
    """torch's ConvNd on the frame: over its spatial axes when the frame is (channels, *spatial); a Conv1d on a 1-D
    frame of features runs along time (channels = the features)."""
    n = weight.ndim - 2
    if len(shape) == n + 1:
        return [FrameConv(weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups,
                          name=label)]
    if n == 1 and len(shape) == 1:
        pad = padding[0] if not isinstance(padding[0], (list, tuple)) else tuple(padding[0])
        return [TemporalConv1d(weight, bias, stride=stride[0], dilation=dilation[0], groups=groups, padding=pad,
                               name=label)]
    raise FormatError(f"{label}: a Conv{n}d needs frames of (channels, {n} axes) (or, for Conv1d, 1-D frames to "
                      f"convolve along time), got frames of shape {shape}")


def chain_spec(steps, *, dtype, source, metadata):
    """The ModelSpec of ``steps`` in order: the input frame from the first step that says it, each step built for
    the frame the one before gives. Every step that cannot be built is named, with its reason, in one error."""
    if not steps:
        raise FormatError(f"{source}: the model has no steps")
    first = steps[0]
    if first.in_shape is None:
        raise FormatError(f"{source}: the model's first step {first.label!r} does not say the input's frame shape; "
                          f"start with a step that does (a Linear, a recurrent layer, an Embedding, or reshape(...) "
                          f"without -1)")
    shape = first.in_shape
    layers, problems = [], []
    for step in steps:
        if shape is None:
            problems.append(f"{step.label}: comes after a step that failed")
            continue
        try:
            built = step.build(shape)
            for layer in built:
                dtype_in = "int64" if first.in_shape == () and not layers else "float"
                shape, _ = kind_of(layer).infer(layer, [("in", tuple(shape), dtype_in)], f"step {step.label!r}")
                layers.append(layer)
        except (FormatError, SpecError) as exc:
            problems.append(f"{step.label}: {exc}")
            shape = None
    if problems:
        raise FormatError(f"{source}: steps rnnjit cannot run:\n  " + "\n  ".join(problems))
    try:
        if isinstance(layers[0], Embedding):   # token ids in: a graph of one int64 input
            nodes = [Node(f"layers.{i}", layer, "ids" if i == 0 else f"layers.{i - 1}")
                     for i, layer in enumerate(layers)]
            return ModelSpec.graph([Input("ids", (), "int64")], nodes, [nodes[-1].name], dtype=dtype,
                                   metadata=metadata)
        return ModelSpec(layers, input_size=first.in_shape[0], dtype=dtype, metadata=metadata)
    except SpecError as exc:
        raise FormatError(f"{source}: the steps do not form one model ({exc})") from None
