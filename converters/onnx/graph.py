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
import re

import numpy as np
import onnx
from onnx import numpy_helper

from engine import ModelSpec, Normalize
from engine.spec import Input, Node
from engine.errors import FormatError, SpecError, UnsafeFileError

from ..limits import MAX_ELEMENTS


MAX_IF_DEPTH = 16
BIG = 2 ** 62      # an "end" at or above this is "to the end" (exporters write INT64_MAX)


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
    """The data: roles per axis, sizes of the static roles, and the graph edge (a ModelSpec node's output or the
    data input) that carries it. Roles: "T" time, "B" batch ("x0"/"x1" one of them, not yet known which), "F"
    the features (the last axis of a frame), "C" a frame axis before it (channels of a spectrogram frame), "D"
    the directions of a bidirectional layer's output (the edge holds them side by side in its features), "1" a
    unit axis the edge's frame does not have."""

    def __init__(self, roles, sizes, edge, reversed_time=False):
        self.roles, self.sizes, self.edge, self.reversed_time = tuple(roles), dict(sizes), edge, reversed_time

    def with_roles(self, roles, sizes=None):
        return Dyn(roles, self.sizes if sizes is None else sizes, self.edge, self.reversed_time)

    @property
    def feat(self):
        return self.sizes["F"]

    @property
    def frame_roles(self):
        return tuple(r for r in self.roles if r in FRAME_ROLES)


FRAME_ROLES = ("C", "F")


class Late:
    """A tensor known only when the model runs: ``fn`` of a graph input's array (RuntimeInput: an initial state
    or its part) or of the model's final states (State: a recurrent layer's Y_h / Y_c, and what the graph makes of
    them: squeezed, stacked, transposed). ``dims``: its shape, ints and names for the dynamic axes ("B" the
    batch). The shape ops (Slice, Squeeze, Unsqueeze, Transpose, Concat) build on ``fn`` with ``then``."""

    def then(self, f, dims):
        raise NotImplementedError


class State(Late):
    """The final states: ``fn(states)`` with ``states`` Model.run's final-state dict; ``keys`` the states read."""

    def __init__(self, fn, dims, keys):
        self.fn, self.dims, self.keys = fn, None if dims is None else list(dims), frozenset(keys)

    def then(self, f, dims):
        return State(lambda st, g=self.fn: f(g(st)), dims, self.keys)

    @staticmethod
    def concat(parts, axis):
        return State(lambda st: np.concatenate([p.fn(st) for p in parts], axis), None,
                     frozenset().union(*(p.keys for p in parts)))


class Dual:
    """One tensor that is both the data and a final state: the h of an LSTM cell an exporter wrote out step by step
    (fusions.py), which the graph reads on as data and also stacks into its next state. An op reading it is
    converted with it as data and, apart, as a state; the readings that convert are kept (shape ops keep both)."""

    def __init__(self, data, state):
        self.data, self.state = data, state


class Unknown:
    """The output of a node that failed to convert (so its consumers are not reported again)."""


TIME_NAMES = re.compile(r"^(time|times|time_?steps?|seq|seq_?len(gth)?|sequence(_?length)?|length|n?_?frames?|"
                        r"num_?frames|steps?)$", re.I)
STATE_NAMES = re.compile(r"(state|hidden|cache|recurrent|memory|context|past|^[hc]_?\d*$|^[hc]_?(in|out)$|"
                         r"^(h|c)0|_[hc]0?$)", re.I)
BATCH_NAMES = re.compile(r"^(batch|batch_?size|n?_?batch|bs)$", re.I)


