"""A whole pickled module (``torch.save(model)``) -> ModelSpec, read as data (reader.py): no class is imported, no
code of the file runs.

Each torch.nn class becomes its node kind with the attributes the pickle holds (a Conv1d's stride, padding,
dilation and groups; an LSTM's layers, direction and projection; a norm's eps and running statistics). A class of
the user's own is an inert container: its ``forward`` is code, which the file does not hold, so its children are
taken in the order they were registered. That is exact for ``nn.Sequential`` and an assumption for any other class,
stated in ``spec.metadata["torch.assumed"]`` (``rnnjit info`` prints it); ``layers=[...]`` says the real order and
the functional steps forward() takes between modules (steps.py). A class rnnjit cannot express is named in the
error, which says to export the model to ONNX instead.
"""

from types import SimpleNamespace

import numpy as np

from engine import GRU, LSTM, RNN, Activation, BatchNorm, Dense, Embedding, GroupNorm, LayerNorm
from engine.errors import FormatError, SpecError

from ..dtypes import arrays_dtype
from .reader import PickledObject
from .state_dict import _CELL, _STACKED, _recurrent_layers
from .steps import Step, chain_spec, conv_layers, function_step, pool_layers, read_step

TORCH_NN = "torch.nn.modules."
_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
_NO_OPS = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "Identity")
_MAX_SIZE = 1 << 31


def is_module(obj):
    return isinstance(obj, PickledObject) and isinstance(obj.state.get("_modules"), dict)


def _torch_name(obj):
    return obj.qualname if obj.module.startswith(TORCH_NN) else None


class _Module:
    """Typed access to one pickled module's attributes, parameters and buffers; errors name the module."""

    def __init__(self, obj, path):
        self.obj, self.path = obj, path or "(root)"
        self.label = f"{self.path} ({obj.qualname})"

    def fail(self, why):
        raise FormatError(f"{self.label}: {why}")

    def attr(self, name, kind, default=...):
        state = self.obj.state
        if name not in state:
            if default is ...:
                self.fail(f"the pickle has no attribute {name!r}")
            return default
        value = state[name]
        ok = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool) and -_MAX_SIZE < v < _MAX_SIZE,
              "bool": lambda v: isinstance(v, bool),
              "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v),
              "str": lambda v: isinstance(v, str),
              "ints": lambda v: isinstance(v, (tuple, list)) and all(
                  isinstance(x, int) and not isinstance(x, bool) and -_MAX_SIZE < x < _MAX_SIZE for x in v)}[kind]
        if value is None and default is None:
            return None
        if kind == "ints" and isinstance(value, int) and not isinstance(value, bool):
            value = (value,)
        if not ok(value):
            what = {"int": "an integer", "bool": "a bool", "float": "a finite number", "str": "a string",
                    "ints": "a tuple of integers"}[kind]
            self.fail(f"attribute {name} = {value!r:.60} is not {what} (of at most 31 bits)")
        return value

    def tensors(self, slot):
        table = self.obj.state.get(slot, {})
        if not isinstance(table, dict):
            self.fail(f"{slot} is a {type(table).__name__}, not a dict of tensors")
        out = {}
        for k, v in table.items():
            if v is None:
                continue
            if not isinstance(v, np.ndarray):
                self.fail(f"{slot}[{k!r}] is a {type(v).__name__}, not a tensor")
            out[k] = v
        return out

    def param(self, name, ndim=None, required=True):
        value = self.tensors("_parameters").get(name)
        if value is None:
            value = self.tensors("_buffers").get(name)
        if value is None:
            if required:
                self.fail(f"has no {name}")
            return None
        if ndim is not None and value.ndim != ndim:
            self.fail(f"{name} has shape {value.shape}, expected {ndim} axes")
        return value


def children(obj):
    mods = obj.state.get("_modules")
    if not isinstance(mods, dict):
        return []
    return [(str(k), v) for k, v in mods.items() if v is not None]


