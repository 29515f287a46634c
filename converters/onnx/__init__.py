"""ONNX -> ModelSpec (``from_onnx``), and a ``Program`` that runs an ONNX graph's inputs and outputs on it.

The support matrix, op by op, is docs/ops.md. Anything the engine cannot express is refused with
``UnsupportedOperatorError`` naming every such node, its op type and the reason: never a partial model.
"""

import os

import numpy as np
import onnx

import engine

from ..dtypes import file_dtype
from . import registry
from .graph import FRAME_ROLES, Converter, Dual, Dyn, State, UnsupportedOperatorError, make_spec, state_from_input

_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)

MAX_NODES = 100_000

__all__ = ["Program", "UnsupportedOperatorError", "convert", "from_onnx"]


def _load(model):
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model, "<ModelProto>"
    if isinstance(model, (bytes, bytearray)):
        source = "<bytes>"
        data = bytes(model)
    else:
        source = os.fspath(model)
        with open(source, "rb") as fh:
            data = fh.read()
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # noqa: BLE001 - protobuf's decode errors
        raise engine.FormatError(f"{source}: not an ONNX model ({type(exc).__name__}: {exc})") from None
    if not proto.graph.node:
        raise engine.FormatError(f"{source}: the ONNX graph has no nodes")
    if len(proto.graph.node) > MAX_NODES:
        raise engine.FormatError(f"{source}: the ONNX graph has {len(proto.graph.node)} nodes; rnnjit reads graphs of "
                                 f"up to {MAX_NODES} (a recurrent model needs a handful)")
    return proto, source


class Program:
    """A converted graph: the ModelSpec, and how the graph's inputs and outputs map onto ``Model.run``."""

    def __init__(self, conv, spec):
        self.spec = spec
        self.source = conv.source
        self.data_input = conv.data_input
        self.unbatched = conv.unbatched   # the data input is (time, features)
        # axes no recurrent node read as time or batch: time-major, as the graph's first axis usually is
        role = lambda r: {"x0": "T", "x1": "B"}.get(conv.resolve(r), conv.resolve(r))  # noqa: E731
        self.input_roles = tuple(role(r) for r in conv.input_roles)
        self.lengths_input = conv.lengths_input
        self.state_inputs = dict(conv.state_inputs)
        self.state_loops = list(conv.state_loops)
        self.outputs = {}
        self._model = None
        loop_outputs = {loop.output: loop for loop in conv.state_loops if loop.output and loop.from_state}
        for out in conv.model.graph.output:
            v = conv.values.get(out.name)
            if isinstance(v, Dual):       # a final h that is also the step's output: output as the state it is
                v = v.state
            if out.name in loop_outputs:
                self.outputs[out.name] = ("loop", loop_outputs[out.name])
            elif isinstance(v, Dyn):
                if v.reversed_time:
                    conv.failures.append((out.name, "graph output", "the output is in reversed time order"))
                roles = tuple(role(r) for r in v.roles)
                frame = tuple(r for r in roles if r in FRAME_ROLES)
                self.outputs[out.name] = ("data", v.edge, frame, roles, v.sizes.get("D", 1))
            elif isinstance(v, State):
                self.outputs[out.name] = ("state", v)
            else:
                conv.failures.append((out.name, "graph output", f"the output is a {type(v).__name__}, not data or "
                                      f"a recurrent state"))

    def model(self, dtype=None):
        dtype = dtype or self.spec.dtype
        if self._model is None or self._model.dtype != np.dtype(dtype):
            self._model = engine.Model(self.spec, dtype=dtype)
        return self._model

    def run(self, feeds, dtype=None):
        """Outputs (a dict by output name) of the graph for ``feeds`` (a dict by input name): every output as the
        graph defines it, the next states of its state loops included."""
        X = np.asarray(feeds[self.data_input])
        if self.unbatched:
            Xt = X[:, None]
        elif "T" not in self.input_roles:           # (batch, frame): the graph takes one frame per call
            roles = self.input_roles
            Xt = X.transpose([roles.index("B")] + [i for i, r in enumerate(roles) if r in FRAME_ROLES])[None]
        else:
            roles = self.input_roles
            Xt = X.transpose([roles.index("T"), roles.index("B")] + [i for i, r in enumerate(roles)
                                                                      if r in FRAME_ROLES])
        lengths = None
        if self.lengths_input and feeds.get(self.lengths_input) is not None:
            lengths = np.asarray(feeds[self.lengths_input]).astype(np.int64)
        initial = {}
        for name, uses in self.state_inputs.items():
            if feeds.get(name) is not None:
                for key, roles, view in uses:
                    initial[key] = state_from_input(np.asarray(feeds[name]), view, roles)
        for loop in self.state_loops:
            if loop.to_state is not None and feeds.get(loop.input) is not None:
                initial[loop.key] = loop.to_state(np.asarray(feeds[loop.input]))
        Y, states = self.model(dtype).run(Xt, lengths, batch_first=False, initial_state=initial or None,
                                          return_state=True)
        by_edge = dict(zip(self.spec.outputs, Y if isinstance(Y, tuple) else (Y,)))
        out = {}
        for name, plan in self.outputs.items():
            if plan[0] == "data":
                _, edge, frame, roles, D = plan
                y = by_edge[edge]
                if frame:
                    y = y.reshape(y.shape[:2] + tuple(self.spec.edges[edge][0])) if len(frame) > 1 else \
                        y.reshape(y.shape[:2] + (-1,))
                else:
                    y = y.reshape(y.shape[:2])
                out[name] = _arrange(y, ("T", "B") + frame, roles, D)
            elif plan[0] == "loop":
                out[name] = plan[1].from_state(states[plan[1].key])
            else:
                out[name] = plan[1].fn(states)
        return out