class Converter:
    def __init__(self, model, source, registry, time_axis=None, batch_axis=None, fixed_inputs=None, frame_shape=None,
                 frame_context=None):
        self.model, self.source, self.registry = model, source, registry
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        if self.opset is None:
            raise FormatError(f"{source}: the model imports no default-domain opset")
        self.values, self.nodes, self.failures, self.producers = {}, [], [], {}
        self.bindings = {}              # input axis symbol ("x0"/"x1") -> "T" or "B"
        self.state_inputs = {}          # graph input name -> [(state key, roles, view of the input)]
        self.state_loops = []           # StateLoop: a state input fed back from a state output
        self.lengths_input = None
        graph = model.graph
        for init in graph.initializer:
            self.values[init.name] = tensor_array(init, source)
        # how many times each tensor is read (graph outputs count): a layer may absorb the next op (a bias, a
        # scale) only when nothing else reads what it wrote
        self.uses = {}
        for node in graph.node:
            for i in node.input:
                self.uses[i] = self.uses.get(i, 0) + 1
        for out in graph.output:
            self.uses[out.name] = self.uses.get(out.name, 0) + 1
        self.edge_uses = {}
        for name, value in (fixed_inputs or {}).items():
            if name not in {i.name for i in graph.input}:
                raise FormatError(f"{source}: fixed_inputs names {name!r}, which is not a graph input (inputs: "
                                  f"{[i.name for i in graph.input]})")
            self.values[name] = np.asarray(value)
        data_inputs = [i for i in graph.input if i.name not in self.values]
        self.frame_shape, self.frame_context = frame_shape, frame_context
        self._bind_inputs(data_inputs, time_axis, batch_axis, fixed_inputs)

    @property
    def layers(self):
        return [n.layer for n in self.nodes]

    # ---- values ----
    def _bind_inputs(self, inputs, time_axis, batch_axis, fixed_inputs=None):
        """The data input (the first float input of rank 3, else 2, else 4, not named like a state when another is)
        and the role of each of its axes: time
        and batch from ``time_axis`` / ``batch_axis``, else from the axes' symbolic names ("batch", "time",
        "seq_len", ...), else (rank 3) the first two axes, the one the recurrent node reads as time being time."""
        self.data_input, self.unbatched = None, False
        floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)
        shapes = {}
        for inp in inputs:
            tt = inp.type.tensor_type
            shapes[inp.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim]
        candidates = [i for i in inputs if i.type.tensor_type.elem_type in floats]
        plain = [i for i in candidates if not STATE_NAMES.search(i.name)]      # not named like a state or cache
        chosen, self.input_dtype = None, "float"
        for rank in (3, 2, 4):
            chosen = next((i for i in (plain or candidates) if len(shapes[i.name]) == rank), None)
            if chosen is not None:
                break
        ints = [i for i in inputs if i.type.tensor_type.elem_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
                and len(shapes[i.name]) in (1, 2) and i.name not in (fixed_inputs or {})]
        if chosen is None and ints:                 # token ids, (batch, time) or (time,): an Embedding's input
            chosen, self.input_dtype = ints[0], "int64"
        if chosen is None:
            raise FormatError(f"{self.source}: no float graph input of rank 3 (time, batch, features), 2 (time, "
                              f"features) or 4 (with a frame of two axes); inputs: "
                              f"{[(i.name, len(shapes[i.name])) for i in inputs]}")
        self.data_input, self.input_dims = chosen.name, shapes
        dims = shapes[chosen.name]
        roles = self._input_roles(dims, time_axis, batch_axis) if self.input_dtype == "float" else \
            self._id_roles(dims, time_axis, batch_axis)
        self.unbatched = "B" not in roles and "x0" not in roles
        if self.frame_shape is not None:
            frame_axes = [i for i, r in enumerate(roles) if r in FRAME_ROLES]
            given = (self.frame_shape,) if isinstance(self.frame_shape, int) else tuple(self.frame_shape)
            if len(given) != len(frame_axes) or any(isinstance(dims[i], int) and dims[i] != g
                                                    for i, g in zip(frame_axes, given)):
                raise FormatError(f"{self.source}: frame_shape={self.frame_shape} does not fit data input "
                                  f"{chosen.name!r} {dims} (frame axes {frame_axes})")
            dims = list(dims)
            for i, g in zip(frame_axes, given):
                dims[i] = int(g)
        sizes = {}
        frame = [r for r in roles if r in FRAME_ROLES]
        for axis, role in enumerate(roles):
            if role in FRAME_ROLES and isinstance(dims[axis], int):
                sizes[role] = dims[axis]
        self.axis_dims = {role: dims[axis] for axis, role in enumerate(roles)
                          if role in ("x0", "x1", "T", "B") and isinstance(dims[axis], int)}
        self.input_roles = tuple(roles)
        self.input_frame = frame
        self.input_sizes = dict(sizes)
        self.values[chosen.name] = Dyn(roles, sizes, chosen.name)
        self.edge_uses[chosen.name] = self.uses.get(chosen.name, 0)
        if self.frame_context:
            self._frame_context(chosen.name, int(self.frame_context))
        for inp in inputs:
            if inp.name != self.data_input:
                self.values[inp.name] = RuntimeInput(inp.name, shapes[inp.name], inp.type.tensor_type.elem_type)

    def _id_roles(self, dims, time_axis, batch_axis):
        """Axes of an integer ids input: (time,), or (batch, time) / (time, batch) by the given axes, the names, or
        (unsaid) decided by the recurrent node that reads them."""
        if len(dims) == 1:
            return ("T",)
        t = time_axis % 2 if time_axis is not None else None
        b = batch_axis % 2 if batch_axis is not None else None
        for i, d in enumerate(dims):
            if isinstance(d, str) and t is None and TIME_NAMES.match(d):
                t = i
            if isinstance(d, str) and b is None and BATCH_NAMES.match(d):
                b = i
        if t is None and b is None:
            return ("x0", "x1")
        t = t if t is not None else 1 - b
        return ("T", "B") if t == 0 else ("B", "T")

    def _input_roles(self, dims, time_axis, batch_axis):
        r = len(dims)
        where = f"{self.source}: data input {self.data_input!r} {['?' if d is None else d for d in dims]}"
        for what, axis in (("time_axis", time_axis), ("batch_axis", batch_axis)):
            if axis is not None and not -r <= axis < r:
                raise FormatError(f"{where}: {what}={axis} is not an axis of a rank-{r} input")
        t = time_axis % r if time_axis is not None else None
        b = batch_axis % r if batch_axis is not None else None
        named = lambda pattern: [i for i, d in enumerate(dims) if isinstance(d, str) and pattern.match(d)]  # noqa
        if t is None and len(named(TIME_NAMES)) == 1:
            t = named(TIME_NAMES)[0]
        if b is None and len(named(BATCH_NAMES)) == 1 and r > 2:
            b = named(BATCH_NAMES)[0]
        if t is not None and t == b:
            raise FormatError(f"{where}: time and batch cannot be the same axis ({t})")
        if r == 2:
            if batch_axis is not None or (time_axis is None and b is not None):   # (batch, frame): one per call
                b = b if b is not None else 0
                return ("B", "F") if b == 0 else ("F", "B")
            if t not in (None, 0):
                raise FormatError(f"{where}: a rank-2 input is read as (time, features), time first, or with "
                                  f"batch_axis= as (batch, frame), one frame per call")
            return ("T", "F")
        if r == 3 and t is None and b is None:
            return ("x0", "x1", "F")            # time and batch: decided by the recurrent node that reads them
        if r == 3 and (t is None) != (b is None):   # one known: the other is the other leading axis
            known = t if t is not None else b
            rest = [i for i in range(3) if i != known and i != 2] if known != 2 else [0]
            if known == 2 or not rest:
                raise FormatError(f"{where}: cannot tell its time and batch axes apart; pass time_axis= and "
                                  f"batch_axis=")
            t, b = (known, rest[0]) if t is not None else (rest[0], known)
        if t is None or b is None:
            raise FormatError(f"{where}: cannot tell which axes are time and batch (their names do not say); pass "
                              f"time_axis= and batch_axis=")
        frame = [i for i in range(r) if i not in (t, b)]
        if len(frame) > 2:
            raise FormatError(f"{where}: a frame of {len(frame)} axes; rnnjit reads frames of one or two axes")
        roles = [None] * r
        roles[t], roles[b] = "T", "B"
        for i, role in zip(frame, FRAME_ROLES[2 - len(frame):]):
            roles[i] = role
        return tuple(roles)

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
        for symbol, dim in self.axis_dims.items():
            if self.resolve(symbol) == self.resolve(role):
                return dim
        return None

    def per_call(self):
        """True for a graph that takes one frame per call (its data input has no time axis, or declares one of
        size 1): such an export may drop the time axis (Squeeze, Reshape) and give it back; in the model it is
        always there."""
        return self.static_size("T") == 1 or not any(r in ("T", "x0", "x1") for r in self.input_roles)

    def _frame_context(self, name, k):
        """The data as the graph reads it: the last ``k`` values of the previous frame, then the frame (a chunk
        model whose caller prepends that context: a Slice of the frame's tail, a one-frame delay, a Concat)."""
        from engine import TemporalConv1d
        from engine.spec import Concat, Slice

        x = self.values[name]
        if x.frame_roles != ("F",) or x.sizes.get("F") is None or not 0 < k <= x.sizes["F"]:
            raise FormatError(f"{self.source}: frame_context={k} needs a data input of one frame axis of at least "
                              f"{k} values (give frame_shape= when the graph leaves it open)")
        tail = self.emit(x, Slice(0, -k, None))
        delay = np.zeros((k, 1, 2))
        delay[:, 0, 0] = 1.0                                          # y_t = x_{t-1}, exactly
        prev = self.emit(tail, TemporalConv1d(delay, groups=k))
        cat = self.emit(prev, Concat(0), x)
        self.values[name] = Dyn(x.roles, dict(x.sizes, F=x.sizes["F"] + k), cat.edge)
        self.edge_uses[cat.edge] = self.uses.get(name, 0)
        self.input_sizes = dict(x.sizes)

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

    def emit(self, dyn, layer, *others):
        """A ModelSpec node ``layer`` reading the data ``dyn`` (and ``others``): the data it outputs."""
        name = f"layers.{len(self.nodes)}"
        try:
            self.nodes.append(Node(name, layer, [dyn.edge] + [o.edge for o in others]))
        except SpecError as exc:
            raise Unsupported(str(exc)) from None
        self.producers[name] = self.nodes[-1]
        self.edge_uses[name] = 0
        return Dyn(dyn.roles, dyn.sizes, name, dyn.reversed_time)

    def absorbable(self, dyn, cls):
        """The node of class ``cls`` that wrote ``dyn``, when the op reading it may be folded into it (nothing
        else reads that edge); else None."""
        node = self.producers.get(dyn.edge)
        if node is None or not isinstance(node.layer, cls) or self.edge_uses.get(dyn.edge, 0) != 1:
            return None
        return node

    def emit_normalize(self, dyn, mean, scale):
        """(x - mean) * scale on the features, merged into an immediately preceding Normalize."""
        F = dyn.feat
        mean = np.broadcast_to(np.asarray(mean, np.float64).reshape(-1), (F,))
        scale = np.broadcast_to(np.asarray(scale, np.float64).reshape(-1), (F,))
        prev = self.absorbable(dyn, Normalize)
        try:
            if prev is not None:
                prev.layer = Normalize(prev.layer.mean + mean / prev.layer.scale, prev.layer.scale * scale)
                return dyn
            return self.emit(dyn, Normalize(mean, scale))
        except SpecError as exc:
            raise Unsupported(str(exc)) from None

    # ---- the walk ----
    def run(self):
        self.fused = []
        self.walk(self.model.graph)

    def walk(self, graph):
        """Convert ``graph``'s nodes in order (the main graph, or the branch of an If whose condition is known),
        after fusions.py has put back the layers its exporter spelled out."""
        from .fusions import fuse

        nodes, fused = fuse(graph.node, self.values, [o.name for o in graph.output], self.opset, self.data_input)
        self.fused += fused
        for node in nodes:
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
                                                  and node.op_type not in ("LSTM", "GRU", "RNN", "If")):
                    self._fold(node)
                    continue
                convert = self.registry.lookup(node.domain, node.op_type, self.opset)
                if convert is None:
                    raise Unsupported(f"no converter for {node.domain + '.' if node.domain else ''}{node.op_type} "
                                      f"at opset {self.opset}")
                if any(isinstance(v, Dual) for v in inputs):
                    self._convert_dual(node, convert)
                    continue
                convert(self, node)
                for i in node.input:
                    if isinstance(self.values.get(i), Dyn):
                        self.edge_uses[self.values[i].edge] -= 1
                for out in node.output:
                    v = self.values.get(out)
                    if out and isinstance(v, Dyn):
                        self.edge_uses[v.edge] = self.edge_uses.get(v.edge, 0) + self.uses.get(out, 0)
                for out in node.output:  # a shape vector of known ints is just a constant: fold what follows
                    v = self.values.get(out)
                    if isinstance(v, SymVec) and all(isinstance(i, (int, np.integer)) for i in v.items):
                        self.values[out] = np.array(v.items[0] if v.scalar else v.items, np.int64)
            except Unsupported as exc:
                self.failures.append((name, node.op_type, str(exc)))
                self._set_unknown(node)

    def _convert_dual(self, node, convert):
        """``node`` reads a Dual: converted once with every Dual as its data and once as its state."""
        duals = {i: self.values[i] for i in node.input if isinstance(self.values.get(i), Dual)}
        results, errors = [], []
        for side in ("data", "state"):
            for i, d in duals.items():
                self.values[i] = getattr(d, side)
            try:
                convert(self, node)
                results.append([self.values.get(o) for o in node.output])
            except Unsupported as exc:
                errors.append(str(exc))
                results.append(None)
        self.values.update(duals)
        if results == [None, None]:
            raise Unsupported(errors[0])
        for k, out in enumerate(node.output):
            if out:
                data, state = (r[k] if r is not None else None for r in results)
                self.values[out] = Dual(data, state) if data is not None and state is not None else \
                    data if data is not None else state

    def pair_state_loops(self, state_pairs=None):
        """After the walk: each graph output that is a cache (CacheOut) closes its loop; each recurrent state
        input is paired with the graph output that gives that layer's final state back (checked on a random probe;
        ``state_pairs`` {input: output} chooses where several do, and is checked the same way)."""
        for out in self.model.graph.output:
            v = self.values.get(out.name)
            if isinstance(v, CacheOut):
                if v.loop.key is None:
                    self.failures.append((out.name, "graph output", f"cache {v.loop.input!r} feeds no convolution "
                                          f"rnnjit can pair it with"))
                elif v.loop not in self.state_loops:
                    v.loop.output = out.name
                    self.state_loops.append(v.loop)
        finals = [(out.name, v.state if isinstance(v, Dual) else v) for out, v in
                  ((o, self.values.get(o.name)) for o in self.model.graph.output)
                  if isinstance(v, State) or (isinstance(v, Dual) and isinstance(v.state, State))]
        rng = np.random.default_rng(0)
        pairs = dict(state_pairs or {})
        unknown = sorted(set(pairs) - set(self.state_inputs))
        if unknown:
            raise FormatError(f"{self.source}: state_pairs names {unknown}, which are not state inputs of the graph "
                              f"(those feeding recurrent states: {sorted(self.state_inputs) or 'none'})")
        outputs = [o.name for o in self.model.graph.output]
        for name, target in pairs.items():
            if target not in outputs:
                raise FormatError(f"{self.source}: state_pairs pairs {name!r} with {target!r}, which is not a graph "
                                  f"output (outputs: {outputs})")
        for name, uses in self.state_inputs.items():
            # the output that gives back exactly what this input gave the layers: a random input, through the
            # input's views into the layers' initial states, through each output's view out of the final states
            dims = self.input_dims[name]
            probe = rng.standard_normal([d if isinstance(d, int) else 2 for d in dims])
            states = {key: state_from_input(probe, view, roles) for key, roles, view in uses}
            matches = []
            for out, v in finals:
                if v.keys <= set(states):
                    try:
                        back = v.fn(states)
                    except (ValueError, IndexError):
                        continue
                    if back.shape == probe.shape and np.array_equal(back, probe):
                        matches.append(out)
            key = ", ".join(k for k, _, _ in uses)
            if name in pairs:
                if pairs[name] not in matches:
                    self.failures.append((name, "state input", f"state_pairs pairs it with {pairs[name]!r}, which "
                                          f"does not give back what it gave the layers ({key}); outputs that do: "
                                          f"{matches or 'none'}"))
                    continue
                matches = [pairs[name]]
            if len(matches) == 1:
                self.state_loops.append(StateLoop(name, key, output=matches[0]))
            elif len(matches) > 1:
                self.failures.append((name, "state input", f"outputs {matches} each give back what it gave the "
                                      f"layers ({key}); say which is its next state with state_pairs={{{name!r}: "
                                      f"...}}"))

    def inline(self, node, graph):
        """The outputs of If ``node`` are those of ``graph``, its branch that the known condition takes."""
        self.depth = getattr(self, "depth", 0) + 1
        if self.depth > MAX_IF_DEPTH:
            raise FormatError(f"{self.source}: If branches nested more than {MAX_IF_DEPTH} deep (node "
                              f"{node.name or node.op_type!r}); exporters nest a few")
        for init in graph.initializer:
            self.values[init.name] = tensor_array(init, self.source)
        for n in graph.node:
            for i in n.input:
                self.uses[i] = self.uses.get(i, 0) + 1
        for out in graph.output:
            self.uses[out.name] = self.uses.get(out.name, 0) + 1
        self.walk(graph)
        self.depth -= 1
        for out, inner in zip(node.output, graph.output):
            if out:
                self.values[out] = self.values.get(inner.name, Unknown())

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