def _conv(m, n):
    w = m.param("weight", n + 2)
    b = m.param("bias", 1, required=False)
    if m.attr("transposed", "bool", False):
        m.fail("a transposed convolution is not supported from a pickled module; export the model to ONNX")
    if m.attr("padding_mode", "str", "zeros") != "zeros":
        m.fail(f"padding_mode={m.attr('padding_mode', 'str')!r} is not supported (only 'zeros')")
    kernel = m.attr("kernel_size", "ints")
    if tuple(kernel) != w.shape[2:] or m.attr("out_channels", "int") != w.shape[0]:
        m.fail(f"weight of shape {w.shape} does not match kernel_size={tuple(kernel)}, "
               f"out_channels={m.attr('out_channels', 'int')}")
    stride, dilation = m.attr("stride", "ints"), m.attr("dilation", "ints")
    groups = m.attr("groups", "int", 1)
    padding = m.obj.state.get("padding")
    if padding == "valid":
        padding = [0] * n
    elif padding == "same":
        if any(s != 1 for s in stride):
            m.fail("padding='same' with a stride")
        spans = [d * (k - 1) for d, k in zip(dilation, kernel)]
        padding = [(s // 2, s - s // 2) for s in spans]   # torch puts the odd one on the right
    else:
        padding = m.attr("padding", "ints")

    def build(shape):
        return conv_layers(w, b, stride, padding, dilation, groups, shape, m.path)
    return build, None


def _pool(m, n, mode):
    kernel = m.attr("kernel_size", "ints")
    stride = m.attr("stride", "ints", None) or kernel
    padding = m.attr("padding", "ints", (0,))
    kernel, stride, padding = [list(v) * (n if len(v) == 1 else 1) for v in (kernel, stride, padding)]
    if m.attr("ceil_mode", "bool", False):
        m.fail("ceil_mode=True is not supported")
    if mode == "max":
        if m.attr("return_indices", "bool", False):
            m.fail("return_indices=True is not supported")
        if any(d != 1 for d in m.attr("dilation", "ints", (1,))):
            m.fail("a dilated max pooling is not supported")
    count = m.attr("count_include_pad", "bool", True)
    if mode == "avg" and m.attr("divisor_override", "int", None) is not None:
        m.fail("divisor_override is not supported")
    return (lambda shape: pool_layers(mode, kernel, stride, padding, shape, m.path, count)), None


def _recurrent(m):
    mode = m.attr("mode", "str", None)
    name = m.obj.qualname
    nonlinearity = m.attr("nonlinearity", "str", "tanh")
    if mode in ("RNN_TANH", "RNN_RELU"):
        nonlinearity = "relu" if mode == "RNN_RELU" else "tanh"
    if nonlinearity not in ("tanh", "relu"):
        m.fail(f"nonlinearity={nonlinearity!r} is not tanh or relu")

    params = m.tensors("_parameters")
    group = SimpleNamespace(label=m.path, kind="cell" if name.endswith("Cell") else "rnn", keys={})
    for k, v in params.items():   # the keys as state_dict.py reads a group's
        mm = (_CELL if group.kind == "cell" else _STACKED).match(k)
        if mm and not mm["prefix"]:
            group.keys[mm["name"] if group.kind == "cell" else (mm["name"], int(mm["layer"]), bool(mm["rev"]))] = v
    if not group.keys:
        m.fail("holds no recurrent weights")
    layers = _recurrent_layers(group, nonlinearity)
    expect = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN, "LSTMCell": LSTM, "GRUCell": GRU, "RNNCell": RNN}[name]
    if not all(isinstance(layer, expect) for layer in layers):
        m.fail(f"its weights have the shapes of a {type(layers[0]).__name__}, not a {expect.__name__}")
    checks = [("hidden_size", lambda layer: layer.hidden_size), ("input_size", lambda layer: layers[0].input_size)]
    for attr, get in checks:
        value = m.attr(attr, "int", None)
        if value is not None and value != get(layers[0]):
            m.fail(f"{attr}={value} does not match its weights ({get(layers[0])})")
    if m.attr("num_layers", "int", len(layers)) != len(layers):
        m.fail(f"num_layers={m.attr('num_layers', 'int')} but weights for {len(layers)} layers")
    return (lambda shape: layers), (layers[0].input_size,)


_ACTS = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Softsign": "softsign", "SELU": "selu",
         "SiLU": "silu", "Mish": "mish", "Hardswish": "hard_swish", "ReLU6": "relu6"}


