"""ONNX Einsum (12) with one data operand and one constant, as exporters write grouped or per-head linear layers
(``"btgi,gio->btgo"``, ``"...i,oi->...o"``): a linear map of each frame (_linear.py), the batch and time letters
passing through. An Einsum of two data tensors (attention scores) is refused."""

import re

import numpy as np

from ..graph import Dyn, Unsupported
from ._common import attrs, reject_attributes, set_out
from ._linear import frame_linear


def convert_einsum_12(ctx, node):
    reject_attributes(node, {"equation"})
    eq = attrs(node)["equation"]
    eq = (eq.decode() if isinstance(eq, bytes) else eq).replace(" ", "")
    if len(node.input) != 2 or "->" not in eq or not re.fullmatch(r"[a-zA-Z.]+,[a-zA-Z.]+->[a-zA-Z.]*", eq):
        raise Unsupported(f"Einsum {eq!r}: rnnjit converts two operands with an explicit output (a->b form)")
    values = [ctx.value(n) for n in node.input]
    data = [i for i, v in enumerate(values) if isinstance(v, Dyn)]
    if len(data) != 1 or not isinstance(values[1 - data[0]], np.ndarray):
        raise Unsupported(f"Einsum {eq!r} of {[type(v).__name__ for v in values]}: rnnjit converts one data operand "
                          f"and one constant (a linear layer)")
    i = data[0]
    x, w = values[i], np.asarray(values[1 - i], np.float64)
    terms, out = eq.split("->")
    terms = terms.split(",")
    if "..." in terms[1 - i]:
        raise Unsupported(f"Einsum {eq!r}: an ellipsis in the constant")
    letters = terms[i]
    if "..." in letters:   # the ellipsis stands for the data's leading axes
        n_ell = len(x.roles) - len(letters.replace("...", ""))
        spare = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in eq][:n_ell]
        letters = letters.replace("...", "".join(spare))
        out = out.replace("...", "".join(spare))
        sub = f"{letters},{terms[1 - i]}->{out}" if i == 0 else f"{terms[1 - i]},{letters}->{out}"
    else:
        sub = eq
    if len(letters) != len(x.roles):
        raise Unsupported(f"Einsum {eq!r}: operand {i} has {len(letters)} axes, the data {len(x.roles)}")
    roles = [ctx.resolve(r) for r in x.roles]
    role_of = dict(zip(letters, roles))
    out_roles, frame_letters = [], [c for c in out if role_of.get(c) not in ("B", "T", "x0", "x1")]
    for c in out:
        r = role_of.get(c)
        if r in ("B", "T", "x0", "x1"):
            if c in terms[1 - i]:
                raise Unsupported(f"Einsum {eq!r}: the constant has the {r} axis")
            out_roles.append(r)
        else:
            out_roles.append("F" if c == frame_letters[-1] else "C")
    if len(frame_letters) > 2:
        raise Unsupported(f"Einsum {eq!r} gives frames of {len(frame_letters)} axes; rnnjit's frames have at most 2")

    def apply(arr):
        return np.einsum(sub, arr, w) if i == 0 else np.einsum(sub, w, arr)
    set_out(ctx, node, frame_linear(ctx, x, apply, out_roles, f"Einsum {eq!r}"))
