"""ONNX MatMul (1, 9, 13): data @ constant (K, N) -> Dense with weight (N, K) (a following Add is its bias)."""

from engine import Dense

from ..graph import Dyn, Unsupported
from ._common import set_out


def convert_matmul_1(ctx, node):
    a = ctx.value(node.input[0])
    if not isinstance(a, Dyn):
        raise Unsupported("MatMul whose first operand is not the data (only data @ weights is supported)")
    W = ctx.const(node, 1, "the weight")
    if W.ndim != 2 or (a.sizes.get("F") not in (None, W.shape[0])):
        raise Unsupported(f"weight of shape {W.shape} does not fit data with {a.sizes.get('F')} features")
    if "D" in [ctx.resolve(r) for r in a.roles]:
        raise Unsupported("MatMul on data whose directions are not yet merged into its features")
    out = ctx.emit(a, Dense(W.T))                  # (K, N) -> (N, K)
    set_out(ctx, node, Dyn(out.roles, dict(out.sizes, F=W.shape[1]), out.edge, out.reversed_time))