def _activation(m):
    name = m.obj.qualname
    if name in _ACTS:
        act = Activation(_ACTS[name])
    elif name == "LeakyReLU":
        act = Activation("leaky_relu", m.attr("negative_slope", "float", 0.01))
    elif name == "ELU":
        act = Activation("elu", m.attr("alpha", "float", 1.0))
    elif name == "GELU":
        approx = m.attr("approximate", "str", "none")
        if approx not in ("none", "tanh"):
            m.fail(f"approximate={approx!r} is not 'none' or 'tanh'")
        act = Activation("gelu" if approx == "none" else "gelu_tanh")
    elif name == "Hardsigmoid":
        act = Activation("hard_sigmoid", 1.0 / 6.0, 0.5)
    elif name == "Hardtanh":
        act = Activation("clip", m.attr("min_val", "float", -1.0), m.attr("max_val", "float", 1.0))
    elif name == "Softplus":
        if m.attr("beta", "float", 1.0) != 1 or m.attr("threshold", "float", 20.0) != 20:
            m.fail("only Softplus(beta=1, threshold=20) is supported")
        act = Activation("softplus")
    elif name in ("Softmax", "LogSoftmax"):
        dim = m.attr("dim", "int", None)
        if dim not in (None, -1):
            m.fail(f"dim={dim}: forward() decides which axis that is, which the file does not hold; rnnjit's softmax "
                   f"runs over the frame's last axis: write F.softmax in layers=[...] if that is the one")
        act = Activation("softmax" if name == "Softmax" else "log_softmax")
    else:
        return None
    return lambda shape: [act]


def _norm(m):
    name = m.obj.qualname
    eps = m.attr("eps", "float", 1e-5)
    w, b = m.param("weight", 1, required=False), m.param("bias", 1, required=False)
    if name.startswith("BatchNorm"):
        mean, var = m.param("running_mean", 1, required=False), m.param("running_var", 1, required=False)
        if mean is None or var is None:
            m.fail("has no running statistics (track_running_stats=False normalizes with each batch's own)")
        layer = BatchNorm(mean, var, w, b, eps, name=m.path)
        return lambda shape: [layer]
    if name == "LayerNorm":
        w = m.param("weight", required=False)
        b = m.param("bias", required=False)
        layer = LayerNorm(tuple(m.attr("normalized_shape", "ints")), w, b, eps, name=m.path)
        return lambda shape: [layer]
    if name == "GroupNorm":
        layer = GroupNorm(m.attr("num_groups", "int"), m.attr("num_channels", "int"), w, b, eps, name=m.path)
        return lambda shape: [layer]
    return None


def module_step(obj, path, notes):
    """The Step of one torch.nn module (not a container)."""
    m = _Module(obj, path)
    name = _torch_name(obj)
    if name is None:
        m.fail(f"a class of the model's own code ({obj.class_name}); what its forward() computes is not in the "
               f"file. Export the model to ONNX (torch.onnx.export) and load that")
    in_shape = None
    try:
        if name in _NO_OPS:
            return Step(m.label, lambda shape: [], None)
        if name == "Linear":
            w, b = m.param("weight", 2), m.param("bias", 1, required=False)
            layer = Dense(w, b, name=m.path)
            build, in_shape = (lambda shape: [layer]), (w.shape[1],)
        elif name in ("Conv1d", "Conv2d"):
            build, in_shape = _conv(m, int(name[4]))
        elif name in ("MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"):
            build, in_shape = _pool(m, int(name[-2]), "max" if name.startswith("Max") else "avg")
        elif name in ("LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"):
            build, in_shape = _recurrent(m)
            if name.endswith("Cell"):
                notes.append(f"{path}: an {name} is stepped once per frame, its state carried from frame to frame")
        elif name == "Embedding":
            layer = Embedding(m.param("weight", 2), m.attr("padding_idx", "int", None), name=m.path,
                              max_norm=m.attr("max_norm", "float", None))
            build, in_shape = (lambda shape: [layer]), ()
        elif name == "Flatten":
            start, end = m.attr("start_dim", "int", 1), m.attr("end_dim", "int", -1)
            if start < 1 or end == 0:
                m.fail(f"start_dim={start}, end_dim={end} would flatten the batch axis into the frame")
            step = function_step(m.label, "flatten", (start - 1, end - 1 if end > 0 else end), {})
            build = step.build
        else:
            build = _activation(m) or _norm(m)
            if build is None:
                m.fail(f"rnnjit has no node kind for torch.nn.{name}; export the model to ONNX (torch.onnx.export) "
                       f"and load that")
    except SpecError as exc:
        m.fail(str(exc))
    return Step(m.label, build, in_shape)


