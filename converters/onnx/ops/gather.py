"""ONNX Gather (1, 11, 13): picks entries of a symbolic shape vector (data gathers are not supported)."""

import numpy as np

from engine.spec import Reshape, Slice

from ..graph import Dyn, RuntimeInput, SymVec, Unsupported
from ._common import attrs, set_out


def convert_gather_1(ctx, node):
    v = ctx.value(node.input[0])
    ids = ctx.value(node.input[1])
    if isinstance(v, np.ndarray) and isinstance(ids, Dyn):
        set_out(ctx, node, _embedding(ctx, node, v, ids))
        return
    idx = ctx.const(node, 1, "indices")
    if isinstance(v, Dyn) and np.ndim(idx) == 0:
        out = _frame_pick(ctx, v, int(attrs(node).get("axis", 0)), int(idx))
        if out is not None:
            set_out(ctx, node, out)
            return
    if isinstance(v, RuntimeInput) and np.ndim(idx) == 0:
        axis = int(attrs(node).get("axis", 0)) % len(v.dims)
        k = int(idx)
        if not isinstance(v.dims[axis], int) or not -v.dims[axis] <= k < v.dims[axis]:
            raise Unsupported(f"index {k} of axis {axis} of input {v.name!r} {v.dims}")
        set_out(ctx, node, v.then(lambda a: np.take(a, k, axis=axis), [d for i, d in enumerate(v.dims) if i != axis]))
        return
    if isinstance(v, Dyn):
        raise Unsupported("selecting steps or features of the data (e.g. out[:, -1], the last timestep) is not "
                          "supported: the engine outputs every timestep, so take the last row of Model.run's "
                          "output instead (Gather is supported only on shape vectors)")
    if not isinstance(v, SymVec) or attrs(node).get("axis", 0) != 0:
        raise Unsupported(f"Gather on a {type(v).__name__} is not supported (only on shape vectors)")
    picked = [v.items[int(i)] for i in np.asarray(idx).reshape(-1)]
    set_out(ctx, node, SymVec(picked, scalar=np.ndim(idx) == 0))


def _frame_pick(ctx, v, axis, k):
    """One entry of a frame axis (x[:, :, k]): a Slice of that axis, then the frame without it; None when the
    axis is not a frame axis."""
    roles = [ctx.resolve(r) for r in v.roles]
    axis %= len(roles)
    role = roles[axis]
    frame = [r for r in roles if r in ("C", "F")]
    if role not in ("C", "F") or v.sizes.get(role) is None or len(frame) != 2:
        return None
    if not -v.sizes[role] <= k < v.sizes[role]:
        raise Unsupported(f"index {k} of an axis of {v.sizes[role]}")
    k %= v.sizes[role]
    v = ctx.emit(v, Slice(frame.index(role), k, k + 1))
    keep = frame[1 - frame.index(role)]
    v = ctx.emit(v, Reshape([v.sizes[keep]]))
    sizes = {r: s for r, s in v.sizes.items() if r not in ("C", "F")}
    sizes["F"] = v.sizes[keep]
    return Dyn([("F" if r == keep else r) for i, r in enumerate(roles) if i != axis], sizes, v.edge, v.reversed_time)


def _embedding(ctx, node, table, ids):
    """A constant table indexed by the data (token ids): an Embedding (ids checked against the table when the
    model runs)."""
    from engine import Embedding
    from engine.errors import SpecError

    if attrs(node).get("axis", 0) != 0 or table.ndim != 2:
        raise Unsupported(f"Gather of a table of shape {table.shape} along axis {attrs(node).get('axis', 0)} by the "
                          f"data; an embedding is a 2-D table indexed along its rows")
    if ids.frame_roles or ctx.input_dtype != "int64":
        raise Unsupported("Gather of a table by float data (token ids are an integer input)")
    try:
        out = ctx.emit(ids, Embedding(table))
    except SpecError as exc:
        raise Unsupported(str(exc)) from None
    return Dyn(list(ids.roles) + ["F"], dict(ids.sizes, F=table.shape[1]), out.edge, ids.reversed_time)
