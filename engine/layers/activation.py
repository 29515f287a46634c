"""Activation: a function applied elementwise, or softmax / log-softmax over the features; also what a recurrent
cell's gate functions are. Packed as its code (meta[M_CODE], kernels/activations.py's CODES) and params
[alpha, beta]."""

import numpy as np

from ..errors import SpecError
from ..kernels import layout as L
from ..kernels.activations import CODES, activation_entry, activation_step
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


class ActivationKind(Kind):
    name, code, spec_class = "activation", L.OP_ACT, Activation
    step, entry = staticmethod(activation_step), staticmethod(activation_entry)

    def pack(self, layer, in_size, dtype):
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        meta[L.M_CODE] = CODES[layer.name]
        return Packed(layer, self, np.array([layer.alpha, layer.beta], dtype=dtype), meta, in_size, in_size)


KIND = ActivationKind()