def _arrange(arr, have, want, D):
    """Reorder ``arr`` from roles ``have`` to ``want`` (splitting F into (D, F) when D appears, adding units)."""
    have = list(have)
    if "D" in want and "D" not in have:            # features of both directions side by side -> (D, H)
        i = have.index("F")
        arr = arr.reshape(arr.shape[:i] + (D, arr.shape[i] // D) + arr.shape[i + 1:])
        have[i:i + 1] = ["D", "F"]
    if "D" not in want and "D" in have:            # a squeezed single direction
        i = have.index("D")
        arr = arr.reshape(arr.shape[:i] + arr.shape[i + 1:]) if arr.shape[i] == 1 else \
            np.moveaxis(arr, i, -2).reshape(arr.shape[:i] + arr.shape[i + 1:-1] + (-1,))
        have.pop(i)
    if "B" in have and "B" not in want and arr.shape[have.index("B")] == 1:   # an unbatched model's unit batch
        arr = arr.squeeze(have.index("B"))
        have.remove("B")
    core = [r for r in want if r != "1"]
    arr = arr.transpose([have.index(r) for r in core])
    for i, r in enumerate(want):
        if r == "1":
            arr = np.expand_dims(arr, i)
    return arr


def convert(model, dtype=None, *, time_axis=None, batch_axis=None, fixed_inputs=None, frame_shape=None,
            frame_context=None, state_pairs=None):
    """A ``Program`` for an ONNX model (path, bytes or ModelProto); ``dtype`` defaults to the file's own (float64
    when every floating-point initializer is double, converters/dtypes.py). ``time_axis`` / ``batch_axis``: which
    axes of the data input are time and batch, where the graph cannot say (see Converter._bind_inputs);
    ``fixed_inputs``: values for graph inputs that are settings, not data (silero's ``sr``), taken as constants;
    ``frame_shape``: the data's frame where the graph leaves it open; ``frame_context``: the model reads each frame
    after the last that many values of the frame before (a chunk model whose caller keeps that context), which the
    stream keeps; ``state_pairs``: {state input: graph output} where more than one output gives a state input's
    value back (each pair is checked like the ones found)."""
    proto, source = _load(model)
    if dtype is None:
        dtype = file_dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type) for t in proto.graph.initializer
                           if t.data_type in _FLOAT_TYPES)
    conv = Converter(proto, source, registry, time_axis, batch_axis, fixed_inputs, frame_shape, frame_context)
    conv.run()
    conv.pair_state_loops(state_pairs)
    spec = make_spec(conv, dtype) if not conv.failures else None
    program = Program(conv, spec) if spec is not None else None
    if conv.failures:
        raise UnsupportedOperatorError(source, conv.failures)
    return program


def from_onnx(model, *, dtype=None, **options):
    """A ModelSpec from an ONNX model: a path, bytes or an ``onnx.ModelProto`` (``options``: see ``convert``)."""
    return convert(model, dtype, **options).spec

