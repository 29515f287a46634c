"""ModelSpec: the neutral description of a model that every converter produces and the engine consumes.

A ModelSpec is an ordered list of layers. Weights are held in ONE canonical layout, PyTorch's:

* LSTM gates stacked as **i, f, g, o** (g is the cell candidate, ONNX's "c"); GRU gates as **r, z, n**;
  RNN has one gate.
* per direction: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H_out), ``bias_ih`` (G*H,), ``bias_hh`` (G*H,);
  LSTM optionally ``weight_hr`` (H_out, H) (projection, H_out = proj_size) and ``peephole`` (3, H) in
  gate order **i, f, o**.
* a bidirectional layer outputs ``concat(forward, reverse)`` along the feature axis: (.., 2 * H_out).
* GRU keeps ``linear_before_reset`` as a flag: True (1) is PyTorch and Keras ``reset_after=True``;
  False (0) is the ONNX default and Keras ``reset_after=False``.

Gate functions follow the ONNX operators: LSTM ``activations`` are (f, g, h), GRU (f, g), RNN (f), one
tuple per direction. ``clip`` bounds every gate pre-activation to [-clip, clip] (as onnxruntime does,
after peepholes and biases are added). ``input_forget`` couples the gates: f = 1 - i.

The engine never guesses a layout: converters translate into this one (see converters/), and layers
validate shapes on construction, naming the layer and the shapes when they do not fit.
"""

import math

import numpy as np

from .errors import SpecError

# ----------------------------------------------------------------------------------------------------
# Activation functions
# ----------------------------------------------------------------------------------------------------

# name -> (default alpha, default beta, usable as a recurrent gate function)
# Defaults are the ONNX ones where ONNX has the function; "selu" uses alpha and beta for (alpha, gamma).
ACTIVATIONS = {
    "identity": (0.0, 0.0, False),
    "relu": (0.0, 0.0, True),
    "tanh": (0.0, 0.0, True),
    "sigmoid": (0.0, 0.0, True),
    "affine": (1.0, 0.0, True),  # alpha * x + beta
    "leaky_relu": (0.01, 0.0, True),  # x if x >= 0 else alpha * x
    "thresholded_relu": (1.0, 0.0, True),  # x if x > alpha else 0
    "scaled_tanh": (1.0, 1.0, True),  # alpha * tanh(beta * x)
    "hard_sigmoid": (0.2, 0.5, True),  # max(0, min(1, alpha * x + beta))
    "elu": (1.0, 0.0, True),  # x if x >= 0 else alpha * (exp(x) - 1)
    "softsign": (0.0, 0.0, True),  # x / (1 + |x|)
    "softplus": (0.0, 0.0, True),  # log(1 + exp(x))
    "selu": (1.67326319217681884765625, 1.05070102214813232421875, False),  # gamma * (x if x > 0 else alpha*(e^x-1))
    "softmax": (0.0, 0.0, False),  # over the feature axis
    "log_softmax": (0.0, 0.0, False),  # over the feature axis
}

# ONNX spelling -> ours, so that converters and users may write either.
_ALIASES = {
    "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "affine": "affine", "leakyrelu": "leaky_relu",
    "thresholdedrelu": "thresholded_relu", "scaledtanh": "scaled_tanh", "hardsigmoid": "hard_sigmoid",
    "elu": "elu", "softsign": "softsign", "softplus": "softplus", "selu": "selu", "softmax": "softmax",
    "logsoftmax": "log_softmax", "identity": "identity", "linear": "identity",
}


def _canonical_activation_name(name):
    if not isinstance(name, str):
        raise SpecError(f"an activation name must be a string, got {type(name).__name__} {name!r}")
    key = name.strip().lower()
    if key in ACTIVATIONS:
        return key
    key = key.replace("_", "")
    if key in _ALIASES:
        return _ALIASES[key]
    raise SpecError(f"unknown activation {name!r}; expected one of {', '.join(sorted(ACTIVATIONS))}")


def _f(value, what, owner="layer"):
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{owner}: {what} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise SpecError(f"{owner}: {what} must be finite, got {out}")
    return out


