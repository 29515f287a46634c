"""rnnjit.Dual (written only by fusions.py): a fused LSTM cell's h, both its output as data and its final state."""

from ..graph import Dual, Dyn, Late, Unsupported
from ._common import set_out


def convert_dual_1(ctx, node):
    data, state = ctx.value(node.input[0]), ctx.value(node.input[1])
    if not isinstance(data, Dyn) or not isinstance(state, Late):
        raise Unsupported("a fused cell's h is not its data and state")
    set_out(ctx, node, Dual(data, state))
