"""ONNX Size (1, 13) and Equal (1, 7, 11, 13, 19) on sizes: a scripted model's "is this state empty?" checks.

Size of a tensor whose shape is known is a constant (folded). A size that depends on the batch is a symbol known
to be positive (rnnjit never runs an empty batch), so Equal of it and 0 is False; Equal of constants folds as
any constant op does."""

import numpy as np

from ..graph import Dyn, RuntimeInput, SymVec, Unsupported
from ._common import set_out


def convert_size_1(ctx, node):
    v = ctx.value(node.input[0])
    if isinstance(v, SymVec):
        dims = [] if v.scalar else [len(v.items)]
    elif isinstance(v, RuntimeInput):
        dims = v.dims
    elif isinstance(v, Dyn):
        raise Unsupported("Size of the data")
    else:
        raise Unsupported(f"Size of a {type(v).__name__}")
    if all(isinstance(d, int) for d in dims):
        set_out(ctx, node, np.array(int(np.prod(dims)), np.int64))
    else:
        set_out(ctx, node, SymVec([f"size({v.name})"], scalar=True))


def convert_equal_1(ctx, node):
    a, b = ctx.value(node.input[0]), ctx.value(node.input[1])
    sym, other = (a, b) if isinstance(a, SymVec) else (b, a)
    if isinstance(sym, SymVec) and isinstance(other, np.ndarray) and np.all(np.asarray(other) == 0) \
            and all(isinstance(i, str) or i > 0 for i in sym.items):
        shape = () if sym.scalar else (len(sym.items),)
        set_out(ctx, node, np.zeros(np.broadcast_shapes(shape, np.shape(other)), bool))
        return
    if isinstance(a, RuntimeInput) or isinstance(b, RuntimeInput):
        name = (a if isinstance(a, RuntimeInput) else b).name
        raise Unsupported(f"Equal on run-time input {name!r}: a branch taken by a setting input (a sample rate) is "
                          f"chosen when loading: fixed_inputs={{{name!r}: value}}")
    raise Unsupported(f"Equal of a {type(a).__name__} and a {type(b).__name__} (only of constants and sizes)")