def _is_activation_like(value):
    """A name, an Activation, or a (name, alpha[, beta]) tuple: one function, not a list of them."""
    if isinstance(value, (str, Activation)):
        return True
    return (isinstance(value, (tuple, list)) and 1 <= len(value) <= 3 and isinstance(value[0], str)
            and all(v is None or isinstance(v, (int, float, np.number)) for v in value[1:]))


class Activation:
    """An elementwise function with its parameters; a layer of its own, or a recurrent gate function.

    ``Activation("hard_sigmoid")`` takes the ONNX defaults (alpha 0.2, beta 0.5); pass ``alpha``/``beta``
    to override. Names are ours (``leaky_relu``) or ONNX's (``LeakyRelu``).
    """

    kind = "activation"
    input_size = None   # any width: the layer before says

    def __init__(self, name, alpha=None, beta=None):
        self.name = _canonical_activation_name(name)
        default_alpha, default_beta, _ = ACTIVATIONS[self.name]
        self.alpha = default_alpha if alpha is None else _f(alpha, "alpha", f"activation {self.name}")
        self.beta = default_beta if beta is None else _f(beta, "beta", f"activation {self.name}")

    @classmethod
    def of(cls, value):
        """An Activation from an Activation, a name, or a ``(name, alpha, beta)`` tuple."""
        if isinstance(value, Activation):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, (tuple, list)) and 1 <= len(value) <= 3:
            return cls(*value)
        raise SpecError(f"expected an activation name, Activation or (name, alpha, beta), got {value!r}")

    @property
    def usable_in_cell(self):
        return ACTIVATIONS[self.name][2]

    def __eq__(self, other):
        return (isinstance(other, Activation) and self.name == other.name and self.alpha == other.alpha
                and self.beta == other.beta)

    def __hash__(self):
        return hash((self.name, self.alpha, self.beta))

    def __repr__(self):
        default_alpha, default_beta, _ = ACTIVATIONS[self.name]
        if (self.alpha, self.beta) == (default_alpha, default_beta):
            return f"Activation({self.name!r})"
        return f"Activation({self.name!r}, alpha={self.alpha!r}, beta={self.beta!r})"

    # layer protocol
    def output_size(self, input_size):
        return input_size

    def to_config(self):
        return {"kind": self.kind, "name": self.name, "alpha": self.alpha, "beta": self.beta}, {}

    @classmethod
    def from_config(cls, config, arrays):
        return cls(config["name"], config["alpha"], config["beta"])

    def validate(self, input_size, where):
        return input_size


# ----------------------------------------------------------------------------------------------------
# Array helpers
# ----------------------------------------------------------------------------------------------------

