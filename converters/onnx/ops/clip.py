"""ONNX Clip (6: min/max attributes; 11+: min/max inputs): a clip activation (torch's Hardtanh, ReLU6)."""

import numpy as np

from engine import Activation

from ..graph import Dyn, Unsupported
from ._common import attrs, set_out


def _clip(ctx, node, lo, hi):
    x = ctx.value(node.input[0])
    if not isinstance(x, Dyn):
        raise Unsupported(f"Clip of a {type(x).__name__}")
    set_out(ctx, node, ctx.emit(x, Activation("clip", lo, hi)))


def convert_clip_6(ctx, node):
    a = attrs(node)
    _clip(ctx, node, float(a.get("min", -3.4028234663852886e38)), float(a.get("max", 3.4028234663852886e38)))


def convert_clip_11(ctx, node):
    lo = ctx.const(node, 1, "min")
    hi = ctx.const(node, 2, "max")
    for v, what in ((lo, "min"), (hi, "max")):
        if v is not None and np.size(v) != 1:
            raise Unsupported(f"a {what} of shape {np.shape(v)}")
    big = float(np.finfo(np.float32).max)      # (an open side: no float32 value is clipped there)
    _clip(ctx, node, -big if lo is None else max(-big, float(np.asarray(lo).reshape(()))),
          big if hi is None else min(big, float(np.asarray(hi).reshape(()))))
