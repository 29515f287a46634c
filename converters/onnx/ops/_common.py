"""Helpers shared by the op converters."""

import numpy as np
import onnx

from ..graph import Dyn, Late, SymVec, Unsupported, Zeros


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def reject_attributes(node, allowed):
    extra = sorted(set(attrs(node)) - set(allowed))
    if extra:
        raise Unsupported(f"attribute(s) {extra} are not supported")


def axis_list(ctx, node, attr_name="axes", input_index=1):
    """Axes from the attribute (older opsets) or the optional input (newer)."""
    a = attrs(node)
    if attr_name in a:
        return [int(v) for v in a[attr_name]]
    if len(node.input) > input_index and node.input[input_index]:
        return [int(v) for v in np.asarray(ctx.const(node, input_index, attr_name)).reshape(-1)]
    return None


def rank(value):
    if isinstance(value, Dyn):
        return len(value.roles)
    if isinstance(value, Late):
        return len(value.dims)
    if isinstance(value, Zeros):
        return len(value.shape)
    if isinstance(value, SymVec):
        return 0 if value.scalar else 1
    return np.ndim(value)


def norm_axes(axes, r):
    out = []
    for a in axes:
        if not -r <= a < r:
            raise Unsupported(f"axis {a} is out of range for rank {r}")
        out.append(a % r)
    return out


def set_out(ctx, node, value, index=0):
    if index < len(node.output) and node.output[index]:
        ctx.values[node.output[index]] = value


def feature_constant(dyn, c):
    """A constant that broadcasts along the features only: returns it as (F,) or a scalar array."""
    c = np.asarray(c, np.float64)
    if c.size == 1:
        return c.reshape(())
    if c.ndim > len(dyn.roles) or c.shape[-1] != dyn.feat or int(np.prod(c.shape[:-1])) != 1:
        raise Unsupported(f"a constant of shape {c.shape} does not broadcast along the features alone "
                          f"(the data has {dyn.feat} features)")
    return c.reshape(-1)
