"""Run one engine recurrent layer in onnxruntime, as a single ONNX LSTM/GRU/RNN node, for use as an oracle.

onnxruntime implements clip, input_forget, activation lists and sequence_lens (onnx.reference ignores
them), so it is the independent check for those. The layout translation below is the test's own, written
out here; the ONNX converter (converters/) will carry its own copy with its own round-trip tests.
"""

import numpy as np

# canonical (PyTorch) gate blocks -> ONNX gate blocks
LSTM_GATES = [0, 3, 1, 2]        # i,f,g,o -> ONNX i,o,f,c
LSTM_PEEPHOLES = [0, 2, 1]       # i,f,o   -> ONNX i,o,f
GRU_GATES = [1, 0, 2]            # r,z,n   -> ONNX z,r,h

ONNX_NAMES = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "affine": "Affine", "leaky_relu": "LeakyRelu",
              "thresholded_relu": "ThresholdedRelu", "scaled_tanh": "ScaledTanh", "hard_sigmoid": "HardSigmoid",
              "elu": "Elu", "softsign": "Softsign", "softplus": "Softplus"}
# which parameters each function consumes from activation_alpha / activation_beta (onnxruntime's reading)
USES_ALPHA = {"affine", "leaky_relu", "thresholded_relu", "scaled_tanh", "hard_sigmoid", "elu"}
USES_BETA = {"affine", "scaled_tanh", "hard_sigmoid"}


def _blocks(a, order, H):
    return np.concatenate([a[k * H:(k + 1) * H] for k in order], axis=0)


def layer_to_onnx(layer, T, B, *, lengths=None, h0=None, c0=None, opset=14, layout=0, runtime=()):
    """A single-node ONNX model (bytes) computing ``layer`` on X; outputs Y, Y_h (and Y_c).

    layout 0: X (T, B, I), Y (T, D, B, H), states (D, B, H); layout 1: X (B, T, I), Y (B, T, D, H), states
    (B, D, H) (give h0/c0 in that layout too). ``runtime`` names the optional inputs (sequence_lens,
    initial_h, initial_c) to make graph inputs fed at run time instead of initializers.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    H, I, D = layer.hidden_size, layer.input_size, layer.num_directions
    order = {"lstm": LSTM_GATES, "gru": GRU_GATES, "rnn": [0]}[layer.cell]
    Ws, Rs, Bs, Ps = [], [], [], []
    for w in layer.weights:
        G = layer.gates
        Ws.append(_blocks(w["weight_ih"], order, H))
        Rs.append(_blocks(w["weight_hh"], order, H))
        b_ih = w.get("bias_ih", np.zeros(G * H))
        b_hh = w.get("bias_hh", np.zeros(G * H))
        Bs.append(np.concatenate([_blocks(b_ih, order, H), _blocks(b_hh, order, H)]))
        if layer.cell == "lstm":
            Ps.append(_blocks(w.get("peephole", np.zeros((3, H))).ravel(), LSTM_PEEPHOLES, H))
    inits = [numpy_helper.from_array(np.stack(Ws).astype(np.float32), "W"),
             numpy_helper.from_array(np.stack(Rs).astype(np.float32), "R"),
             numpy_helper.from_array(np.stack(Bs).astype(np.float32), "B")]
    inputs = ["X", "W", "R", "B"]
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, I] if layout == 0 else [B, T, I])]

    def optional(name, value, dtype=np.float32):
        if value is None:
            inputs.append("")
            return
        if name in runtime:
            elem = TensorProto.INT32 if dtype == np.int32 else TensorProto.FLOAT
            graph_inputs.append(helper.make_tensor_value_info(name, elem, list(np.shape(value))))
        else:
            inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        inputs.append(name)

    optional("sequence_lens", lengths, np.int32)
    optional("initial_h", h0)
    if layer.cell == "lstm":
        optional("initial_c", c0)
        optional("P", np.stack(Ps) if layer.has_peepholes else None)
    while inputs and inputs[-1] == "":
        inputs.pop()

    acts, alphas, betas = [], [], []
    for d in range(D):
        for a in layer.activations[d]:
            acts.append(ONNX_NAMES[a.name])
            if a.name in USES_ALPHA:
                alphas.append(a.alpha)
            if a.name in USES_BETA:
                betas.append(a.beta)
    attrs = dict(hidden_size=H, direction=layer.direction, activations=acts)
    if alphas:
        attrs["activation_alpha"] = alphas
    if betas:
        attrs["activation_beta"] = betas
    if layer.clip is not None:
        attrs["clip"] = layer.clip
    if layer.cell == "lstm" and layer.input_forget:
        attrs["input_forget"] = 1
    if layer.cell == "gru":
        attrs["linear_before_reset"] = int(layer.linear_before_reset)
    if layout:
        attrs["layout"] = layout
    outputs = ["Y", "Y_h"] + (["Y_c"] if layer.cell == "lstm" else [])
    node = helper.make_node(layer.cell.upper(), inputs, outputs, **attrs)
    Ho = layer.output_hidden
    shapes = {"Y": [T, D, B, Ho], "Y_h": [D, B, Ho], "Y_c": [D, B, H]} if layout == 0 else \
        {"Y": [B, T, D, Ho], "Y_h": [B, D, Ho], "Y_c": [B, D, H]}
    graph_outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shapes[n]) for n in outputs]
    graph = helper.make_graph([node], "oracle", graph_inputs, graph_outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def run_in_onnxruntime(layer, X, *, lengths=None, h0=None, c0=None):
    """(Y (T, B, D*H), Y_h (D, B, H), Y_c or None) from onnxruntime for X (T, B, I)."""
    import onnxruntime as ort

    T, B, _ = X.shape
    blob = layer_to_onnx(layer, T, B, lengths=lengths, h0=h0, c0=c0)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"X": X.astype(np.float32)})
    Y = outs[0]                                   # (T, D, B, H) -> (T, B, D*H): directions side by side
    Y = Y.transpose(0, 2, 1, 3).reshape(T, B, -1)
    return Y, outs[1], outs[2] if len(outs) > 2 else None
