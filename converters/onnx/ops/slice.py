"""ONNX Slice (1: attributes; 10: inputs, steps): splits zero states, slices shape vectors, and reverses time.

A step of -1 over the whole time axis of the data (some exporters run a backward direction as
reverse -> forward RNN -> reverse) marks the data time-reversed; a recurrent layer then runs in the other
direction and a second reversal restores the order.
"""

import numpy as np

from engine.spec import Slice

from ..graph import BIG, CacheCat, CacheOut, Dyn, Late, SymVec, Unsupported, Zeros
from ._late import late_slice
from ._common import attrs, norm_axes, set_out



def _slice(ctx, node, starts, ends, axes, steps):
    v = ctx.value(node.input[0])
    if axes is None:
        axes = list(range(len(starts)))
    steps = steps or [1] * len(starts)
    if isinstance(v, SymVec):
        if axes not in ([0], [-1]):
            raise Unsupported("shape vectors are 1-D")
        set_out(ctx, node, SymVec(v.items[slice(starts[0], ends[0] if abs(ends[0]) < BIG else None, steps[0])]))
        return
    if isinstance(v, Zeros):
        shape = list(v.shape)
        for a, s, e, st in zip(norm_axes(axes, len(shape)), starts, ends, steps):
            if not isinstance(shape[a], int):
                raise Unsupported("slicing a zero tensor along a dynamic axis")
            shape[a] = len(range(*slice(s, e, st).indices(shape[a])))
        set_out(ctx, node, Zeros(shape))
        return
    if isinstance(v, Late):
        set_out(ctx, node, late_slice(v, starts, ends, axes, steps))
        return
    if isinstance(v, CacheCat):
        axes = norm_axes(axes, len(v.data.roles))
        if axes != [v.axis] or steps[0] != 1 or starts[0] != -v.frames or ends[0] < BIG:
            raise Unsupported(f"a slice (axes {axes}, starts {starts}, ends {ends}) of the cache concatenation other "
                              f"than its last {v.frames} frames along time (the next cache)")
        set_out(ctx, node, CacheOut(v.loop))
        return
    if isinstance(v, Dyn):
        axes = norm_axes(axes, len(v.roles))
        cut = _frame_slices(ctx, v, axes, starts, ends, steps)
        if cut is not None:
            set_out(ctx, node, cut)
            return
        if len(axes) == 1 and ctx.resolve(v.roles[axes[0]]) in ("T", "x0", "x1") and steps[0] == -1 \
                and starts[0] in (-1, BIG - 1, 2 ** 63 - 1) and ends[0] <= -BIG:
            set_out(ctx, node, Dyn(v.roles, v.sizes, v.edge, not v.reversed_time))
            return
        raise Unsupported(f"slicing the data (axes {axes}, starts {starts}, ends {ends}, steps {steps}) is not "
                          f"supported; only reversing the whole time axis is")
    raise Unsupported(f"Slice of a {type(v).__name__}")


def convert_slice_1(ctx, node):
    a = attrs(node)
    _slice(ctx, node, list(a["starts"]), list(a["ends"]), a.get("axes"), None)


def convert_slice_10(ctx, node):
    get = lambda i, what: None if len(node.input) <= i or not node.input[i] else [  # noqa: E731
        int(x) for x in np.asarray(ctx.const(node, i, what)).reshape(-1)]
    _slice(ctx, node, get(1, "starts"), get(2, "ends"), get(3, "axes"), get(4, "steps"))


def _frame_slices(ctx, v, axes, starts, ends, steps):
    """Slices along the frame's axes (engine Slice nodes) where every other sliced axis is kept whole; None when
    some time or batch axis is really cut."""
    roles = [ctx.resolve(r) for r in v.roles]
    frame = [r for r in roles if r in ("C", "F")]
    cuts = []
    for a, s, e, st in zip(axes, starts, ends, steps):
        whole = s == 0 and st == 1 and e >= BIG
        if roles[a] in ("C", "F") and v.sizes.get(roles[a]) is not None:
            if not whole:
                cuts.append((a, s, e, st))
        elif not whole and not (roles[a] == "1" and s in (0, -1) and st == 1 and e >= 1):
            return None
    sizes = dict(v.sizes)
    for a, s, e, st in cuts:
        size = len(range(*slice(s, e, st).indices(sizes[roles[a]])))
        if size == 0:
            raise Unsupported(f"the slice {s}:{e}:{st} of axis {a} leaves nothing")
        v = ctx.emit(v, Slice(frame.index(roles[a]), s, None if e >= BIG else e, st))
        sizes[roles[a]] = size
    return Dyn(v.roles, sizes, v.edge, v.reversed_time)