class RuntimeInput(Late):
    """A graph input other than the data: sequence lengths, or an initial state (or part of one: exporters
    slice one (L*D, B, H) state input into each layer's (D, B, H), or pack h and c of every layer into one
    tensor); ``fn`` takes the fed array to the part used here, ``dims`` its shape."""

    def __init__(self, name, dims, elem_type, fn=None):
        self.name, self.dims, self.elem_type, self.fn = name, list(dims), elem_type, fn

    def then(self, f, dims):
        g = self.fn
        return RuntimeInput(self.name, dims, self.elem_type, f if g is None else (lambda a: f(g(a))))


class StateLoop:
    """A state the graph takes as input ``input`` and gives back as output ``output``: inside the model it is the
    state ``key`` of a node (``<node>.h``, ``<node>.frames``), which a stream owns and carries from step to step.
    ``to_state`` turns the input's array into the state's (1 or D, B, size) form, ``from_state`` the other way."""

    def __init__(self, input, key=None, to_state=None, from_state=None, output=None):
        self.input, self.key, self.to_state, self.from_state, self.output = input, key, to_state, from_state, output

    def bind(self, edge, roles, data):
        """The cache is the past input frames of node ``edge`` (a convolution): the graph lays it out with axis
        ``roles`` (its time axis holding the frames), the node as (1, B, frames * frame size), oldest first."""
        self.key = f"{edge}.frames"
        order = [roles.index("B"), roles.index("T")] + [i for i, r in enumerate(roles) if r in FRAME_ROLES] + \
            [i for i, r in enumerate(roles) if r == "1"]
        frame = [data.sizes[r] for r in roles if r in FRAME_ROLES] + [1 for r in roles if r == "1"]
        inverse = np.argsort(order)
        self.to_state = lambda arr: np.ascontiguousarray(arr.transpose(order)).reshape(1, arr.shape[order[0]], -1)
        self.from_state = lambda st: st.reshape((st.shape[1], -1, *frame)).transpose(inverse)


