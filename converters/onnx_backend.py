"""An ``onnx.backend.base.Backend`` running ONNX models on rnnjit, so ``onnx.backend.test.BackendTest`` can
drive the official node tests against it:

    import onnx.backend.test
    import converters.onnx_backend as backend
    tests = onnx.backend.test.BackendTest(backend, __name__)
    tests.include(r"test_lstm_.*")
    globals().update(tests.test_cases)

Graph inputs fed at run time that the converter needs as constants (weights: W, R, B, P of a recurrent
node, MatMul/Gemm weights) are bound as initializers for that run; the data, sequence_lens and initial
states stay run-time inputs of the converted Program.
"""

import numpy as np
import onnx
import onnx.backend.base as base
from onnx import numpy_helper

from .onnx import convert

# The official node tests compare against float32 reference outputs with atol=1e-7, which two GRU cases
# meet only to within 1-2 float32 ulps where the output cancels to ~1e-7 (the engine's float32 kernels round
# differently from NumPy's). The backend therefore computes in float64, the engine's exact path, and returns
# float32; set DTYPE = "float32" to run the float32 kernels instead (tests/test_onnx.py checks both).
DTYPE = "float64"
RUNTIME_SLOTS = {"LSTM": {0, 4, 5, 6}, "GRU": {0, 4, 5}, "RNN": {0, 4, 5}}


class BackendRep(base.BackendRep):
    def __init__(self, model):
        self.model = model

    def _runtime_inputs(self):
        """Graph inputs that may stay run-time: the data and the recurrent nodes' lengths and states."""
        graph = self.model.graph
        uses = {}
        for node in graph.node:
            for slot, name in enumerate(node.input):
                uses.setdefault(name, []).append((node.op_type, slot))
        keep = set()
        for inp in graph.input:
            slots = uses.get(inp.name, [])
            if slots and all(op in RUNTIME_SLOTS and slot in RUNTIME_SLOTS[op] for op, slot in slots):
                keep.add(inp.name)
        return keep

    def run(self, inputs, **kwargs):
        graph = self.model.graph
        initialized = {i.name for i in graph.initializer}
        names = [i.name for i in graph.input if i.name not in initialized]
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            feeds = dict(zip(names, inputs))
        runtime = self._runtime_inputs()
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        for name, value in feeds.items():
            if name not in runtime and value is not None:
                model.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        keep = [i for i in model.graph.input if i.name in runtime or i.name in initialized]
        del model.graph.input[:]
        model.graph.input.extend(keep)
        program = convert(model)
        out = program.run({k: v for k, v in feeds.items() if k in runtime}, dtype=DTYPE)
        return [out[o.name].astype(np.float32) for o in self.model.graph.output]


class Backend(base.Backend):
    @classmethod
    def prepare(cls, model, device="CPU", **kwargs):
        super().prepare(model, device, **kwargs)
        return BackendRep(model)

    @classmethod
    def run_node(cls, node, inputs, device="CPU", outputs_info=None, **kwargs):
        graph_inputs = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, np.shape(v))
                        for n, v in zip(node.input, inputs) if n]
        graph = onnx.helper.make_graph([node], "node", graph_inputs,
                                       [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None)
                                        for o in node.output if o])
        model = onnx.helper.make_model(graph)
        return cls.prepare(model, device).run([v for n, v in zip(node.input, inputs) if n])

    @classmethod
    def supports_device(cls, device):
        return device in ("CPU", "cpu")


prepare = Backend.prepare
run_node = Backend.run_node
run_model = Backend.run_model
supports_device = Backend.supports_device
