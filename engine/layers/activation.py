"""Activation: a function applied elementwise, or softmax / log-softmax over the features; also what a recurrent
cell's gate functions are. Packed as its code (meta[M_CODE], kernels/activations.py's CODES) and params
[alpha, beta]."""

import numpy as np

from ..errors import SpecError
from ..kernels import layout as L
from ..kernels.activations import CODES, EPILOGUE_CODES, activation_entry, activation_step
from .base import Kind, Packed
from .validate import _f

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
    "softmax": (0.0, 0.0, False),  # along one axis of the frame (``axis``, the last by default)
    "log_softmax": (0.0, 0.0, False),  # along one axis of the frame
    "clip": (-1.0, 1.0, False),  # min(max(x, alpha), beta): torch's Hardtanh, ONNX Clip
    "relu6": (0.0, 6.0, False),  # clip to [0, 6]
    "gelu": (0.0, 0.0, False),  # x * Phi(x), the exact (erf) form: torch GELU(approximate="none")
    "gelu_tanh": (0.0, 0.0, False),  # torch GELU(approximate="tanh")
    "silu": (0.0, 0.0, False),  # x * sigmoid(x): SiLU, Swish
    "mish": (0.0, 0.0, False),  # x * tanh(softplus(x))
    "hard_swish": (0.0, 0.0, False),  # x * relu6(x + 3) / 6
    # elementwise math (ONNX Sqrt, Exp, Log, Abs, Neg, Reciprocal; Pow with a constant exponent alpha)
    "sqrt": (0.0, 0.0, False),
    "exp": (0.0, 0.0, False),
    "log": (0.0, 0.0, False),
    "abs": (0.0, 0.0, False),
    "neg": (0.0, 0.0, False),
    "reciprocal": (0.0, 0.0, False),
    "pow": (2.0, 0.0, False),  # x ** alpha
}
# hard_sigmoid's (alpha, beta) default to ONNX's and Keras 2's (0.2, 0.5); PyTorch's Hardsigmoid and Keras 3's
# hard_sigmoid are (1/6, 0.5): converters pass them.

# ONNX spelling -> ours, so that converters and users may write either.
_ALIASES = {
    "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "affine": "affine", "leakyrelu": "leaky_relu",
    "thresholdedrelu": "thresholded_relu", "scaledtanh": "scaled_tanh", "hardsigmoid": "hard_sigmoid",
    "elu": "elu", "softsign": "softsign", "softplus": "softplus", "selu": "selu", "softmax": "softmax",
    "logsoftmax": "log_softmax", "identity": "identity", "linear": "identity", "hardtanh": "clip",
    "swish": "silu", "hardswish": "hard_swish", "gelutanh": "gelu_tanh",
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

    def __init__(self, name, alpha=None, beta=None, axis=-1):
        self.name = _canonical_activation_name(name)
        default_alpha, default_beta, _ = ACTIVATIONS[self.name]
        self.alpha = default_alpha if alpha is None else _f(alpha, "alpha", f"activation {self.name}")
        self.beta = default_beta if beta is None else _f(beta, "beta", f"activation {self.name}")
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise SpecError(f"activation {self.name}: axis must be an integer, got {axis!r}")
        if axis != -1 and self.name not in ("softmax", "log_softmax"):
            raise SpecError(f"activation {self.name}: axis applies to softmax and log_softmax only, got axis={axis}")
        self.axis = int(axis)
        if self.name == "clip" and self.alpha > self.beta:
            raise SpecError(f"activation clip: the minimum alpha={self.alpha} exceeds the maximum beta={self.beta}")

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
                and self.beta == other.beta and self.axis == other.axis)

    def __hash__(self):
        return hash((self.name, self.alpha, self.beta, self.axis))

    def __repr__(self):
        default_alpha, default_beta, _ = ACTIVATIONS[self.name]
        axis = "" if self.axis == -1 else f", axis={self.axis}"
        if (self.alpha, self.beta) == (default_alpha, default_beta):
            return f"Activation({self.name!r}{axis})"
        return f"Activation({self.name!r}, alpha={self.alpha!r}, beta={self.beta!r}{axis})"

    # layer protocol
    def output_size(self, input_size):
        return input_size

    def to_config(self):
        config = {"kind": self.kind, "name": self.name, "alpha": self.alpha, "beta": self.beta}
        if self.axis != -1:
            config["axis"] = self.axis
        return config, {}

    @classmethod
    def from_config(cls, config, arrays):
        return cls(config["name"], config["alpha"], config["beta"], config.get("axis", -1))

    def validate(self, input_size, where):
        return input_size


class ActivationKind(Kind):
    name, code, spec_class = "activation", L.OP_ACT, Activation
    step, entry = staticmethod(activation_step), staticmethod(activation_entry)

    def infer(self, layer, inputs, where):
        """Frames of any shape; softmax and log_softmax need the axis they run along to exist."""
        (edge, shape, dtype), = inputs
        if dtype != "float":
            raise SpecError(f"{where}: {layer.name} reads float frames, but edge {edge!r} carries {dtype} ids")
        if not -len(shape) <= layer.axis < len(shape):
            raise SpecError(f"{where}: {layer.name} along axis {layer.axis}, but edge {edge!r} carries frames of "
                            f"shape {shape} ({len(shape)} axes)")
        return tuple(shape), "float"

    def epilogue_code(self, layer):
        code = CODES[layer.name]
        return code if code in EPILOGUE_CODES else None

    def pack_node(self, layer, shapes, dtype):
        (shape,) = shapes
        size = int(np.prod(shape))
        axis = layer.axis % len(shape)
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        meta[L.M_CODE] = CODES[layer.name]
        # softmax's axis: the frame as (outer, axis length, inner); left 0 for a 1-D frame (the meta chains always
        # had, so their model identity, and their snapshots, stay valid)
        if len(shape) > 1:
            meta[L.M_H], meta[L.M_HO], meta[L.M_D] = (int(np.prod(shape[:axis])), shape[axis],
                                                      int(np.prod(shape[axis + 1:])))
        return Packed(layer, self, np.array([layer.alpha, layer.beta], dtype=dtype), meta, size, size)


KIND = ActivationKind()