class CacheCat:
    """Concat(cache input, data) along time: the past frames a streaming export keeps before its new ones."""

    def __init__(self, cache, data, axis, frames):
        self.cache, self.data, self.axis, self.frames = cache, data, axis, frames
        self.loop = StateLoop(cache.name)


class CacheOut:
    """The last frames of a CacheCat, which the graph outputs as its next cache (a StateLoop's output side)."""

    def __init__(self, loop):
        self.loop = loop


def output_edges(conv):
    """The edges of the graph outputs that carry data, in order, each once."""
    edges = []
    for out in conv.model.graph.output:
        v = conv.values.get(out.name)
        if isinstance(v, Dyn) and v.edge in conv.producers and v.edge not in edges:
            edges.append(v.edge)
    return edges


def make_spec(conv, dtype):
    if not conv.nodes:
        raise FormatError(f"{conv.source}: no layers rnnjit can run were found")
    outputs = output_edges(conv) or [conv.nodes[-1].name]   # (a graph that outputs only final states)
    metadata = {"source": conv.source}
    if conv.fused:
        metadata["onnx.fused"] = "; ".join(conv.fused)
    if conv.frame_context:
        metadata["onnx.frame_context"] = (f"each frame is read after the last {conv.frame_context} values of the "
                                          f"frame before it (the stream keeps them)")
    loops = [loop for loop in conv.state_loops if loop.output]
    if loops:
        metadata["onnx.state_loops"] = "; ".join(f"{loop.input} -> {loop.output} ({loop.key})" for loop in loops)
    previous = conv.data_input
    chain = len(outputs) == 1 and outputs[0] == conv.nodes[-1].name and len(conv.input_frame) <= 1 and \
        conv.input_dtype == "float"
    for node in conv.nodes:
        chain = chain and node.inputs == (previous,)
        previous = node.name
    try:
        if chain:
            return ModelSpec(conv.layers, input_size=conv.input_sizes.get("F"), dtype=dtype, metadata=metadata)
        frame = []
        for role in conv.input_frame:
            size = conv.input_sizes.get(role)
            if size is None and role == "F" and len(conv.input_frame) == 1:
                size = next((getattr(n.layer, "input_size", None) for n in conv.nodes
                             if conv.data_input in n.inputs), None)
            if size is None:
                raise FormatError(f"{conv.source}: the size of the data input's {role} axis is not declared")
            frame.append(int(size))
        if conv.input_dtype == "int64":
            return ModelSpec.graph([Input(conv.data_input, (), "int64")], conv.nodes, outputs, dtype=dtype,
                                   metadata=metadata)
        return ModelSpec.graph([Input(conv.data_input, tuple(frame) or (1,))], conv.nodes, outputs, dtype=dtype,
                               metadata=metadata)
    except SpecError as exc:
        raise FormatError(f"{conv.source}: the converted layers do not form a model ({exc})") from None


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


def state_from_input(arr, view, roles):
    """A recurrent layer's initial state (D, B, H) from the fed array of a state input, through ``view``."""
    arr = arr if view is None else view(np.asarray(arr))
    return arr.transpose(1, 0, 2) if tuple(roles) == ("B", "D", "F") else arr
