"""ONNX graph -> ModelSpec: constant folding, symbolic shapes, and the one data path mapped onto layers.

Design: an ONNX graph from an exporter is mostly bookkeeping around a few real layers: Shape/Gather/
Concat/ConstantOfShape chains that build zero initial states sized by the dynamic batch, Transpose/Reshape
that merge directions, Slices that split states per layer. The converter walks the nodes in order with a
value for every tensor:

* ``np.ndarray``   a constant (initializers, Constant nodes, and any node whose inputs are all constant,
                   folded by onnx's reference evaluator);
* ``SymVec``       a shape vector whose entries are ints or symbolic dims ("T", "B", or an input axis not
                   yet known to be either), from Shape() of the data;
* ``Zeros``        a zero tensor whose shape is a SymVec (ConstantOfShape of a symbolic shape): an
                   all-zero initial state, i.e. none;
* ``Dyn``          the data: its axes carry roles (T time, B batch, F features, D directions, "1" a unit
                   axis); every op on it either appends a ModelSpec layer or changes roles;
* ``State``        a recurrent layer's final state (Y_h / Y_c), which may only flow to graph outputs.

Each op is converted by the function registered for it (registry.py); anything that cannot be expressed
raises ``Unsupported`` with the reason, the walk goes on, and all failures are reported at once.
"""

import math
import os

import numpy as np
import onnx
from onnx import numpy_helper

from engine import ModelSpec, Normalize
from engine.errors import FormatError, SpecError, UnsafeFileError

from ..limits import MAX_ELEMENTS


class Unsupported(Exception):
    """This node cannot be expressed; the message says why."""


class UnsupportedOperatorError(FormatError):
    """The graph holds nodes rnnjit cannot express; ``nodes`` lists (name, op_type, reason)."""

    def __init__(self, source, nodes):
        self.nodes = nodes
        lines = "\n".join(f"  - node {name!r} ({op}): {reason}" for name, op, reason in nodes)
        super().__init__(f"{source}: {len(nodes)} node(s) cannot be converted:\n{lines}")


class SymVec:
    """A 1-D shape vector of ints and symbolic dims (strings)."""

    def __init__(self, items, scalar=False):
        self.items, self.scalar = list(items), scalar

    def __repr__(self):
        return f"SymVec({self.items})"


class Zeros:
    """A zero-filled tensor of (partly symbolic) shape."""

    def __init__(self, shape):
        self.shape = list(shape)


class Dyn:
    """The data tensor: roles per axis, sizes of the static roles, and how many layers produced it."""

    def __init__(self, roles, sizes, stage, reversed_time=False):
        self.roles, self.sizes, self.stage, self.reversed_time = tuple(roles), dict(sizes), stage, reversed_time

    def with_roles(self, roles, sizes=None):
        return Dyn(roles, self.sizes if sizes is None else sizes, self.stage, self.reversed_time)

    @property
    def feat(self):
        return self.sizes["F"]


class State:
    """Final state (kind "h" or "c") of recurrent layer ``layer`` with axis roles."""

    def __init__(self, layer, kind, roles, directions):
        self.layer, self.kind, self.roles, self.directions = layer, kind, tuple(roles), directions


class StateCat:
    """Final states of several layers concatenated along their (leading) direction axis: (L*D, B, H)."""

    def __init__(self, parts):
        self.parts = list(parts)


class Unknown:
    """The output of a node that failed to convert (so its consumers are not reported again)."""


