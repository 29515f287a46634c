"""Elementwise binary nodes: Add, Sub, Mul, Div, Max, Min of two frames, with numpy broadcasting.

A graph's residual connection is an Add; a mask multiplied back onto an input (as denoisers do) is a Mul.
Frame-wise: no state, reads no future. Packed as an operation code, the two inputs' sizes and, when the
shapes differ, the broadcast index maps (kernels/elementwise.py).
"""

import numpy as np

from ..errors import SpecError
from ..kernels import layout as L
from ..kernels.elementwise import F_BROADCAST, NUMPY, OPS, elementwise_entry, elementwise_step
from .base import Kind, Packed


class Elementwise:
    """``op(a, b)`` elementwise over two frames; shapes broadcast as numpy's do. Use Add, Sub, Mul, Div, Max,
    Min (or ``Elementwise("add")``)."""

    kind = "elementwise"
    op = None

    def __init__(self, op=None, name=None):
        op = op or self.op
        if op not in OPS:
            raise SpecError(f"elementwise operation must be one of {sorted(OPS)}, got {op!r}")
        self.op, self.name = op, name

    def __repr__(self):
        return f"{self.op.capitalize()}()"

    def to_config(self):
        return {"kind": self.kind, "op": self.op, "name": self.name}, {}

    @classmethod
    def from_config(cls, config, arrays):
        op = config["op"]
        if op not in OPS:
            raise SpecError(f"elementwise operation must be one of {sorted(OPS)}, got {op!r}")
        return _CLASSES[op](name=config.get("name"))


class Add(Elementwise):
    op = "add"


class Sub(Elementwise):
    op = "sub"


class Mul(Elementwise):
    op = "mul"


class Div(Elementwise):
    op = "div"


class Max(Elementwise):
    op = "max"


class Min(Elementwise):
    op = "min"


_CLASSES = {cls.op: cls for cls in (Add, Sub, Mul, Div, Max, Min)}


class ElementwiseKind(Kind):
    name, code, spec_class = "elementwise", L.OP_ELEMENTWISE, Elementwise
    step, entry = staticmethod(elementwise_step), staticmethod(elementwise_entry)
    arity = 2

    def infer(self, layer, inputs, where):
        (ea, sa, da), (eb, sb, db) = inputs
        for edge, dtype in ((ea, da), (eb, db)):
            if dtype != "float":
                raise SpecError(f"{where}: {layer.op} reads float frames, but edge {edge!r} carries {dtype} ids")
        try:
            shape = np.broadcast_shapes(sa, sb)
        except ValueError:
            raise SpecError(f"{where}: frames of edge {ea!r} {sa} and edge {eb!r} {sb} do not broadcast "
                            f"together (numpy's rules)") from None
        return tuple(int(s) for s in shape), "float"

    def pack_node(self, layer, shapes, dtype):
        sa, sb = shapes
        out = tuple(np.broadcast_shapes(sa, sb))
        na, nb, nout = int(np.prod(sa)), int(np.prod(sb)), int(np.prod(out))
        same = tuple(sa) == out and tuple(sb) == out
        meta = np.zeros(L.META_LEN + (0 if same else 2 * nout), dtype=np.int64)
        meta[L.M_CODE] = OPS[layer.op]
        meta[L.M_H] = nb
        if not same:
            meta[L.M_FLAGS] = F_BROADCAST
            meta[L.META_LEN:L.META_LEN + nout] = np.broadcast_to(np.arange(na).reshape(sa), out).ravel()
            meta[L.META_LEN + nout:] = np.broadcast_to(np.arange(nb).reshape(sb), out).ravel()
        p = Packed(layer, self, np.zeros(0, dtype=dtype), meta, na, nout)
        return p

    def run(self, p, seqs, lengths, states_in, states_out, prefix):
        """numpy's own operation on all frames at once: (T, B, a) and (T, B, b) -> (T, B, out)."""
        a, b = seqs
        (sa, sb), out = p.shapes
        T, B = a.shape[:2]
        r = len(out)   # numpy aligns trailing axes: align the frames' axes, not time and batch with them
        sa, sb = (1,) * (r - len(sa)) + tuple(sa), (1,) * (r - len(sb)) + tuple(sb)
        y = NUMPY[int(p.meta[L.M_CODE])](a.reshape((T, B) + sa), b.reshape((T, B) + sb))
        return np.ascontiguousarray(y.reshape(T, B, -1), dtype=p.params.dtype)


KIND = ElementwiseKind()
