"""ONNX Gemm (7, 9, 11, 13): alpha * data @ op(B) + beta * C -> Dense (transA must be 0)."""

import numpy as np

from engine import Dense

from ..graph import Dyn, Unsupported
from ._common import attrs, reject_attributes, set_out


def convert_gemm_7(ctx, node):
    reject_attributes(node, {"alpha", "beta", "transA", "transB", "broadcast"})
    a = attrs(node)
    x = ctx.value(node.input[0])
    if not isinstance(x, Dyn):
        raise Unsupported("Gemm whose A is not the data")
    if a.get("transA", 0):
        raise Unsupported("transA=1 would mix the batch into the features")
    B = ctx.const(node, 1, "B")
    W = a.get("alpha", 1.0) * (B if a.get("transB", 0) else B.T)          # -> (N, K)
    C = ctx.const(node, 2, "C")
    bias = None
    if C is not None:
        C = np.asarray(C, np.float64) * a.get("beta", 1.0)
        if C.size not in (1, W.shape[0]) or (C.ndim == 2 and C.shape[0] != 1):
            raise Unsupported(f"C of shape {C.shape} is not a bias per output")
        bias = np.broadcast_to(C.reshape(-1), (W.shape[0],))
    if x.sizes.get("F") not in (None, W.shape[1]):
        raise Unsupported(f"weights of shape {W.shape} do not fit data with {x.sizes.get('F')} features")
    out = ctx.emit(x, Dense(W, bias))
    set_out(ctx, node, Dyn(out.roles, dict(out.sizes, F=W.shape[0]), out.edge, out.reversed_time))
