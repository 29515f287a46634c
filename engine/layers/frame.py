"""Shape operations on frames (frame-wise, no state): Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Slice,
Pad (constant, reflect, edge) and Concat of two frames along an axis.

Axes are the frame's own: time, batch and streams are never among them (PyTorch's ``Flatten(start_dim=1)`` on
(batch, channels, length) frames of (channels, length) is ``Flatten(0)`` here). Each one is packed as a gather
(kernels/frame.py): its spec class says what it does to a frame by doing it to ``np.arange`` of the frame's
size, so the index map is numpy's own reshape, transpose, slice or pad, worked out once.
"""

import numpy as np

from ..errors import SpecError
from ..kernels import layout as L
from ..kernels.frame import concat_entry, concat_step, gather_entry, gather_step
from .base import Kind, Packed


def _axis(axis, ndim, where):
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise SpecError(f"{where}: axis {axis!r} is not an axis of a frame of {ndim} axes")
    return int(axis) % ndim


class FrameOp:
    """A shape operation on one frame; subclasses say what it does to an array of the frame's shape."""

    kind = "frame"
    input_size = None
    pad_value = 0.0

    def apply(self, a, where):
        """``a`` (the frame, as an array) transformed; raise SpecError naming ``where`` when it cannot be."""
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_config()[0].items() if k not in ("kind", "op", "name"))
        return f"{type(self).__name__}({args})"

    def to_config(self):
        config = {"kind": self.kind, "op": type(self).__name__, "name": self.name}
        config.update({k: getattr(self, k) for k in self.fields})
        return config, {}

    @classmethod
    def from_config(cls, config, arrays):
        op = _OPS.get(config.get("op"))
        if op is None:
            raise SpecError(f"unknown frame operation {config.get('op')!r}; expected one of {sorted(_OPS)}")
        return op(**{k: config[k] for k in op.fields}, name=config.get("name"))


class Reshape(FrameOp):
    """The frame reshaped to ``shape`` (one entry may be -1), as numpy reshapes a C-ordered array."""
    fields = ("shape",)

    def __init__(self, shape, name=None):
        self.shape, self.name = [int(s) for s in shape], name

    def apply(self, a, where):
        try:
            return a.reshape(self.shape)
        except ValueError:
            raise SpecError(f"{where}: cannot reshape a frame of shape {a.shape} to {tuple(self.shape)}") from None


class Flatten(FrameOp):
    """The frame's axes from ``start`` to ``end`` (inclusive) as one."""
    fields = ("start", "end")

    def __init__(self, start=0, end=-1, name=None):
        self.start, self.end, self.name = int(start), int(end), name

    def apply(self, a, where):
        s, e = _axis(self.start, a.ndim, where), _axis(self.end, a.ndim, where)
        if e < s:
            raise SpecError(f"{where}: Flatten from axis {self.start} to {self.end} of a frame of shape {a.shape}")
        return a.reshape(a.shape[:s] + (-1,) + a.shape[e + 1:])


class Transpose(FrameOp):
    """The frame's axes in the order ``perm`` (numpy's transpose)."""
    fields = ("perm",)

    def __init__(self, perm, name=None):
        self.perm, self.name = [int(p) for p in perm], name

    def apply(self, a, where):
        if sorted(p % max(a.ndim, 1) for p in self.perm) != list(range(a.ndim)) or len(self.perm) != a.ndim:
            raise SpecError(f"{where}: perm {self.perm} is not a permutation of a frame of shape {a.shape}")
        return a.transpose(self.perm)


class Squeeze(FrameOp):
    """The frame without its ``axes`` of size 1."""
    fields = ("axes",)

    def __init__(self, axes, name=None):
        self.axes, self.name = [int(x) for x in np.atleast_1d(axes)], name

    def apply(self, a, where):
        axes = tuple(_axis(x, a.ndim, where) for x in self.axes)
        if any(a.shape[x] != 1 for x in axes):
            raise SpecError(f"{where}: cannot squeeze axes {self.axes} of a frame of shape {a.shape} (not size 1)")
        return a.squeeze(axes)