class Converter:
    def __init__(self, model, source, registry):
        self.model, self.source, self.registry = model, source, registry
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        if self.opset is None:
            raise FormatError(f"{source}: the model imports no default-domain opset")
        self.values, self.layers, self.failures = {}, [], []
        self.bindings = {}              # input axis symbol ("x0"/"x1") -> "T" or "B"
        self.state_inputs = {}          # graph input name -> [(layer index, kind, roles, rows)]
        self.lengths_input = None
        graph = model.graph
        for init in graph.initializer:
            self.values[init.name] = tensor_array(init, source)
        data_inputs = [i for i in graph.input if i.name not in self.values]
        self._bind_inputs(data_inputs)

    # ---- values ----
    def _bind_inputs(self, inputs):
        self.data_input, self.unbatched = None, False
        floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)
        for rank in (3, 2):   # (time, batch, features) in either order, else (time, features) without a batch
            for inp in inputs:
                tt = inp.type.tensor_type
                dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
                if self.data_input is None and tt.elem_type in floats and len(dims) == rank:
                    self.data_input, self.data_input_dims = inp.name, dims if rank == 3 else [dims[0], 1, dims[1]]
                    sizes = {"F": dims[-1]} if dims[-1] else {}
                    self.values[inp.name] = Dyn(("x0", "x1", "F") if rank == 3 else ("T", "F"), sizes, 0)
                    self.unbatched = rank == 2
        for inp in inputs:
            if inp.name != self.data_input:
                tt = inp.type.tensor_type
                dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
                self.values[inp.name] = RuntimeInput(inp.name, dims, tt.elem_type)
        if self.data_input is None:
            raise FormatError(f"{self.source}: no float graph input of rank 3 (time, batch, features) or 2 (time, "
                              f"features); inputs: {[(i.name, len(i.type.tensor_type.shape.dim)) for i in inputs]}")

    def value(self, name):
        if name == "":
            return None
        if name not in self.values:
            raise Unsupported(f"input {name!r} is produced by no node")
        return self.values[name]

    def const(self, node, index, what=None, default=None):
        """Input ``index`` of ``node`` as a constant array (or ``default`` when absent)."""
        if index >= len(node.input) or node.input[index] == "":
            return default
        v = self.value(node.input[index])
        if isinstance(v, Zeros) and all(isinstance(d, int) for d in v.shape):
            return np.zeros(v.shape, np.float32)
        if not isinstance(v, np.ndarray):
            raise Unsupported(f"{what or f'input {index}'} ({node.input[index]!r}) must be a constant, "
                              f"got a {type(v).__name__}")
        return v

    def static_size(self, role):
        """The data input's declared size of a time/batch axis (exporters sometimes bake it into shapes)."""
        for symbol, dim in (("x0", self.data_input_dims[0]), ("x1", self.data_input_dims[1])):
            if dim and self.resolve(symbol) == self.resolve(role):
                return dim
        return None

    def resolve(self, role):
        return self.bindings.get(role, role)

    def roles(self, dyn):
        return tuple(self.resolve(r) for r in dyn.roles)

    def bind(self, symbol, role):
        symbol = self.resolve(symbol)
        if symbol in ("T", "B"):
            if symbol != role:
                raise Unsupported(f"this axis was used as {symbol} before and is now used as {role}")
            return
        self.bindings[symbol] = role

    def emit(self, dyn, layer):
        """Append a ModelSpec layer after the data ``dyn``; the data path must not branch."""
        if dyn.stage != len(self.layers):
            raise Unsupported("the data path branches here (a layer reads a value from before the last layer); "
                              "only chains are supported")
        self.layers.append(layer)
        return Dyn(dyn.roles, dyn.sizes, len(self.layers), dyn.reversed_time)

    def emit_normalize(self, dyn, mean, scale):
        """(x - mean) * scale on the features, merged into an immediately preceding Normalize."""
        F = dyn.feat
        mean = np.broadcast_to(np.asarray(mean, np.float64).reshape(-1), (F,))
        scale = np.broadcast_to(np.asarray(scale, np.float64).reshape(-1), (F,))
        if self.layers and dyn.stage == len(self.layers) and isinstance(self.layers[-1], Normalize):
            prev = self.layers.pop()
            mean = prev.mean + mean / prev.scale
            scale = prev.scale * scale
            dyn = Dyn(dyn.roles, dyn.sizes, len(self.layers), dyn.reversed_time)
        try:
            return self.emit(dyn, Normalize(mean, scale))
        except SpecError as exc:
            raise Unsupported(str(exc)) from None

    # ---- the walk ----
    def run(self):
        for node in self.model.graph.node:
            name = node.name or f"{node.op_type}#{len(self.failures)}:{','.join(node.output)}"
            inputs = [self.values.get(i) for i in node.input if i]
            if any(isinstance(v, Unknown) for v in inputs):
                # downstream of a failure: still report an op that has no converter at all
                if node.op_type != "Constant" and self.registry.lookup(node.domain, node.op_type, self.opset) is None:
                    self.failures.append((name, node.op_type, f"no converter for {node.op_type} at opset {self.opset}"))
                self._set_unknown(node)
                continue
            try:
                if node.op_type == "Constant" or (node.domain in ("", "ai.onnx") and inputs
                                                  and all(isinstance(v, np.ndarray) for v in inputs)
                                                  and node.op_type not in ("LSTM", "GRU", "RNN")):
                    self._fold(node)
                    continue
                convert = self.registry.lookup(node.domain, node.op_type, self.opset)
                if convert is None:
                    raise Unsupported(f"no converter for {node.domain + '.' if node.domain else ''}{node.op_type} "
                                      f"at opset {self.opset}")
                convert(self, node)
                for out in node.output:  # a shape vector of known ints is just a constant: fold what follows
                    v = self.values.get(out)
                    if isinstance(v, SymVec) and all(isinstance(i, (int, np.integer)) for i in v.items):
                        self.values[out] = np.array(v.items[0] if v.scalar else v.items, np.int64)
            except Unsupported as exc:
                self.failures.append((name, node.op_type, str(exc)))
                self._set_unknown(node)

    def _set_unknown(self, node):
        for out in node.output:
            if out:
                self.values[out] = Unknown()

    def _fold(self, node):
        from onnx.reference import ReferenceEvaluator

        feeds = {i: self.values[i] for i in node.input if i}
        try:
            if node.op_type == "Constant":
                attr = node.attribute[0]
                value = onnx.helper.get_attribute_value(attr)
                if attr.name == "value":
                    out = [tensor_array(value, self.source)]
                elif attr.name in ("value_float", "value_int"):
                    out = [np.array(value, np.float32 if attr.name == "value_float" else np.int64)]
                elif attr.name in ("value_floats", "value_ints"):
                    out = [np.array(value, np.float32 if attr.name == "value_floats" else np.int64)]
                else:
                    raise Unsupported(f"Constant with {attr.name} is not supported")
            else:
                _check_fold_size(node, feeds)
                graph = onnx.helper.make_graph(
                    [node], "fold", [onnx.helper.make_tensor_value_info(i, onnx.TensorProto.UNDEFINED, None)
                                     for i in feeds],
                    [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output if o])
                model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", self.opset)])
                out = ReferenceEvaluator(model).run(None, feeds)
        except (Unsupported, FormatError):
            raise
        except Exception as exc:  # noqa: BLE001 - the reference evaluator's own errors
            raise Unsupported(f"constant folding failed ({type(exc).__name__}: {exc})") from None
        for name, value in zip([o for o in node.output if o], out):
            self.values[name] = np.asarray(value)


