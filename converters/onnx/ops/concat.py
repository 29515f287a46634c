"""ONNX Concat (1, 4, 11, 13): joins shape vectors (symbolic or constant) or zero tensors; a cache input before
the data along time (a streaming export's convolution cache, graph.CacheCat); data tensors along their frame's
last axis (engine Concat)."""

import numpy as np

from engine.spec import Concat

from ..graph import CacheCat, Dyn, Late, RuntimeInput, SymVec, Unsupported, Zeros
from ._common import attrs, norm_axes, set_out
from ._late import late_concat


def convert_concat_1(ctx, node):
    values = [ctx.value(i) for i in node.input if i]
    axis = attrs(node).get("axis", 0)
    if all(isinstance(v, (SymVec, np.ndarray)) for v in values):
        items = []
        for v in values:
            items += v.items if isinstance(v, SymVec) else [int(x) for x in np.asarray(v).reshape(-1)]
        set_out(ctx, node, SymVec(items))
        return
    if all(isinstance(v, (Zeros, np.ndarray)) for v in values) and all(
            isinstance(v, Zeros) or not np.any(v) for v in values):
        shapes = [list(v.shape) for v in values]
        total = sum(s[axis] for s in shapes)
        shape = list(shapes[0])
        shape[axis] = total
        set_out(ctx, node, Zeros(shape))
        return
    if all(isinstance(v, Late) for v in values):
        set_out(ctx, node, late_concat(values, axis))
        return
    if len(values) == 2 and isinstance(values[0], RuntimeInput) and isinstance(values[1], Dyn):
        set_out(ctx, node, _cache(ctx, values[0], values[1], axis))
        return
    if len(values) > 1 and all(isinstance(v, Dyn) for v in values):
        set_out(ctx, node, _frames(ctx, values, axis))
        return
    raise Unsupported(f"Concat of {[type(v).__name__ for v in values]} is not supported")


def _cache(ctx, cache, data, axis):
    axis = norm_axes([axis], len(data.roles))[0]
    if ctx.resolve(data.roles[axis]) not in ("T", "x0", "x1"):
        raise Unsupported(f"input {cache.name!r} is concatenated before the data along {ctx.resolve(data.roles[axis])},"
                          f" not along time (a cache of past frames)")
    if len(cache.dims) != len(data.roles) or not isinstance(cache.dims[axis], int) or cache.dims[axis] < 1:
        raise Unsupported(f"cache input {cache.name!r} {cache.dims} does not have the data's rank with a static "
                          f"number of frames along time")
    for i, r in enumerate(data.roles):
        size = data.sizes.get(ctx.resolve(r))
        if i != axis and size is not None and isinstance(cache.dims[i], int) and cache.dims[i] != size:
            raise Unsupported(f"cache input {cache.name!r} {cache.dims} does not fit the data's frame at axis {i}")
    ctx.bind(data.roles[axis], "T")
    return CacheCat(cache, data, axis, int(cache.dims[axis]))


def _frames(ctx, values, axis):
    """Data tensors joined along a frame axis: the same axes otherwise; an engine Concat along that frame axis."""
    first = values[0]
    axis = norm_axes([axis], len(first.roles))[0]
    role = ctx.resolve(first.roles[axis])
    if role not in ("F", "C"):
        raise Unsupported(f"Concat of data tensors along {role}; rnnjit joins data along a frame axis")
    roles = [[ctx.resolve(r) for r in v.roles] for v in values]
    if any(r != roles[0] for r in roles) or any(v.reversed_time != first.reversed_time for v in values):
        raise Unsupported(f"Concat of data tensors with different axes {roles}")
    frame_axis = list(first.frame_roles).index(role)
    out = ctx.emit(first, Concat(axis=frame_axis), *values[1:])
    sizes = dict(first.sizes)
    sizes[role] = sum(v.sizes[role] for v in values)
    return Dyn(first.roles, sizes, out.edge, first.reversed_time)
