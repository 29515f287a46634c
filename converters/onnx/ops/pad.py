"""ONNX Pad (2: pads attribute; 11: pads input, constant_value; 18: axes): padding of a frame's axes -> engine Pad;
zero padding is nothing (exporters write it around every convolution). Time and batch are never padded."""

import numpy as np

from engine.spec import Pad

from ..graph import FRAME_ROLES, Dyn, Unsupported
from ._common import attrs, norm_axes, set_out

MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge"}


def _pad(ctx, node, pads, value, axes):
    x = ctx.value(node.input[0])
    if not isinstance(x, Dyn):
        raise Unsupported(f"Pad of a {type(x).__name__}")
    mode = attrs(node).get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in MODES:
        raise Unsupported(f"mode {mode!r} (constant, reflect or edge)")
    r = len(x.roles)
    axes = list(range(r)) if axes is None else norm_axes(axes, r)
    if len(pads) != 2 * len(axes):
        raise Unsupported(f"pads {pads} for {len(axes)} axes")
    per_axis = {a: (int(pads[k]), int(pads[k + len(axes)])) for k, a in enumerate(axes)}
    if any(b < 0 or e < 0 for b, e in per_axis.values()):
        raise Unsupported("negative pads (a crop) are not supported")
    padded = {a: p for a, p in per_axis.items() if p != (0, 0)}
    if not padded:
        set_out(ctx, node, x)
        return
    roles = [ctx.resolve(rr) for rr in x.roles]
    for a in padded:
        if roles[a] not in FRAME_ROLES:
            raise Unsupported(f"padding axis {a} ({roles[a]}); rnnjit pads a frame's own axes, not time or batch")
    frame = [i for i, rr in enumerate(roles) if rr in FRAME_ROLES]
    layer = Pad([padded.get(i, (0, 0)) for i in frame], MODES[mode], value)
    out = ctx.emit(x, layer)
    sizes = dict(x.sizes)
    for a, (b, e) in padded.items():
        sizes[roles[a]] = sizes[roles[a]] + b + e
    set_out(ctx, node, Dyn(x.roles, sizes, out.edge, x.reversed_time))


def convert_pad_2(ctx, node):
    a = attrs(node)
    _pad(ctx, node, list(a.get("pads", [])), float(a.get("value", 0.0)), None)


def convert_pad_11(ctx, node):
    pads = [int(v) for v in np.asarray(ctx.const(node, 1, "pads")).reshape(-1)]
    value = ctx.const(node, 2, "constant_value", np.zeros(()))
    axes = ctx.const(node, 3, "axes")
    _pad(ctx, node, pads, float(np.asarray(value).reshape(())),
         None if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)])