class RuntimeInput:
    """A graph input other than the data: sequence lengths or initial states given at run time; ``rows`` is
    the (start, stop) slice of its first axis that is used (exporters slice one (L*D, B, H) state input
    into each layer's (D, B, H))."""

    def __init__(self, name, dims, elem_type, rows=None):
        self.name, self.dims, self.elem_type, self.rows = name, dims, elem_type, rows


def make_spec(conv, dtype):
    if not conv.layers:
        raise FormatError(f"{conv.source}: no layers rnnjit can run were found")
    try:
        return ModelSpec(conv.layers, dtype=dtype, metadata={"source": conv.source})
    except SpecError as exc:
        raise FormatError(f"{conv.source}: the converted layers do not chain ({exc})") from None


def _check_fold_size(node, feeds):
    """Refuse, before folding, the ops whose output size is a value (a file could ask for terabytes)."""
    op, vals = node.op_type, [feeds.get(i) for i in node.input]
    try:
        if op == "ConstantOfShape":
            n = math.prod(int(d) for d in np.ravel(vals[0]))
        elif op == "Expand":
            n = math.prod(int(d) for d in np.broadcast_shapes(np.shape(vals[0]), tuple(int(d) for d in np.ravel(vals[1]))))
        elif op == "Tile":
            n = int(np.size(vals[0])) * math.prod(int(r) for r in np.ravel(vals[1]))
        elif op == "Range":
            start, limit, delta = (float(np.ravel(v)[0]) for v in vals[:3])
            n = abs((limit - start) / delta) if delta else float("inf")
        else:
            return
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise Unsupported(f"cannot fold {op} ({exc})") from None
    if n > MAX_ELEMENTS:
        raise FormatError(f"node {node.name or op!r} ({op}) would make a tensor of {n:.3g} elements; rnnjit refuses "
                          f"tensors over {MAX_ELEMENTS} elements")


