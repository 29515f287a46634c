"""ModelSpec: the neutral description of a model that every converter produces and the engine consumes.

A ModelSpec is a graph over streams of frames: named inputs (each with the shape of one frame and a dtype),
nodes (a layer, reading named edges; a node's name is the name of the edge it writes) and named outputs.
Every edge carries one frame per timestep; time, batch and streams are never part of a frame's shape. A chain
of layers (``ModelSpec([LSTM(...), Dense(...)])``) is the graph of one input and one output.

Weights are held in ONE canonical layout, PyTorch's:

* LSTM gates stacked as **i, f, g, o** (g is the cell candidate, ONNX's "c"); GRU gates as **r, z, n**;
  RNN has one gate.
* per direction: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H_out), ``bias_ih`` (G*H,), ``bias_hh`` (G*H,);
  LSTM optionally ``weight_hr`` (H_out, H) (projection, H_out = proj_size) and ``peephole`` (3, H) in
  gate order **i, f, o**.
* a bidirectional layer outputs ``concat(forward, reverse)`` along the feature axis: (.., 2 * H_out).
* GRU keeps ``linear_before_reset`` as a flag: True (1) is PyTorch and Keras ``reset_after=True``;
  False (0) is the ONNX default and Keras ``reset_after=False``.

Gate functions follow the ONNX operators: LSTM ``activations`` are (f, g, h), GRU (f, g), RNN (f), one
tuple per direction. ``clip`` bounds every gate pre-activation to [-clip, clip] (as onnxruntime does,
after peepholes and biases are added). ``input_forget`` couples the gates: f = 1 - i.

The engine never guesses a layout: converters translate into this one (see converters/), and layers
validate shapes on construction, naming the layer and the shapes when they do not fit. Each layer class lives
in its kind's room (engine/layers/) with the rest of what the engine knows of that kind; this module holds the
ModelSpec and re-exports the layer classes.
"""

import numpy as np

from .errors import SpecError
from .layers import KINDS
from .layers.activation import ACTIVATIONS, Activation  # noqa: F401 - re-exported
from .layers.conv import TemporalConv1d, TemporalConv2d  # noqa: F401 - re-exported
from .layers.dense import Dense  # noqa: F401 - re-exported
from .layers.elementwise import Add, Div, Elementwise, Max, Min, Mul, Sub  # noqa: F401 - re-exported
from .layers.embedding import Embedding  # noqa: F401 - re-exported
from .layers.frame import (Concat, Flatten, FrameOp, Pad, Reshape, Slice, Squeeze, Transpose, Unsqueeze,  # noqa: F401
                           split)
from .layers.framewise import FrameConv, FrameConvTranspose, Pool, PReLU  # noqa: F401 - re-exported
from .layers.gru import GRU  # noqa: F401 - re-exported
from .layers.lstm import LSTM  # noqa: F401 - re-exported
from .layers.masking import Masking  # noqa: F401 - re-exported
from .layers.norm import BatchNorm, GroupNorm, InstanceNorm, L2Norm, LayerNorm  # noqa: F401 - re-exported
from .layers.normalize import Normalize  # noqa: F401 - re-exported
from .layers.recurrent import DIRECTIONS  # noqa: F401 - re-exported
from .layers.rnn import RNN  # noqa: F401 - re-exported
from .layers.temporal_pool import CumulativePool, TemporalPool  # noqa: F401 - re-exported
from .layers.validate import _array, _positive_int

# the native format's "kind" (and, for recurrent layers, "cell") -> the layer class, from the kinds table
LAYER_KINDS = {k.spec_class.kind: k.spec_class for k in KINDS if k.spec_class.kind != "recurrent"}
RECURRENT_CELLS = {k.spec_class.cell: k.spec_class for k in KINDS if k.spec_class.kind == "recurrent"}


