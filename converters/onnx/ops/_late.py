"""Shape ops on tensors known only at run time (graph.Late: a state input's parts, the final states and what the
graph stacks them into): each composes a numpy function onto the value's own and tracks its shape."""

import numpy as np

from ..graph import BIG, State, Unsupported
from ._common import norm_axes


def late_slice(v, starts, ends, axes, steps):
    dims, index = list(v.dims), [slice(None)] * len(v.dims)
    for a, s, e, st in zip(norm_axes(axes, len(dims)), starts, ends, steps):
        if isinstance(dims[a], int):
            dims[a] = len(range(*slice(s, e, st).indices(dims[a])))
        elif not (s == 0 and st == 1 and e >= BIG):
            raise Unsupported(f"slicing axis {a} of {v.dims}, whose size is only known at run time")
        index[a] = slice(s, e, st)
    index = tuple(index)
    return v.then(lambda x: x[index], dims)


def late_squeeze(ctx, v, axes):
    axes = norm_axes(axes, len(v.dims))
    for a in axes:
        if v.dims[a] != 1 and not (isinstance(v.dims[a], str) and ctx.unbatched):
            raise Unsupported(f"axis {a} of {v.dims} is not of size 1")
    axes = tuple(axes)
    return v.then(lambda x: x.squeeze(axes), [d for i, d in enumerate(v.dims) if i not in axes])


def late_unsqueeze(v, axes):
    axes = tuple(sorted(a % (len(v.dims) + len(axes)) for a in axes))
    dims = list(v.dims)
    for a in axes:
        dims.insert(a, 1)
    return v.then(lambda x: np.expand_dims(x, axes), dims)


def late_transpose(v, perm):
    perm = tuple(perm)
    return v.then(lambda x: x.transpose(perm), [v.dims[p] for p in perm])


def late_concat(values, axis):
    if not all(isinstance(v, State) for v in values):
        raise Unsupported("Concat of run-time inputs (only final states are stacked)")
    rank = len(values[0].dims)
    if any(len(v.dims) != rank for v in values):
        raise Unsupported(f"Concat of states of different ranks {[v.dims for v in values]}")
    axis = norm_axes([axis], rank)[0]
    out = State.concat(values, axis)
    sizes = [v.dims[axis] for v in values]
    out.dims = [sum(sizes) if i == axis and all(isinstance(s, int) for s in sizes) else values[0].dims[i]
                for i in range(rank)]
    return out
