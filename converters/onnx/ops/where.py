"""ONNX Where (9, 16) on a condition known at load time, as a mask is applied (``Where(mask, x, -inf)``,
``Where(mask, x, 0)``): per feature, out = x * m + where(m, 0, c) for data x and a constant c, or
a * m + b * (1 - m) for two data tensors, with m the condition as 0/1. The constant term is worked out with
numpy's where, so an infinite constant never meets a zero. A condition computed from the data is refused."""

import numpy as np

from engine import Dense

from ..graph import Dyn, Unsupported
from ._arith import two_edges
from ._common import feature_constant, set_out


def convert_where_9(ctx, node):
    cond, a, b = (ctx.value(n) for n in node.input[:3])
    if not isinstance(cond, np.ndarray):
        raise Unsupported(f"Where on a condition computed from the data ({type(cond).__name__}); rnnjit applies "
                          f"masks known when the model loads")
    m = np.asarray(cond).astype(bool)
    if isinstance(a, Dyn) and isinstance(b, Dyn):
        mask = feature_constant(a, m.astype(np.float64))
        left = ctx.emit_normalize(a, 0.0, mask)
        right = ctx.emit_normalize(b, 0.0, 1.0 - mask)
        set_out(ctx, node, two_edges(ctx, left, right, "add"))
        return
    if isinstance(a, Dyn) and isinstance(b, np.ndarray):
        x, keep, other = a, m, np.asarray(b, np.float64)
    elif isinstance(b, Dyn) and isinstance(a, np.ndarray):
        x, keep, other = b, ~m, np.asarray(a, np.float64)
    else:
        raise Unsupported(f"Where of a {type(a).__name__} and a {type(b).__name__}")
    keep, other = np.broadcast_arrays(keep, other)
    scale = np.broadcast_to(feature_constant(x, keep.astype(np.float64)), (x.feat,))
    offset = np.broadcast_to(feature_constant(x, np.where(keep, 0.0, other)), (x.feat,))
    if not np.any(offset != 0):
        set_out(ctx, node, ctx.emit_normalize(x, 0.0, scale))
        return
    if not np.all(np.isfinite(offset)) or x.frame_roles != ("F",):
        raise Unsupported("Where filling masked features with a non-finite constant, or over frames of more than one "
                          "axis")
    # x * keep + offset: a Dense with a diagonal weight (a Normalize's (x - mean) * scale cannot give a constant
    # where its scale is 0)
    set_out(ctx, node, ctx.emit(x, Dense(np.diag(scale), offset.copy())))