def layer_from_config(config, arrays):
    """A layer from its native-format config (``to_config``) and arrays, by its kind (and cell)."""
    kind = config.get("kind")
    if kind == "recurrent":
        cls = RECURRENT_CELLS.get(config.get("cell"))
        if cls is None:
            raise SpecError(f"unknown recurrent cell {config.get('cell')!r}; expected one of {sorted(RECURRENT_CELLS)}")
        return cls.from_config(config, arrays)
    if kind not in LAYER_KINDS:
        raise SpecError(f"unknown layer kind {kind!r}; expected one of {sorted(LAYER_KINDS) + ['recurrent']}")
    return LAYER_KINDS[kind].from_config(config, arrays)


# ----------------------------------------------------------------------------------------------------
# The model description: a graph over streams of frames
# ----------------------------------------------------------------------------------------------------

DTYPES = ("float32", "float64")
INPUT_DTYPES = ("float", "int64")   # an input carries float features (the model's dtype) or integer ids


class Input:
    """A graph input: its ``name``, the ``shape`` of one frame (an int for a feature vector, or a tuple; time,
    batch and streams are never part of it) and its ``dtype``: "float" (features, in the model's dtype) or
    "int64" (integer ids, e.g. tokens for an embedding)."""

    __slots__ = ("name", "shape", "dtype")

    def __init__(self, name, shape, dtype="float"):
        if not isinstance(name, str) or not name:
            raise SpecError(f"an Input needs a non-empty name, got {name!r}")
        if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
            shape = (shape,)
        try:
            shape = tuple(_positive_int(s, "frame shape", f"Input {name!r}") for s in shape)
        except TypeError:
            raise SpecError(f"Input {name!r}: the frame shape must be an int or a tuple of ints, got {shape!r}") \
                from None
        if dtype not in INPUT_DTYPES:
            raise SpecError(f"Input {name!r}: dtype must be one of {INPUT_DTYPES}, got {dtype!r}")
        self.name, self.shape, self.dtype = name, shape, dtype

    @property
    def size(self):
        return int(np.prod(self.shape))

    def to_config(self):
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    def __repr__(self):
        return f"Input({self.name!r}, {self.shape}{'' if self.dtype == 'float' else ', ' + self.dtype})"


class Node:
    """One node of a graph: a ``name`` (also the name of the edge it outputs, and the prefix of its state
    keys: ``<name>.h``), a ``layer`` (a ModelSpec layer: LSTM, GRU, RNN, Dense, Add, ...) and the names of
    the edges it reads (graph inputs or other nodes), in the order its kind takes them."""

    __slots__ = ("name", "layer", "inputs")

    def __init__(self, name, layer, inputs):
        if not isinstance(name, str) or not name:
            raise SpecError(f"a Node needs a non-empty name, got {name!r}")
        if isinstance(layer, str):
            layer = Activation(layer)
        if not hasattr(layer, "to_config"):
            raise SpecError(f"node {name!r}: expected a layer (LSTM, GRU, RNN, Dense, TemporalConv1d, LayerNorm, "
                            f"Add, ...), got {type(layer).__name__}")
        if isinstance(inputs, str):
            inputs = (inputs,)
        inputs = tuple(inputs)
        if not inputs or not all(isinstance(e, str) for e in inputs):
            raise SpecError(f"node {name!r}: inputs must be one or more edge names, got {inputs!r}")
        self.name, self.layer, self.inputs = name, layer, inputs

    def __repr__(self):
        return f"Node({self.name!r}, {self.layer!r}, {list(self.inputs)})"


def _topological(nodes, known):
    """``nodes`` ordered so that every node comes after the nodes it reads: the given order when it already
    is one, else each time the first node (in the given order) whose inputs are all computed. A cycle or an
    unknown edge is an error naming it."""
    producers = {node.name: node for node in nodes}
    for node in nodes:
        for edge in node.inputs:
            if edge not in producers and edge not in known:
                raise SpecError(f"node {node.name!r} reads edge {edge!r}, which no graph input or node provides "
                                f"(edges: {sorted(set(known) | set(producers))})")
    done, order, pending = set(known), [], list(nodes)
    while pending:
        ready = next((node for node in pending if all(edge in done for edge in node.inputs)), None)
        if ready is None:
            raise SpecError(f"the graph has a cycle through nodes {sorted(node.name for node in pending)}; "
                            f"a node that feeds itself needs a recurrent layer, not a loop of edges")
        order.append(ready)
        done.add(ready.name)
        pending.remove(ready)
    return order