class Unsqueeze(FrameOp):
    """The frame with new axes of size 1 at ``axes`` (of the result)."""
    fields = ("axes",)

    def __init__(self, axes, name=None):
        self.axes, self.name = [int(x) for x in np.atleast_1d(axes)], name

    def apply(self, a, where):
        ndim = a.ndim + len(self.axes)
        return np.expand_dims(a, tuple(_axis(x, ndim, where) for x in self.axes))


class Slice(FrameOp):
    """``start:stop:step`` along one axis of the frame (Python's rules for negatives and None)."""
    fields = ("axis", "start", "stop", "step")

    def __init__(self, axis, start=None, stop=None, step=None, name=None):
        self.axis, self.start, self.stop, self.step, self.name = int(axis), start, stop, step, name

    def apply(self, a, where):
        axis = _axis(self.axis, a.ndim, where)
        if self.step == 0:
            raise SpecError(f"{where}: a slice step cannot be 0")
        out = a[(slice(None),) * axis + (slice(self.start, self.stop, self.step),)]
        if out.size == 0:
            raise SpecError(f"{where}: slice {self.start}:{self.stop}:{self.step} of axis {self.axis} leaves nothing "
                            f"of a frame of shape {a.shape}")
        return out


class Pad(FrameOp):
    """The frame padded by ``pads`` ((before, after) per axis, numpy's pad), with ``mode`` "constant" (``value``),
    "reflect" or "edge"."""
    fields = ("pads", "mode", "value")
    MODES = ("constant", "reflect", "edge")

    def __init__(self, pads, mode="constant", value=0.0, name=None):
        if mode not in self.MODES:
            raise SpecError(f"Pad: mode must be one of {self.MODES}, got {mode!r}")
        self.pads = [[int(b), int(e)] for b, e in pads]
        if any(b < 0 or e < 0 for b, e in self.pads):
            raise SpecError(f"Pad: pads must be >= 0 (a negative pad is a Slice), got {self.pads}")
        self.mode, self.value, self.name = mode, float(value), name
        self.pad_value = self.value

    def apply(self, a, where):
        if len(self.pads) != a.ndim:
            raise SpecError(f"{where}: pads {self.pads} give {len(self.pads)} axes, the frame has shape {a.shape}")
        if self.mode == "constant":
            return np.pad(a, self.pads, mode="constant", constant_values=-1)
        if self.mode == "reflect" and any(max(p) >= s for p, s in zip(self.pads, a.shape)):
            raise SpecError(f"{where}: reflect padding {self.pads} must be smaller than the frame's axes {a.shape}")
        return np.pad(a, self.pads, mode=self.mode)


_OPS = {cls.__name__: cls for cls in (Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Slice, Pad)}


class FrameKind(Kind):
    name, code, spec_class = "frame", L.OP_GATHER, FrameOp
    step, entry = staticmethod(gather_step), staticmethod(gather_entry)

    def _map(self, layer, shape, where="node"):
        return layer.apply(np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape), where)

    def infer(self, layer, inputs, where):
        (edge, shape, dtype), = inputs
        if dtype != "float":
            raise SpecError(f"{where}: {type(layer).__name__} reads float frames, but edge {edge!r} carries {dtype} "
                            f"ids")
        out = self._map(layer, shape, f"{where} on edge {edge!r}")
        if out.ndim == 0:
            raise SpecError(f"{where}: {type(layer).__name__} of edge {edge!r} {shape} leaves a frame of no axes")
        return tuple(int(s) for s in out.shape), "float"

    def pack_node(self, layer, shapes, dtype):
        (shape,) = shapes
        idx = np.ascontiguousarray(self._map(layer, shape)).ravel()
        meta = np.zeros(L.META_LEN + idx.size, dtype=np.int64)
        meta[L.META_LEN:] = idx
        return Packed(layer, self, np.array([layer.pad_value], dtype=dtype), meta, int(np.prod(shape)), idx.size)

    def run(self, p, seq, lengths, states_in, states_out, prefix):
        idx = p.meta[L.META_LEN:]
        y = seq[:, :, np.maximum(idx, 0)]
        if (idx < 0).any():
            y[:, :, idx < 0] = p.params[0]
        return np.ascontiguousarray(y)


