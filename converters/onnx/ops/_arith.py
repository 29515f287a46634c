"""Shared body of Add, Sub, Mul, Div: data (op) a per-feature constant -> Normalize, or a Dense's bias."""

import numpy as np

from engine import Dense

from ..graph import Dyn, Unsupported
from ._common import feature_constant, set_out


def arith(ctx, node, op):
    a, b = ctx.value(node.input[0]), ctx.value(node.input[1])
    if isinstance(a, Dyn) and isinstance(b, Dyn):
        raise Unsupported(f"{op} of two data tensors (a residual or gated branch) is not supported")
    data_first = isinstance(a, Dyn)
    dyn, c = (a, b) if data_first else (b, a)
    if not isinstance(dyn, Dyn) or not isinstance(c, np.ndarray):
        raise Unsupported(f"{op} of a {type(a).__name__} and a {type(b).__name__}")
    if "D" in [ctx.resolve(r) for r in dyn.roles]:
        raise Unsupported(f"{op} on data whose directions are not yet merged into its features")
    c = feature_constant(dyn, c)
    if op == "Add":
        last = ctx.layers[-1] if ctx.layers else None
        if isinstance(last, Dense) and last.bias is None and dyn.stage == len(ctx.layers):
            ctx.layers[-1] = Dense(last.weight, np.broadcast_to(c, (last.out_features,)), name=last.name)  # MatMul + Add
            set_out(ctx, node, dyn)
            return
        set_out(ctx, node, ctx.emit_normalize(dyn, -c, 1.0))
    elif op == "Sub":
        set_out(ctx, node, ctx.emit_normalize(dyn, c, 1.0) if data_first else ctx.emit_normalize(dyn, c, -1.0))
    elif op == "Mul":
        set_out(ctx, node, ctx.emit_normalize(dyn, 0.0, c))
    elif op == "Div":
        if not data_first:
            raise Unsupported("a constant divided by the data")
        set_out(ctx, node, ctx.emit_normalize(dyn, 0.0, 1.0 / c))