def tensor_array(t, source):
    """An initializer / Constant tensor as a numpy array, its declared size checked before anything is read.

    External data (``data_location = EXTERNAL``) is read only from a file inside the model file's directory
    (after resolving ``..`` and symlinks), and only the bytes the tensor declares.
    """
    name = t.name or "<unnamed>"
    dims = [int(d) for d in t.dims]
    count = math.prod(dims)
    if any(d < 0 for d in dims) or count > MAX_ELEMENTS:
        raise FormatError(f"{source}: tensor {name!r} declares dims {dims}; rnnjit refuses tensors over "
                          f"{MAX_ELEMENTS} elements")
    if t.data_location == onnx.TensorProto.EXTERNAL:
        return _external_array(t, name, dims, count, source)
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.data_type)
    except (KeyError, ValueError, TypeError):
        raise FormatError(f"{source}: tensor {name!r} has data type {t.data_type}, which rnnjit does not read") from None
    if t.HasField("raw_data") and len(t.raw_data) != count * np.dtype(dtype).itemsize:
        raise FormatError(f"{source}: tensor {name!r} declares dims {dims} ({count * np.dtype(dtype).itemsize} "
                          f"bytes) but holds {len(t.raw_data)} bytes")
    try:
        return numpy_helper.to_array(t)
    except Exception as exc:  # noqa: BLE001 - onnx's decoding errors, of many types
        raise FormatError(f"{source}: unreadable tensor {name!r} ({type(exc).__name__}: {exc})") from None


def _external_array(t, name, dims, count, source):
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    if not os.path.isfile(str(source)):
        raise FormatError(f"{source}: tensor {name!r} keeps its data in an external file ({location!r}); load the "
                          f"model from its path so that the file can be found next to it")
    base = os.path.realpath(os.path.dirname(os.path.abspath(str(source))))
    target = os.path.realpath(os.path.join(base, location))
    if not location or os.path.isabs(location) or os.path.commonpath([base, target]) != base:
        raise UnsafeFileError(f"{source}: tensor {name!r} points its external data at {location!r}, outside the "
                              f"model's directory; refused")
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type))
        offset = int(info.get("offset", 0))
        nbytes = count * dtype.itemsize
        length = int(info.get("length", nbytes))
    except (KeyError, ValueError, TypeError) as exc:
        raise FormatError(f"{source}: tensor {name!r}: bad external data description ({exc})") from None
    if not os.path.isfile(target):
        raise FormatError(f"{source}: tensor {name!r}: external data file {location!r} not found")
    size = os.path.getsize(target)
    if offset < 0 or length != nbytes or offset + nbytes > size:
        raise FormatError(f"{source}: tensor {name!r} declares {nbytes} bytes at offset {offset} (length "
                          f"{length}) of {location!r}, which has {size} bytes")
    with open(target, "rb") as fh:
        fh.seek(offset)
        data = fh.read(nbytes)
    return np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(dims)