def _walk(obj, path, visit, seen):
    if id(obj) in seen:
        raise FormatError(f"{path or '(root)'} ({obj.qualname}): the module contains itself")
    seen = seen | {id(obj)}
    visit(obj, path)
    for name, child in children(obj):
        if not is_module(child):
            raise FormatError(f"{path or '(root)'}: child {name!r} is a {type(child).__name__}, not a module")
        _walk(child, f"{path}.{name}" if path else name, visit, seen)


def _leaf_steps(obj, path, notes, problems, assumed):
    """The steps of ``obj``: itself if it is a layer, else its children's in registration order."""
    kids = children(obj)
    name = _torch_name(obj)
    own = _Module(obj, path).tensors("_parameters")
    if name in _CONTAINERS or (kids and name is None and not own):
        if name != "Sequential":
            assumed.append(f"{f'{path} ({obj.qualname})' if path else obj.qualname}: its forward() is code, which "
                           f"rnnjit does not read; its children "
                           f"are taken in the order they were registered: {', '.join(k for k, _ in kids)}")
        out = []
        for child_name, child in kids:
            out += _leaf_steps(child, f"{path}.{child_name}" if path else child_name, notes, problems, assumed)
        return out
    try:
        return [module_step(obj, path, notes)]
    except FormatError as exc:
        problems.append(str(exc))
        return []


def spec_from_pickled(root, *, layers=None, ignore=(), dtype=None, source="module"):
    """A ModelSpec from a pickled module (a PickledObject tree).

    layers: the model's steps in order (module paths such as ``"encoder.rnn"``, functional steps such as
        ``"relu"`` or ``"max_pool1d(2)"``, see steps.py); default: the modules in registration order.
    ignore: module paths left out of the model (an auxiliary head, a loss module).
    """
    if not is_module(root):
        raise FormatError(f"{source}: expected a pickled torch module, got {type(root).__name__}")
    modules = {}
    _walk(root, "", lambda obj, path: modules.setdefault(path, obj), frozenset())
    notes, problems, assumed = [], [], []
    if root.state.get("training") is True:
        notes.append(f"the {root.qualname} is in training mode (training=True); rnnjit runs it as model.eval() does "
                     f"(dropout off, norms on their running statistics)")
    ignore = [p.rstrip(".") for p in ignore]

    def ignored(path):
        return any(path == p or path.startswith(p + ".") for p in ignore)

    if layers is None:
        steps = [s for s in _leaf_steps(root, "", notes, problems, assumed)
                 if not ignored(s.label.split(" ")[0])]
    else:
        steps, used = [], set()
        for item in layers:
            name, kwargs, step = read_step(item, modules, "module", source)
            if step is not None:
                steps.append(step)
                continue
            if kwargs:
                raise FormatError(f"{source}: {item!r}: a module says its own attributes; it takes none here")
            steps += _leaf_steps(modules[name], name, notes, problems, [])
            used.add(name)
        unused = [p for p, obj in modules.items() if p and _Module(obj, p).tensors("_parameters")
                  and not any(p == u or p.startswith(u + ".") or u.startswith(p + ".") for u in used)
                  and not ignored(p)]
        if unused:
            raise FormatError(f"{source}: modules with weights that layers=[...] leaves out: {', '.join(unused)}; "
                              f"add them, or ignore=[...] them")
        assumed.append("the model's steps are the ones given with layers=[...]")
    hint = ""
    if layers is None and assumed:
        hint = ("\n" + "\n".join(assumed) + ".\nIf that is not the data flow, or forward() also calls functions "
                "(F.relu, F.max_pool1d, a reshape), give the model's steps with layers=[...]: the module paths and "
                "functional steps in order")
    if problems:
        raise FormatError(f"{source}: modules rnnjit cannot run:\n  " + "\n  ".join(problems) + hint)
    arrays = []
    for obj in modules.values():
        m = _Module(obj, "")
        arrays += list(m.tensors("_parameters").values()) + list(m.tensors("_buffers").values())
    metadata = {"source": f"{source} (a pickled {root.class_name})"}
    if assumed:
        metadata["torch.assumed"] = "; ".join(assumed)
    if notes:
        metadata["torch.notes"] = "; ".join(notes)
    try:
        return chain_spec(steps, dtype=dtype or arrays_dtype(arrays), source=source, metadata=metadata)
    except FormatError as exc:
        raise FormatError(f"{exc}{hint}") from None