class Concat:
    """Two or more frames joined along ``axis`` (numpy's concatenate): the other axes must agree."""

    kind = "concat"
    input_size = None

    def __init__(self, axis=-1, name=None):
        self.axis, self.name = int(axis), name

    def __repr__(self):
        return f"Concat(axis={self.axis})"

    def to_config(self):
        return {"kind": self.kind, "axis": self.axis, "name": self.name}, {}

    @classmethod
    def from_config(cls, config, arrays):
        return cls(config["axis"], name=config.get("name"))


def split(name, edge, sizes, axis=-1):
    """The nodes of a Split (ONNX's, torch's ``split``): ``edge``'s frames cut along ``axis`` into parts of
    ``sizes``, one Slice node per part, named ``<name>.0``, ``<name>.1``, ... (a node writes one edge)."""
    from ..spec import Node

    sizes = [int(s) for s in sizes]
    if not sizes or any(s < 1 for s in sizes):
        raise SpecError(f"split {name!r}: sizes must be positive, got {sizes}")
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [Node(f"{name}.{i}", Slice(axis, int(starts[i]), int(starts[i + 1])), edge) for i in range(len(sizes))]


class ConcatKind(Kind):
    name, code, spec_class = "concat", L.OP_CONCAT, Concat
    step, entry = staticmethod(concat_step), staticmethod(concat_entry)
    arity = 2
    variadic = True

    def _map(self, layer, shapes, where="node"):
        """Per output element, its index in the inputs' frames laid end to end."""
        parts, start = [], 0
        for shape in shapes:
            parts.append(np.arange(start, start + int(np.prod(shape)), dtype=np.int64).reshape(shape))
            start += parts[-1].size
        first = tuple(shapes[0])
        if any(len(sh) != len(first) for sh in shapes):
            raise SpecError(f"{where}: Concat of frames {', '.join(str(tuple(sh)) for sh in shapes)}: different "
                            f"numbers of axes")
        axis = _axis(layer.axis, len(first), where)
        if any(tuple(sh[:axis]) + tuple(sh[axis + 1:]) != first[:axis] + first[axis + 1:] for sh in shapes):
            raise SpecError(f"{where}: Concat along axis {layer.axis} of frames "
                            f"{', '.join(str(tuple(sh)) for sh in shapes)}: the other axes differ")
        return np.concatenate(parts, axis=axis)

    def infer(self, layer, inputs, where):
        for edge, _, dtype in inputs:
            if dtype != "float":
                raise SpecError(f"{where}: Concat reads float frames, but edge {edge!r} carries {dtype} ids")
        edges = ", ".join(repr(e) for e, _, _ in inputs)
        return tuple(int(s) for s in self._map(layer, [sh for _, sh, _ in inputs], f"{where} (edges {edges})").shape), \
            "float"

    def lower(self, layer, name, inputs):
        """Concat(a, b, c, ...) as Concat(Concat(a, b), c) ...: the axis keeps its place in every partial frame."""
        nodes, edge = [], inputs[0]
        for i, e in enumerate(inputs[1:], 1):
            out = name if i == len(inputs) - 1 else f"{name}/concat{i}"
            nodes.append((out, layer, (edge, e)))
            edge = out
        return nodes

    def pack_node(self, layer, shapes, dtype):
        idx = np.ascontiguousarray(self._map(layer, shapes)).ravel()
        meta = np.zeros(L.META_LEN + idx.size, dtype=np.int64)
        meta[L.META_LEN:] = idx
        meta[L.M_H] = int(np.prod(shapes[1]))
        return Packed(layer, self, np.zeros(1, dtype=dtype), meta, int(np.prod(shapes[0])), idx.size)

    def run(self, p, seqs, lengths, states_in, states_out, prefix):
        a, b = seqs
        return np.ascontiguousarray(np.concatenate([a, b], axis=2)[:, :, p.meta[L.META_LEN:]])


FRAME = FrameKind()
CONCAT = ConcatKind()