def _array(value, what, where, ndim):
    """A read-only float copy of ``value`` (float32 stays float32, anything else becomes float64)."""
    if value is None:
        return None
    try:
        arr = np.array(value, copy=True)
    except Exception as exc:  # noqa: BLE001 - report what the caller handed us
        raise SpecError(f"{where}: {what} is not an array ({exc})") from None
    if arr.dtype.kind not in "fiub":
        raise SpecError(f"{where}: {what} must hold numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32 if arr.dtype == np.float32 else np.float64, copy=False)
    if arr.ndim != ndim:
        raise SpecError(f"{where}: {what} must have {ndim} dimension(s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise SpecError(f"{where}: {what} holds NaN or infinite values")
    arr.setflags(write=False)
    return arr


def _expect_shape(arr, shape, what, where):
    if arr is not None and arr.shape != tuple(shape):
        raise SpecError(f"{where}: {what} must have shape {tuple(shape)}, got {arr.shape}")


def _positive_int(value, what, where, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SpecError(f"{where}: {what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------------------------------
# Recurrent layers
# ----------------------------------------------------------------------------------------------------

DIRECTIONS = ("forward", "reverse", "bidirectional")


class Recurrent:
    """Common part of LSTM, GRU and RNN layers. Construct those, not this.

    ``weights`` is one dict per direction (forward first) with the canonical arrays named in the module
    docstring; missing biases are zeros. ``activations`` is one tuple per direction, or one tuple used for
    every direction, or None for the cell's defaults.
    """

    cell = None
    gates = 0
    default_activations = ()
    kind = "recurrent"

    def __init__(self, input_size, hidden_size, weights, *, direction="forward", activations=None, clip=None,
                 initial_h=None, initial_c=None, proj_size=0, input_forget=False, linear_before_reset=True,
                 name=None):
        where = f"{self.cell.upper()} layer" + (f" {name!r}" if name else "")
        self.name = name
        self.input_size = _positive_int(input_size, "input_size", where)
        self.hidden_size = _positive_int(hidden_size, "hidden_size", where)
        if direction not in DIRECTIONS:
            raise SpecError(f"{where}: direction must be one of {DIRECTIONS}, got {direction!r}")
        self.direction = direction
        self.num_directions = 2 if direction == "bidirectional" else 1
        self.proj_size = 0 if proj_size in (None, 0) else _positive_int(proj_size, "proj_size", where)
        if self.proj_size and self.cell != "lstm":
            raise SpecError(f"{where}: proj_size is an LSTM feature, got proj_size={proj_size}")
        if self.proj_size and self.proj_size >= self.hidden_size:
            # PyTorch's own rule; a projection is meant to shrink the state.
            raise SpecError(f"{where}: proj_size ({self.proj_size}) must be smaller than hidden_size "
                            f"({self.hidden_size})")
        self.clip = None if clip is None else _f(clip, "clip", where)
        if self.clip is not None and self.clip <= 0:
            raise SpecError(f"{where}: clip must be > 0 (or None for no clipping), got {self.clip}")
        self.input_forget = bool(input_forget)
        if self.input_forget and self.cell != "lstm":
            raise SpecError(f"{where}: input_forget is an LSTM feature")
        self.linear_before_reset = bool(linear_before_reset) if self.cell == "gru" else False

        G, H, I, Ho, D = self.gates, self.hidden_size, self.input_size, self.output_hidden, self.num_directions
        if isinstance(weights, dict):
            weights = [weights]
        weights = list(weights)
        if len(weights) != D:
            raise SpecError(f"{where}: direction {direction!r} needs {D} weight set(s), got {len(weights)}")
        self.weights = []
        for d, w in enumerate(weights):
            dw = f"{where} direction {d}"
            unknown = set(w) - {"weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "peephole"}
            if unknown:
                raise SpecError(f"{dw}: unknown weight name(s) {sorted(unknown)}")
            for required in ("weight_ih", "weight_hh"):
                if w.get(required) is None:
                    raise SpecError(f"{dw}: {required} is required")
            arrs = {
                "weight_ih": _array(w["weight_ih"], "weight_ih", dw, 2),
                "weight_hh": _array(w["weight_hh"], "weight_hh", dw, 2),
                "bias_ih": _array(w.get("bias_ih"), "bias_ih", dw, 1),
                "bias_hh": _array(w.get("bias_hh"), "bias_hh", dw, 1),
                "weight_hr": _array(w.get("weight_hr"), "weight_hr", dw, 2),
                "peephole": _array(w.get("peephole"), "peephole", dw, 2),
            }
            _expect_shape(arrs["weight_ih"], (G * H, I), f"weight_ih ({G} gates x hidden {H}, input {I})", dw)
            _expect_shape(arrs["weight_hh"], (G * H, Ho), f"weight_hh ({G} gates x hidden {H}, state {Ho})", dw)
            _expect_shape(arrs["bias_ih"], (G * H,), "bias_ih", dw)
            _expect_shape(arrs["bias_hh"], (G * H,), "bias_hh", dw)
            if arrs["weight_hr"] is not None and not self.proj_size:
                raise SpecError(f"{dw}: weight_hr given but proj_size is 0")
            if self.proj_size and arrs["weight_hr"] is None:
                raise SpecError(f"{dw}: proj_size={self.proj_size} needs weight_hr of shape ({self.proj_size}, {H})")
            _expect_shape(arrs["weight_hr"], (self.proj_size, H), "weight_hr (proj_size, hidden)", dw)
            if arrs["peephole"] is not None and self.cell != "lstm":
                raise SpecError(f"{dw}: peepholes are an LSTM feature")
            _expect_shape(arrs["peephole"], (3, H), "peephole (gates i, f, o; hidden)", dw)
            self.weights.append({k: v for k, v in arrs.items() if v is not None})

        if activations is None:
            activations = [self.default_activations] * D
        else:
            activations = list(activations)
            # A flat list of activations applies to every direction; otherwise one list per direction.
            if all(_is_activation_like(a) for a in activations):
                activations = [activations] * D
            if len(activations) != D:
                raise SpecError(f"{where}: activations must give one list per direction ({D}), got {len(activations)}")
        self.activations = []
        for d, acts in enumerate(activations):
            acts = tuple(Activation.of(a) for a in acts)
            if len(acts) != len(self.default_activations):
                raise SpecError(f"{where}: a {self.cell.upper()} takes {len(self.default_activations)} activation "
                                f"functions per direction ({self._activation_roles}), got {len(acts)}")
            for a in acts:
                if not a.usable_in_cell:
                    raise SpecError(f"{where}: {a.name} cannot be a recurrent gate function")
            self.activations.append(acts)
        self.activations = tuple(self.activations)

        self.initial_h = _array(initial_h, "initial_h", where, 2)
        _expect_shape(self.initial_h, (D, Ho), "initial_h (directions, state size)", where)
        self.initial_c = _array(initial_c, "initial_c", where, 2)
        if self.initial_c is not None and self.cell != "lstm":
            raise SpecError(f"{where}: initial_c is an LSTM feature")
        _expect_shape(self.initial_c, (D, H), "initial_c (directions, hidden)", where)

    _activation_roles = ""

    @property
    def output_hidden(self):
        """Size of the hidden state h fed back and emitted per direction (proj_size if projected)."""
        return self.proj_size or self.hidden_size

    @property
    def has_peepholes(self):
        return any("peephole" in w for w in self.weights)

    def output_size(self, input_size=None):
        return self.num_directions * self.output_hidden

    def validate(self, input_size, where):
        if input_size != self.input_size:
            raise SpecError(f"{where}: {self.cell.upper()} expects input_size {self.input_size}, "
                            f"but the layer before it outputs {input_size}")
        return self.output_size()

    def __repr__(self):
        extras = []
        if self.direction != "forward":
            extras.append(f"direction={self.direction!r}")
        if self.proj_size:
            extras.append(f"proj_size={self.proj_size}")
        if self.clip is not None:
            extras.append(f"clip={self.clip}")
        if self.input_forget:
            extras.append("input_forget=True")
        if self.has_peepholes:
            extras.append("peepholes")
        if self.cell == "gru":
            extras.append(f"linear_before_reset={int(self.linear_before_reset)}")
        if any(a != tuple(Activation.of(x) for x in self.default_activations) for a in self.activations):
            extras.append("activations=" + "/".join(",".join(a.name for a in acts) for acts in self.activations))
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}{''.join(', ' + e for e in extras)})"

    # ---- serialization: a JSON-able config plus named arrays ----
    def to_config(self):
        config = {
            "kind": self.kind, "cell": self.cell, "name": self.name, "input_size": self.input_size,
            "hidden_size": self.hidden_size, "direction": self.direction, "proj_size": self.proj_size,
            "clip": self.clip, "input_forget": self.input_forget,
            "linear_before_reset": self.linear_before_reset,
            "activations": [[[a.name, a.alpha, a.beta] for a in acts] for acts in self.activations],
        }
        arrays = {}
        for d, w in enumerate(self.weights):
            for key, arr in w.items():
                arrays[f"dir{d}.{key}"] = arr
        if self.initial_h is not None:
            arrays["initial_h"] = self.initial_h
        if self.initial_c is not None:
            arrays["initial_c"] = self.initial_c
        return config, arrays

    @classmethod
    def from_config(cls, config, arrays):
        D = 2 if config["direction"] == "bidirectional" else 1
        weights = [{k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(f"dir{d}.")} for d in range(D)]
        kwargs = dict(direction=config["direction"], clip=config["clip"], name=config.get("name"),
                      activations=[[tuple(a) for a in acts] for acts in config["activations"]],
                      initial_h=arrays.get("initial_h"))
        if cls is LSTM:
            kwargs.update(proj_size=config["proj_size"], input_forget=config["input_forget"],
                          initial_c=arrays.get("initial_c"))
        if cls is GRU:
            kwargs.update(linear_before_reset=config["linear_before_reset"])
        return cls(config["input_size"], config["hidden_size"], weights, **kwargs)


class LSTM(Recurrent):
    """LSTM layer; gates i, f, g, o; activations (f, g, h), default (sigmoid, tanh, tanh)."""

    cell = "lstm"
    gates = 4
    default_activations = ("sigmoid", "tanh", "tanh")
    _activation_roles = "f for the i/f/o gates, g for the cell candidate, h for the output"

    def __init__(self, input_size, hidden_size, weights, *, direction="forward", activations=None, clip=None,
                 initial_h=None, initial_c=None, proj_size=0, input_forget=False, name=None):
        super().__init__(input_size, hidden_size, weights, direction=direction, activations=activations,
                         clip=clip, initial_h=initial_h, initial_c=initial_c, proj_size=proj_size,
                         input_forget=input_forget, name=name)


class GRU(Recurrent):
    """GRU layer; gates r, z, n; activations (f, g), default (sigmoid, tanh)."""

    cell = "gru"
    gates = 3
    default_activations = ("sigmoid", "tanh")
    _activation_roles = "f for the r/z gates, g for the candidate"

    def __init__(self, input_size, hidden_size, weights, *, direction="forward", activations=None, clip=None,
                 initial_h=None, linear_before_reset=True, name=None):
        super().__init__(input_size, hidden_size, weights, direction=direction, activations=activations,
                         clip=clip, initial_h=initial_h, linear_before_reset=linear_before_reset, name=name)


class RNN(Recurrent):
    """Vanilla (Elman) RNN layer; one gate; activations (f,), default (tanh,)."""

    cell = "rnn"
    gates = 1
    default_activations = ("tanh",)
    _activation_roles = "f"

    def __init__(self, input_size, hidden_size, weights, *, direction="forward", activations=None, clip=None,
                 initial_h=None, name=None):
        super().__init__(input_size, hidden_size, weights, direction=direction, activations=activations,
                         clip=clip, initial_h=initial_h, name=name)


# ----------------------------------------------------------------------------------------------------
# Non-recurrent layers
# ----------------------------------------------------------------------------------------------------

class Dense:
    """y = x @ weight.T + bias, with ``weight`` (out_features, in_features) as in torch.nn.Linear."""

    kind = "dense"

    def __init__(self, weight, bias=None, name=None):
        where = "Dense layer" + (f" {name!r}" if name else "")
        self.name = name
        self.weight = _array(weight, "weight", where, 2)
        self.bias = _array(bias, "bias", where, 1)
        _expect_shape(self.bias, (self.weight.shape[0],), "bias (out_features,)", where)

    @property
    def in_features(self):
        return self.weight.shape[1]

    input_size = in_features

    @property
    def out_features(self):
        return self.weight.shape[0]

    def output_size(self, input_size=None):
        return self.out_features

    def validate(self, input_size, where):
        if input_size != self.in_features:
            raise SpecError(f"{where}: Dense weight has shape {self.weight.shape} (out, in) and expects "
                            f"{self.in_features} inputs, but the layer before it outputs {input_size}")
        return self.out_features

    def __repr__(self):
        return f"Dense({self.in_features} -> {self.out_features}{'' if self.bias is not None else ', no bias'})"

    def to_config(self):
        arrays = {"weight": self.weight}
        if self.bias is not None:
            arrays["bias"] = self.bias
        return {"kind": self.kind, "name": self.name}, arrays

    @classmethod
    def from_config(cls, config, arrays):
        return cls(arrays["weight"], arrays.get("bias"), name=config.get("name"))


class Normalize:
    """Affine input normalization, y = (x - mean) * scale, per feature (as sensor pipelines standardize)."""

    kind = "normalize"

    def __init__(self, mean, scale, name=None):
        where = "Normalize layer" + (f" {name!r}" if name else "")
        self.name = name
        self.mean = _array(mean, "mean", where, 1)
        self.scale = _array(scale, "scale", where, 1)
        _expect_shape(self.scale, self.mean.shape, "scale (same as mean)", where)

    @property
    def size(self):
        return self.mean.shape[0]

    input_size = size

    def output_size(self, input_size=None):
        return self.size

    def validate(self, input_size, where):
        if input_size != self.size:
            raise SpecError(f"{where}: Normalize has {self.size} features, but its input has {input_size}")
        return self.size

    def __repr__(self):
        return f"Normalize({self.size})"

    def to_config(self):
        return {"kind": self.kind, "name": self.name}, {"mean": self.mean, "scale": self.scale}

    @classmethod
    def from_config(cls, config, arrays):
        return cls(arrays["mean"], arrays["scale"], name=config.get("name"))


LAYER_KINDS = {"activation": Activation, "dense": Dense, "normalize": Normalize}
RECURRENT_CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def layer_from_config(config, arrays):
    kind = config.get("kind")
    if kind == "recurrent":
        cls = RECURRENT_CELLS.get(config.get("cell"))
        if cls is None:
            raise SpecError(f"unknown recurrent cell {config.get('cell')!r}; expected one of {sorted(RECURRENT_CELLS)}")
        return cls.from_config(config, arrays)
    if kind not in LAYER_KINDS:
        raise SpecError(f"unknown layer kind {kind!r}; expected one of {sorted(LAYER_KINDS) + ['recurrent']}")
    return LAYER_KINDS[kind].from_config(config, arrays)


# ----------------------------------------------------------------------------------------------------
# The model description
# ----------------------------------------------------------------------------------------------------

DTYPES = ("float32", "float64")


class ModelSpec:
    """An ordered list of layers, validated as a chain, plus the dtype the model runs in by default.

    ``input_size`` is taken from the first layer that has one (a Normalize, Dense or recurrent layer);
    a model that starts with an activation must say it.
    """

    def __init__(self, layers, input_size=None, dtype="float32", name=None, metadata=None):
        layers = list(layers)
        if not layers:
            raise SpecError("a ModelSpec needs at least one layer")
        for i, layer in enumerate(layers):
            if isinstance(layer, str):
                layers[i] = Activation(layer)
            elif not hasattr(layer, "validate"):
                raise SpecError(f"layer {i}: expected an LSTM, GRU, RNN, Dense, Normalize or Activation, "
                                f"got {type(layer).__name__}")
        if input_size is None:
            input_size = next((layer.input_size for layer in layers if layer.input_size is not None), None)
            if input_size is None:
                raise SpecError("a model of activations only needs input_size")
        self.input_size = _positive_int(input_size, "input_size", "ModelSpec")
        dtype = np.dtype(dtype).name
        if dtype not in DTYPES:
            raise SpecError(f"ModelSpec dtype must be one of {DTYPES}, got {dtype}")
        self.dtype = dtype
        self.name = name
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        size = self.input_size
        for i, layer in enumerate(layers):
            size = layer.validate(size, f"layer {i} ({type(layer).__name__})")
        self.layers = tuple(layers)
        self.output_size = size

    @property
    def streamable(self):
        """True when every layer can be stepped one timestep at a time (none reads the future, as a reverse
        or bidirectional RNN does)."""
        from .layers import kind_of

        return not any(kind_of(layer).reads_future(layer) for layer in self.layers)

    def __repr__(self):
        body = "".join(f"\n  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"ModelSpec(input_size={self.input_size}, output_size={self.output_size}, dtype={self.dtype}){body}"

    def save(self, path):
        """Write the native format (.npz with a JSON header; see engine.io); returns the path written."""
        from .io import save_spec
        return save_spec(self, path)
