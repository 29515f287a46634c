"""ONNX Squeeze (1: axes attribute; 13: axes input): drops unit axes (a single direction D, or "1")."""

from engine.spec import Reshape

from ..graph import Dyn, Late, Unsupported, Zeros
from ._common import axis_list, norm_axes, rank, set_out
from ._late import late_squeeze


def _squeeze(ctx, node, axes):
    v = ctx.value(node.input[0])
    r = rank(v)
    if axes is None:
        raise Unsupported("Squeeze without axes on data of unknown sizes is not supported")
    axes = norm_axes(axes, r)
    if isinstance(v, Late):
        set_out(ctx, node, late_squeeze(ctx, v, axes))
        return
    if isinstance(v, Zeros):
        set_out(ctx, node, Zeros([d for i, d in enumerate(v.shape) if i not in axes]))
        return
    if isinstance(v, Dyn):
        v = _squeeze_frame(ctx, v, axes)
        axes = [a for a in axes if v.roles[a] != "squeezed"]
    for a in axes:
        role = ctx.resolve(v.roles[a])
        unit = role == "1" or (role == "D" and v.sizes.get("D") == 1) \
            or (role == "B" and ctx.unbatched) \
            or (role == "T" and ctx.per_call())   # one frame per call: the time axis goes, and comes back
        if not unit:
            raise Unsupported(f"axis {a} holds {role}, which is not of size 1")
    roles = [r_ for i, r_ in enumerate(v.roles) if i not in axes and r_ != "squeezed"]
    set_out(ctx, node, v.with_roles(roles))


def convert_squeeze_1(ctx, node):
    _squeeze(ctx, node, axis_list(ctx, node))


def convert_squeeze_13(ctx, node):
    _squeeze(ctx, node, axis_list(ctx, node))


def _squeeze_frame(ctx, v, axes):
    """Frame axes of size 1 among ``axes`` dropped: a (C, 1) or (1, F) frame becomes 1-D through a Reshape node; a
    (1,) frame stays as it is (a frame has at least one element) with no frame axis left in the ONNX tensor. The
    dropped axes come back with role "squeezed"."""
    gone = [a for a in axes if v.roles[a] in ("C", "F") and v.sizes.get(v.roles[a]) == 1]
    if not gone:
        return v
    kept = [r for i, r in enumerate(v.roles) if r in ("C", "F") and i not in gone]
    sizes = dict(v.sizes)
    if kept:
        size = sizes[kept[0]]
        v = ctx.emit(v, Reshape([size]))
        sizes.pop("C", None)
        sizes["F"] = size
    roles = ["squeezed" if i in gone else ("F" if r in ("C", "F") else r) for i, r in enumerate(v.roles)]
    return Dyn(roles, sizes, v.edge, v.reversed_time)