class Clock:
    """When an edge's frames come, in ticks of the graph inputs (one tick per input frame): frame j at tick
    ``j * stride + delay``. ``run`` lists the (stride, tail - warmup) of the nodes with a Timing on the way, which is
    what decides the edge's length in ``Model.run``. Graph inputs are Clock(1, 0, ())."""

    __slots__ = ("stride", "delay", "run")

    def __init__(self, stride, delay, run):
        self.stride, self.delay, self.run = int(stride), int(delay), tuple(run)

    def describe(self):
        rate = "a frame per input frame" if self.stride == 1 else f"a frame per {self.stride} input frames"
        return rate + (f", {self.delay} frame(s) late" if self.delay else "")

    def __eq__(self, other):
        return isinstance(other, Clock) and (self.stride, self.delay, self.run) == (other.stride, other.delay,
                                                                                   other.run)

    def __hash__(self):
        return hash((self.stride, self.delay, self.run))

    def __repr__(self):
        return f"Clock(stride={self.stride}, delay={self.delay})"


class ModelSpec:
    """A model: named inputs, nodes reading and writing named edges, named outputs, and the dtype the model
    runs in by default. Every edge carries one frame per timestep, a tensor of static shape.

    ``ModelSpec([LSTM(...), Dense(...)])`` is a chain: one float input ``"input"`` of ``input_size`` features,
    nodes named ``layers.<i>``, each reading the one before, and the last one's edge as the one output.
    ``input_size`` is taken from the first layer that has one; a chain that starts with an activation must
    say it. ``ModelSpec.graph(inputs, nodes, outputs)`` builds any other graph.

    Frame shapes propagate on construction; a node whose input does not fit is an error naming the node,
    the edge and both shapes.
    """

    def __init__(self, layers, input_size=None, dtype="float32", name=None, metadata=None):
        layers = list(layers)
        if not layers:
            raise SpecError("a ModelSpec needs at least one layer")
        for i, layer in enumerate(layers):
            if isinstance(layer, str):
                layers[i] = Activation(layer)
            elif not hasattr(layer, "to_config"):
                from .layers import KINDS

                raise SpecError(f"layer {i}: expected a layer ({', '.join(k.spec_class.__name__ for k in KINDS)}), "
                                f"got {type(layer).__name__}")
        if input_size is None:
            input_size = next((getattr(layer, "input_size", None) for layer in layers
                               if getattr(layer, "input_size", None) is not None), None)
            if input_size is None:
                raise SpecError("a chain whose first layer does not say its input width (an activation, a norm) "
                                "needs input_size")
        inputs = [Input("input", _positive_int(input_size, "input_size", "ModelSpec"))]
        nodes, edge = [], "input"
        for i, layer in enumerate(layers):
            nodes.append(Node(f"layers.{i}", layer, edge))
            edge = nodes[-1].name
        self._build(inputs, nodes, [edge], dtype, name, metadata, chain=True)

    @classmethod
    def graph(cls, inputs, nodes, outputs, dtype="float32", name=None, metadata=None, constants=None):
        """A graph model. ``inputs``: Input objects, or a dict name -> frame shape (float inputs);
        ``nodes``: Node objects in any order; ``outputs``: the names of the edges the model outputs, in order;
        ``constants``: name -> array, edges that carry the same frame at every timestep (a bias to add, a scale to
        multiply, a frame to concatenate), read like any other edge.
        """
        if isinstance(inputs, dict):
            inputs = [Input(k, v) for k, v in inputs.items()]
        inputs = list(inputs)
        nodes = list(nodes)
        if isinstance(outputs, str):
            outputs = [outputs]
        spec = cls.__new__(cls)
        spec._build(inputs, nodes, list(outputs), dtype, name, metadata, chain=False, constants=constants)
        return spec

    def _build(self, inputs, nodes, outputs, dtype, name, metadata, chain, constants=None):
        from .layers import kind_of

        if not inputs or not all(isinstance(i, Input) for i in inputs):
            raise SpecError(f"a graph needs one or more inputs (engine.spec.Input), got {inputs!r}")
        if not nodes or not all(isinstance(n, Node) for n in nodes):
            raise SpecError("a graph needs one or more nodes (engine.spec.Node)")
        self.constants = {}
        for cname, value in (constants or {}).items():
            arr = _array(np.atleast_1d(value), f"constant {cname!r}", "ModelSpec", np.ndim(np.atleast_1d(value)))
            if not isinstance(cname, str) or not cname or arr.size == 0:
                raise SpecError(f"a constant needs a non-empty name and at least one value, got {cname!r}")
            self.constants[cname] = arr
        names = [i.name for i in inputs] + list(self.constants) + [n.name for n in nodes]
        dup = sorted({x for x in names if names.count(x) > 1})
        if dup:
            raise SpecError(f"edge names must be unique (a node's name is the name of its output edge); "
                            f"used more than once: {dup}")
        dtype = np.dtype(dtype).name
        if dtype not in DTYPES:
            raise SpecError(f"ModelSpec dtype must be one of {DTYPES}, got {dtype}")
        self.dtype = dtype
        self.name = name
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.inputs = tuple(inputs)
        edges = {i.name: (i.shape, i.dtype) for i in inputs}
        edges.update({cname: (tuple(int(d) for d in arr.shape), "float") for cname, arr in self.constants.items()})
        order = _topological(nodes, edges)
        clocks = {i.name: Clock(1, 0, ()) for i in inputs}
        clocks.update({cname: None for cname in self.constants})   # the same frame at every tick: any rate
        self._clock_problems = []
        for i, node in enumerate(order):
            kind = kind_of(node.layer)
            if len(node.inputs) != kind.arity and not (kind.accepts_mask and len(node.inputs) == kind.arity + 1) \
                    and not (kind.variadic and len(node.inputs) > kind.arity):
                mask = " (and a mask)" if kind.accepts_mask else (" or more" if kind.variadic else "")
                raise SpecError(f"node {node.name!r} ({type(node.layer).__name__}) takes {kind.arity} input(s){mask}, "
                                f"got {len(node.inputs)}: {list(node.inputs)}")
            where = f"layer {i} ({type(node.layer).__name__})" if chain else \
                f"node {node.name!r} ({type(node.layer).__name__})"
            edges[node.name] = kind.infer(node.layer, [(e,) + edges[e] for e in node.inputs], where)
            clocks[node.name] = self._clock(node, kind, clocks, where)
        if not outputs or not all(isinstance(o, str) for o in outputs):
            raise SpecError(f"a graph needs one or more outputs (edge names), got {outputs!r}")
        for o in outputs:
            if o not in edges:
                raise SpecError(f"output {o!r} is not an edge of the graph (edges: {sorted(edges)})")
            if o not in {n.name for n in nodes}:
                raise SpecError(f"output {o!r} is a graph input or a constant; an output must be computed by a node")
        if len(set(outputs)) != len(outputs):
            raise SpecError(f"outputs must be distinct edges, got {outputs}")
        self.nodes = tuple(order)
        self.outputs = tuple(outputs)
        self.edges = edges   # edge name -> (frame shape, dtype "float" | "int64")
        self.clocks = clocks   # edge name -> Clock (None for a constant)
        self._chain = self._is_chain()

    def _clock(self, node, kind, clocks, where):
        """The Clock of a node's output edge, from its inputs' (which must share one rate; a node reading edges
        that are due at different ticks of the same rate runs in ``Model.run`` but cannot stream)."""
        given = [(e, clocks[e]) for e in node.inputs if clocks[e] is not None]
        if not given:
            return Clock(1, 0, ())
        e0, base = given[0]
        for e, c in given[1:]:
            if (c.stride, c.run) != (base.stride, base.run):
                raise SpecError(f"{where}: its inputs run at different rates along time: edge {e0!r} has "
                                f"{base.describe()} and edge {e!r} has {c.describe()}; a node's inputs must have "
                                f"one frame each at the same ticks")
            if c.delay != base.delay:
                self._clock_problems.append(
                    f"node {node.name!r} reads edge {e0!r} ({base.describe()}) with edge {e!r} ({c.describe()}), "
                    f"whose frames arrive at different ticks in a stream")
        timing = kind.timing(node.layer)
        if timing is None:
            return base
        run = base.run
        if (timing.stride, timing.tail - timing.warmup) != (1, 0):
            run = run + ((timing.stride, timing.tail - timing.warmup),)
        return Clock(base.stride * timing.stride, base.delay + timing.warmup * base.stride, run)

    def _is_chain(self):
        if self.constants or len(self.inputs) != 1 or len(self.outputs) != 1 or len(self.inputs[0].shape) != 1 \
                or self.inputs[0].dtype != "float":
            return False
        edge = self.inputs[0].name
        for node in self.nodes:
            if node.inputs != (edge,) or len(self.edges[node.name][0]) != 1:
                return False
            edge = node.name
        return self.outputs == (edge,)

    # ---- what chains had, and graphs' equivalents ----
    @property
    def is_chain(self):
        """True for one float input, one output and nodes that each read the one before (``spec.layers``)."""
        return self._chain

    @property
    def layers(self):
        """A chain's layers, in order. A graph has ``nodes`` (topological order) instead."""
        if not self._chain:
            raise SpecError("this model is a graph, not a chain of layers: read spec.nodes (each a Node with its "
                            "name, layer and input edges, in topological order), spec.inputs and spec.outputs")
        return tuple(node.layer for node in self.nodes)

    def _single(self, what, items, shape):
        if len(items) != 1 or len(shape) != 1:
            raise SpecError(f"{what}_size is for one {what} of 1-D frames; this model's {what}s are "
                            + ", ".join(f"{name!r} {self.edges[name][0]}" for name in items)
                            + f" (see spec.{what}s)")
        return shape[0]

    @property
    def input_size(self):
        """The width of the one input's frames (a model with several inputs or N-d frames: see ``inputs``)."""
        return self._single("input", [i.name for i in self.inputs], self.inputs[0].shape)

    @property
    def output_size(self):
        """The width of the one output's frames (several outputs: see ``outputs`` and ``edges``)."""
        return self._single("output", list(self.outputs), self.edges[self.outputs[0]][0])

    @property
    def streamable(self):
        """True when every node can be stepped one timestep at a time (none reads the whole future, as a reverse
        or bidirectional RNN does, and no node reads edges whose frames come at different ticks)."""
        return not self.streaming_problems()

    def streaming_problems(self):
        """Why the model cannot be stepped one timestep at a time, one line per node (empty when it can)."""
        from .layers import kind_of

        found = [f"node {node.name!r} ({type(node.layer).__name__}, {why})" for node in self.nodes
                 for why in [kind_of(node.layer).reads_future(node.layer)] if why]
        return found + list(self._clock_problems)

    def __repr__(self):
        if self._chain:
            body = "".join(f"\n  ({i}) {node.layer!r}" for i, node in enumerate(self.nodes))
            return (f"ModelSpec(input_size={self.input_size}, output_size={self.output_size}, "
                    f"dtype={self.dtype}){body}")
        ins = ", ".join(repr(i) for i in self.inputs)
        body = "".join(f"\n  {node.name} = {node.layer!r}({', '.join(node.inputs)}) -> {self.edges[node.name][0]}"
                       for node in self.nodes)
        return f"ModelSpec.graph(inputs=[{ins}], outputs={list(self.outputs)}, dtype={self.dtype}){body}"

    def with_dtype(self, dtype):
        """The same model running in ``dtype`` by default (a chain stays a chain)."""
        if self._chain:
            return ModelSpec(self.layers, input_size=self.input_size, dtype=dtype, name=self.name,
                             metadata=self.metadata)
        return ModelSpec.graph(self.inputs, self.nodes, self.outputs, dtype=dtype, name=self.name,
                               metadata=self.metadata, constants=self.constants)

    def save(self, path):
        """Write the native format (.npz with a JSON header; see engine.io); returns the path written."""
        from .io import save_spec
        return save_spec(self, path)
