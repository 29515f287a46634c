"""The plan: a ModelSpec's graph turned once into what the call layer walks.

``Plan(spec, dtype)`` packs every node (its kind's ``pack_node``) in topological order and numbers the edges:
graph inputs first, then node outputs in order. Each edge carries one frame per timestep; a stream group of n
rows keeps every edge that is neither a graph input nor a graph output in one arena, at a static offset, as an
(n, frame size) block:

    arena (per group of n streams):  [ edge a: n x size_a | edge b: n x size_b | ... ]

Graph inputs are read where the caller's arrays are and graph outputs are written straight into the caller's
``out`` arrays (no copies), so a chain LSTM -> Dense walks exactly what it did before graphs: the LSTM writes
its block of the arena, the Dense reads it and writes the caller's output. Nothing is allocated per step.

Both call layers (the compiled StepCore and its twin, engine/_ext) take the same tables: per node its kernel,
arity, input edges and output edge; per edge its arena offset (-1 for a graph input or output); the inputs'
and outputs' edges and frame shapes.
"""

from collections import namedtuple

import numpy as np

from .errors import ShapeError
from .layers import kind_of
from .layers.base import timed_count

# Plans fuse activations into the node before them (Plan._fuse); the layers benchmark turns it off to show what
# that buys.
FUSE = True

# one node of the plan: its name, packed form, the edge indices it reads and the one it writes
Step = namedtuple("Step", "name packed inputs output")
# one edge: its name, frame shape, element count, dtype ("float" | "int64"), arena offset per row or -1
Edge = namedtuple("Edge", "name shape size dtype offset")


