"""ONNX Sqrt, Exp, Log, Abs, Neg, Reciprocal (6, 13), Erf (9, 13) and Pow (7+, a constant exponent): elementwise
activations (engine Activation)."""

import numpy as np

from ..graph import Dyn, Unsupported
from ._activation import activation
from ._common import attrs, set_out


def _unary(name):
    def convert(ctx, node):
        activation(ctx, node, name)

    convert.__name__ = f"convert_{name}"
    return convert


# op type -> the engine activation (each the same elementwise function of one input)
UNARY = {"Sqrt": "sqrt", "Exp": "exp", "Log": "log", "Abs": "abs", "Neg": "neg", "Reciprocal": "reciprocal"}
CONVERTERS = {op: _unary(name) for op, name in UNARY.items()}


def convert_gelu_1(ctx, node):
    """Gelu (20; from 1 here, as fusions.py writes it for the Erf form at any opset): approximate "none" or
    "tanh"."""
    a = attrs(node).get("approximate", b"none")
    a = a.decode() if isinstance(a, bytes) else a
    if a not in ("none", "tanh"):
        raise Unsupported(f"approximate={a!r}")
    activation(ctx, node, "gelu" if a == "none" else "gelu_tanh", allowed=("approximate",))


def convert_pow_7(ctx, node):
    from engine import Activation

    x = ctx.value(node.input[0])
    if not isinstance(x, Dyn):
        raise Unsupported(f"Pow of a {type(x).__name__} (the base must be the data)")
    e = ctx.const(node, 1, "the exponent")
    if np.size(e) != 1:
        raise Unsupported(f"an exponent of shape {np.shape(e)}; rnnjit raises to one constant power")
    set_out(ctx, node, ctx.emit(x, Activation("pow", float(np.asarray(e).reshape(())))))
