"""ONNX Gather (1, 11, 13): picks entries of a symbolic shape vector (data gathers are not supported)."""

import numpy as np

from ..graph import Dyn, SymVec, Unsupported
from ._common import attrs, set_out


def convert_gather_1(ctx, node):
    v = ctx.value(node.input[0])
    idx = ctx.const(node, 1, "indices")
    if isinstance(v, Dyn):
        raise Unsupported("selecting steps or features of the data (e.g. out[:, -1], the last timestep) is not "
                          "supported: the engine outputs every timestep, so take the last row of Model.run's "
                          "output instead (Gather is supported only on shape vectors)")
    if not isinstance(v, SymVec) or attrs(node).get("axis", 0) != 0:
        raise Unsupported(f"Gather on a {type(v).__name__} is not supported (only on shape vectors)")
    picked = [v.items[int(i)] for i in np.asarray(idx).reshape(-1)]
    set_out(ctx, node, SymVec(picked, scalar=np.ndim(idx) == 0))
