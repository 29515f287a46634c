"""Shared body of the elementwise activation ops (and Softmax / LogSoftmax over the features)."""

from engine import Activation

from ..graph import Dyn, Unsupported
from ._common import attrs, set_out


def activation(ctx, node, name, alpha_attr=None, beta_attr=None, alpha_default=None, beta_default=None,
               allowed=()):
    extra = sorted(set(attrs(node)) - {alpha_attr, beta_attr, *allowed} - {None})
    if extra:
        raise Unsupported(f"attribute(s) {extra} are not supported")
    x = ctx.value(node.input[0])
    if not isinstance(x, Dyn):
        raise Unsupported(f"{node.op_type} of a {type(x).__name__}")
    a = attrs(node)
    act = Activation(name, a.get(alpha_attr, alpha_default) if alpha_attr else None,
                     a.get(beta_attr, beta_default) if beta_attr else None)
    set_out(ctx, node, ctx.emit(x, act))


def over_features(ctx, node, name, default_axis):
    x = ctx.value(node.input[0])
    if not isinstance(x, Dyn):
        raise Unsupported(f"{node.op_type} of a {type(x).__name__}")
    axis = attrs(node).get("axis", default_axis) % len(x.roles)
    if ctx.resolve(x.roles[axis]) != "F" or axis != len(x.roles) - 1:
        raise Unsupported(f"{node.op_type} over axis {axis} ({ctx.resolve(x.roles[axis])}), not the features")
    activation(ctx, node, name, allowed=("axis",))
