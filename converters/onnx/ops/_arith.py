"""Shared body of Add, Sub, Mul, Div: data (op) a per-feature constant -> Normalize, or a Dense's bias; data (op)
data (a residual, a gate) -> an Elementwise node over two edges."""

import numpy as np

from engine.layers.elementwise import Elementwise
from engine import Dense

from ..graph import Dyn, State, Unsupported
from ._common import feature_constant, set_out


def arith(ctx, node, op):
    a, b = ctx.value(node.input[0]), ctx.value(node.input[1])
    if isinstance(a, Dyn) and isinstance(b, Dyn):
        silu = _silu(ctx, a, b) if op == "Mul" else None
        set_out(ctx, node, silu or two_edges(ctx, a, b, op.lower()))
        return
    if isinstance(a, State) and isinstance(b, np.ndarray) or isinstance(b, State) and isinstance(a, np.ndarray):
        set_out(ctx, node, _on_state(a, b, op))       # a final state with a constant (a tracer's "+ 0 * sr")
        return
    data_first = isinstance(a, Dyn)
    dyn, c = (a, b) if data_first else (b, a)
    if not isinstance(dyn, Dyn) or not isinstance(c, np.ndarray):
        raise Unsupported(f"{op} of a {type(a).__name__} and a {type(b).__name__}")
    if "D" in [ctx.resolve(r) for r in dyn.roles]:
        raise Unsupported(f"{op} on data whose directions are not yet merged into its features")
    c = feature_constant(dyn, c)
    if op == "Add":
        last = ctx.absorbable(dyn, Dense)
        if last is not None and last.layer.bias is None:   # MatMul + Add
            last.layer = Dense(last.layer.weight, np.broadcast_to(c, (last.layer.out_features,)), name=last.layer.name)
            set_out(ctx, node, dyn)
            return
        set_out(ctx, node, ctx.emit_normalize(dyn, -c, 1.0))
    elif op == "Sub":
        set_out(ctx, node, ctx.emit_normalize(dyn, c, 1.0) if data_first else ctx.emit_normalize(dyn, c, -1.0))
    elif op == "Mul":
        set_out(ctx, node, ctx.emit_normalize(dyn, 0.0, c))
    elif op == "Div":
        if not data_first:
            raise Unsupported("a constant divided by the data")
        set_out(ctx, node, ctx.emit_normalize(dyn, 0.0, 1.0 / c))


def two_edges(ctx, a, b, op):
    """``op`` of two data tensors frame by frame: both must hold the same frame in the same axis order."""
    ra, rb = [ctx.resolve(r) for r in a.roles], [ctx.resolve(r) for r in b.roles]
    if a.reversed_time != b.reversed_time:
        raise Unsupported(f"{op} of a time-reversed tensor and one in time order")
    frame_a = [(r, a.sizes.get(r)) for r in ra if r not in ("T", "B", "x0", "x1", "1")]
    frame_b = [(r, b.sizes.get(r)) for r in rb if r not in ("T", "B", "x0", "x1", "1")]
    axes_a = [r for r in ra if r != "1"]
    axes_b = [r for r in rb if r != "1"]
    if axes_a != axes_b or frame_a != frame_b:
        raise Unsupported(f"{op} of data with axes {ra} {dict(a.sizes)} and {rb} {dict(b.sizes)}: rnnjit combines two "
                          f"data tensors frame by frame, with the same frame on both sides (no broadcasting)")
    return ctx.emit(a, Elementwise(op), b)


def _on_state(a, b, op):
    f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
    state, c, first = (a, np.asarray(b), True) if isinstance(a, State) else (b, np.asarray(a), False)
    try:
        dims = list(np.broadcast_shapes(tuple(d if isinstance(d, int) else 1 for d in state.dims), c.shape))
    except ValueError:
        raise Unsupported(f"{op} of a state {state.dims} and a constant of shape {c.shape}") from None
    if len(dims) != len(state.dims):
        raise Unsupported(f"{op} of a state {state.dims} and a constant of shape {c.shape} changes its rank")
    dims = [s if isinstance(s, str) else d for s, d in zip(state.dims, dims)]
    return state.then((lambda x: f(x, c).astype(x.dtype)) if first else (lambda x: f(c, x).astype(x.dtype)), dims)


def _silu(ctx, a, b):
    """x * sigmoid(x) (SiLU / swish, as exporters write it) where nothing else reads the sigmoid: the sigmoid node
    becomes a silu activation on x; None when the pattern is not there."""
    from engine import Activation

    for x, s in ((a, b), (b, a)):
        node = ctx.absorbable(s, Activation)
        if node is not None and node.layer.name == "sigmoid" and node.inputs == (x.edge,) and \
                [ctx.resolve(r) for r in x.roles] == [ctx.resolve(r) for r in s.roles]:
            node.layer = Activation("silu")
            return s
    return None