class Plan:
    """What a Model runs: ``steps`` in topological order, ``edges`` and the arena's size per row."""

    def __init__(self, spec, dtype):
        nodes, shapes = self._lowered(spec)
        names = [i.name for i in spec.inputs] + list(spec.constants) + [name for name, _, _ in nodes]
        index = {name: k for k, name in enumerate(names)}
        outside = {i.name for i in spec.inputs} | set(spec.outputs)
        edges, offset = [], 0
        for name in names:
            shape, kind = shapes[name]
            size = int(np.prod(shape))
            if name in outside:
                edges.append(Edge(name, shape, size, kind, -1))
            else:
                edges.append(Edge(name, shape, size, kind, offset))
                offset += size
        self.edges = tuple(edges)
        self.arena_size = offset
        # constant edges: (edge index, value in the model's dtype, flat); each stream group writes them into its
        # arena once, and no node writes them
        self.constants = tuple((index[c], np.asarray(v, dtype).ravel()) for c, v in spec.constants.items())
        folded = self._folds(spec)   # producer -> (the affine node after it, the producer's layer with it folded in)
        self.folded = {into: affine.name for into, (affine, _) in folded.items()}
        skipped = set(self.folded.values())   # affine nodes whose scale and shift are in the node before them
        steps = []
        for name, layer, inputs in nodes:
            if name in skipped:
                continue
            out = name
            if name in folded:
                affine, layer = folded[name]
                out = affine.name
            ins = [shapes[e][0] for e in inputs]
            p = kind_of(layer).pack_node(layer, ins, dtype)
            p.shapes = (tuple(ins), shapes[out][0])
            steps.append(Step(name, p, tuple(index[e] for e in inputs), index[out]))
        self.inputs = tuple(index[i.name] for i in spec.inputs)
        self.outputs = tuple(index[o] for o in spec.outputs)
        self.steps = self._fuse(steps, names)
        # per integer graph input (edge index): the smallest table that reads it, (id bound, node name)
        self.id_bounds = {}
        for step in steps:
            kind, layer = step.packed.kind, step.packed.layer
            if kind.reads_ids:
                for e in step.inputs:
                    bound = kind.id_bound(layer)
                    if e not in self.id_bounds or bound < self.id_bounds[e][0]:
                        self.id_bounds[e] = (bound, step.name)
        self._clocks(spec, index)
        self.state_sizes = tuple(s.packed.state_size for s in steps)
        self.scratch_size = max(s.packed.scratch_size + s.packed.extra_scratch for s in steps)

    def _fuse(self, steps, names):
        """Fuse an activation its producer's kernel can apply (Kind.takes_epilogue, Kind.epilogue_code: relu,
        leaky_relu, clip) into that producer when nothing else reads the producer's output: one node call and one
        pass over the frame fewer. ``fused``: producer name -> the activation's."""
        self.fused = {}
        if not FUSE:
            return tuple(steps)
        readers = {}
        for step in steps:
            for e in step.inputs:
                readers[e] = readers.get(e, 0) + 1
        writer = {step.output: k for k, step in enumerate(steps)}
        steps, gone = list(steps), set()
        for a, step in enumerate(steps):
            act = step.packed
            if act.kind.epilogue_code(act.layer) is None:
                continue
            k = writer.get(step.inputs[0])
            if k is None or k in gone or readers[step.inputs[0]] != 1 or step.inputs[0] in self.outputs:
                continue
            producer = steps[k].packed
            if not producer.kind.takes_epilogue or producer.epilogue is not None:
                continue
            steps[k] = Step(steps[k].name, producer.with_epilogue(act), steps[k].inputs, step.output)
            writer[step.output] = k
            gone.add(a)
            self.fused[steps[k].name] = step.name
        return tuple(s for a, s in enumerate(steps) if a not in gone)

    @staticmethod
    def _lowered(spec):
        """The nodes the plan runs, as (name, layer, inputs): the spec's, with a variadic node of more inputs than
        its kind's arity lowered into nodes of that arity (Kind.lower), and every edge's (shape, dtype), the new
        ones between them included."""
        shapes = dict(spec.edges)
        nodes = []
        for node in spec.nodes:
            kind = kind_of(node.layer)
            if not (kind.variadic and len(node.inputs) > kind.arity):
                nodes.append((node.name, node.layer, tuple(node.inputs)))
                continue
            for name, layer, inputs in kind.lower(node.layer, node.name, node.inputs):
                if name != node.name:
                    shapes[name] = kind.infer(layer, [(e,) + shapes[e] for e in inputs], f"node {node.name!r}")
                nodes.append((name, layer, tuple(inputs)))
        return nodes, shapes

    def _clocks(self, spec, index):
        """Which nodes run on which ticks. A node with a Timing (a stride along time, a delay) computes an output
        only on some ticks: its phase (the last float of its state row) says when. ``gates``: per step, the step
        whose output tick it waits for (-1: every tick); ``phases``: per step, its phase's offset in its state
        row (-1: none); ``out_gates``: per graph output, the step whose tick it is written on (-1: every tick).
        Streams of one group step in lock-step, so row 0's phase speaks for every row."""
        gate = {e: -1 for e in self.inputs}
        gate.update({e: None for e, _ in self.constants})   # constants: any tick
        gates, phases, self.timings = [], [], []
        for k, step in enumerate(self.steps):
            g = next((gate[e] for e in step.inputs if gate[e] is not None), -1)
            timing = step.packed.kind.timing(step.packed.layer)
            gates.append(g)
            phases.append(-1 if timing is None else step.packed.state_size - 1)
            self.timings.append(timing)
            gate[step.output] = g if timing is None else k
        self.gates, self.phases = tuple(gates), tuple(phases)
        self.out_gates = tuple(gate[e] for e in self.outputs)
        self.clocked = any(p >= 0 for p in phases)

    def due_counts(self, phases, T):
        """Per graph output, how many frames a stream writes in its next T ticks, its timed nodes at ``phases``
        (per step, the phase, or None for a node without one)."""
        counts = []
        for k, step in enumerate(self.steps):
            m = T if self.gates[k] < 0 else counts[self.gates[k]]
            timing = self.timings[k]
            if timing is not None:
                m = timed_count(timing._replace(tail=0), m, int(phases[k]))
            counts.append(m)
        return [T if g < 0 else counts[g] for g in self.out_gates]

    @staticmethod
    def _folds(spec):
        """{producer node name: (the per-channel affine node folded into it, the producer's layer with the affine
        folded in)}: where an affine node (BatchNorm)
        reads a node whose kind can take it into its weights and bias (dense on 1-D frames, convolutions), and
        nothing else reads that node's output. The folded weights are the same function, rounded once instead of
        twice."""
        readers = {}
        for node in spec.nodes:
            for e in node.inputs:
                readers[e] = readers.get(e, 0) + 1
        for o in spec.outputs:
            readers[o] = readers.get(o, 0) + 1
        nodes = {node.name: node for node in spec.nodes}
        folds = {}
        for node in spec.nodes:
            affine = kind_of(node.layer).channel_affine(node.layer)
            src = nodes.get(node.inputs[0])
            if affine is None or src is None or readers[src.name] != 1 or src.name in folds:
                continue
            layer = kind_of(src.layer).fold_affine(src.layer, *affine, spec.edges[src.name][0])
            if layer is not None:
                folds[src.name] = (node, layer)
        return folds

    @property
    def packed(self):
        return tuple(s.packed for s in self.steps)

    def check_ids(self, edge, ids, what):
        """Raise ShapeError when an integer input ``ids`` (for graph input ``edge``) holds an id out of its table's
        range; ``what`` names the input in the message."""
        if edge not in self.id_bounds or ids.size == 0:
            return
        bound, node = self.id_bounds[edge]
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= bound:
            bad = lo if lo < 0 else hi
            raise ShapeError(f"{what}: id {bad} is out of range for node {node!r}, a table of {bound} rows "
                             f"(ids must lie in [0, {bound}))")

    def wiring(self):
        """Per step: (arity, input edge indices, output edge index), for the call layer."""
        return [(len(s.inputs), s.inputs, s.output) for s in self.steps]

    def clocking(self):
        """For the call layer: (per step its gate and its phase's offset in its state row, per output its gate),
        or None when every node runs on every tick."""
        return (self.gates, self.phases, self.out_gates) if self.clocked else None
