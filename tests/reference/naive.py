"""A naive NumPy reference for every ModelSpec layer, written to be read, not to be fast.

It follows the ONNX operator definitions (LSTM, GRU, RNN) literally, in float64, one timestep and one
sequence at a time, on the spec's canonical layout (gates i,f,g,o / r,z,n / one; PyTorch's). It shares
no code with the engine: it is the oracle for features PyTorch does not have (peepholes, clip,
input_forget, activation lists, GRU linear_before_reset=0).
"""

import numpy as np


def act(name, alpha, beta, x):
    """The activation ``name`` (engine.spec names) applied elementwise, or over the last axis for softmax."""
    x = np.asarray(x, dtype=np.float64)
    if name == "identity":
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "affine":
        return alpha * x + beta
    if name == "leaky_relu":
        return np.where(x >= 0, x, alpha * x)
    if name == "thresholded_relu":
        return np.where(x > alpha, x, 0.0)
    if name == "scaled_tanh":
        return alpha * np.tanh(beta * x)
    if name == "hard_sigmoid":
        return np.clip(alpha * x + beta, 0.0, 1.0)
    if name == "elu":
        return np.where(x >= 0, x, alpha * (np.exp(x) - 1.0))
    if name == "softsign":
        return x / (1.0 + np.abs(x))
    if name == "softplus":
        return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)
    if name == "selu":
        return beta * np.where(x > 0, x, alpha * (np.exp(x) - 1.0))
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name == "log_softmax":
        z = x - x.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    if name in ("clip", "relu6"):
        return np.minimum(np.maximum(x, alpha), beta)
    if name == "gelu":
        from math import erf
        return 0.5 * x * (1.0 + np.vectorize(erf)(x / np.sqrt(2.0)))
    if name == "gelu_tanh":
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))
    if name == "silu":
        return x / (1.0 + np.exp(-x))
    if name == "mish":
        return x * np.tanh(np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0))
    if name == "hard_swish":
        return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0
    math = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "abs": np.abs, "neg": np.negative,
            "reciprocal": np.reciprocal}
    if name in math:
        return math[name](x)
    if name == "pow":
        return x ** alpha
    raise ValueError(f"unknown activation {name}")


def _f(a, x):
    return act(a.name, a.alpha, a.beta, x)


def _clip(layer, v):
    return v if layer.clip is None else np.clip(v, -layer.clip, layer.clip)


def lstm_cell(layer, w, acts, x, h, c):
    """One LSTM step (ONNX LSTM equations, gate order i, f, g(c), o; PyTorch proj_size)."""
    H = layer.hidden_size
    f_act, g_act, h_act = acts
    W, R = w["weight_ih"].astype(np.float64), w["weight_hh"].astype(np.float64)
    b = w.get("bias_ih", np.zeros(4 * H)) + w.get("bias_hh", np.zeros(4 * H))
    P = w.get("peephole", np.zeros((3, H)))
    pre = W @ x + R @ h + b
    pre_i, pre_f, pre_g, pre_o = pre[:H], pre[H:2 * H], pre[2 * H:3 * H], pre[3 * H:]
    i = _f(f_act, _clip(layer, pre_i + P[0] * c))
    f = 1.0 - i if layer.input_forget else _f(f_act, _clip(layer, pre_f + P[1] * c))
    g = _f(g_act, _clip(layer, pre_g))
    c_new = f * c + i * g
    o = _f(f_act, _clip(layer, pre_o + P[2] * c_new))
    h_new = o * _f(h_act, c_new)
    if layer.proj_size:
        h_new = w["weight_hr"].astype(np.float64) @ h_new
    return h_new, c_new


def gru_cell(layer, w, acts, x, h):
    """One GRU step (ONNX GRU equations with gates in PyTorch order r, z, n)."""
    H = layer.hidden_size
    f_act, g_act = acts
    W, R = w["weight_ih"].astype(np.float64), w["weight_hh"].astype(np.float64)
    bw = w.get("bias_ih", np.zeros(3 * H))
    br = w.get("bias_hh", np.zeros(3 * H))
    r = _f(f_act, _clip(layer, W[:H] @ x + R[:H] @ h + bw[:H] + br[:H]))
    z = _f(f_act, _clip(layer, W[H:2 * H] @ x + R[H:2 * H] @ h + bw[H:2 * H] + br[H:2 * H]))
    if layer.linear_before_reset:
        n = _f(g_act, _clip(layer, W[2 * H:] @ x + bw[2 * H:] + r * (R[2 * H:] @ h + br[2 * H:])))
    else:
        n = _f(g_act, _clip(layer, W[2 * H:] @ x + bw[2 * H:] + R[2 * H:] @ (r * h) + br[2 * H:]))
    return (1.0 - z) * n + z * h


def rnn_cell(layer, w, acts, x, h):
    """One RNN step: h = f(W x + R h + b)."""
    H = layer.hidden_size
    b = w.get("bias_ih", np.zeros(H)) + w.get("bias_hh", np.zeros(H))
    return _f(acts[0], _clip(layer, w["weight_ih"] @ x + w["weight_hh"] @ h + b))


def recurrent(layer, X, lengths=None, h0=None, c0=None):
    """A recurrent layer over X (T, B, I) -> Y (T, B, D*H_out), final h (D, B, H_out), final c (D, B, H).

    h0/c0: (D, B, ..) initial states (default: the layer's initial_h/initial_c, else zeros).
    """
    T, B, _ = X.shape
    H, Ho, D = layer.hidden_size, layer.output_hidden, layer.num_directions
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    if h0 is None:
        init = layer.initial_h if layer.initial_h is not None else np.zeros((D, Ho))
        h0 = np.repeat(np.asarray(init, np.float64)[:, None, :], B, axis=1)
    if c0 is None and layer.cell == "lstm":
        init = layer.initial_c if layer.initial_c is not None else np.zeros((D, H))
        c0 = np.repeat(np.asarray(init, np.float64)[:, None, :], B, axis=1)
    Y = np.zeros((T, B, D * Ho))
    hT = np.zeros((D, B, Ho))
    cT = np.zeros((D, B, H))
    for d in range(D):
        w, acts = layer.weights[d], layer.activations[d]
        reverse = layer.direction == "reverse" or d == 1
        for b in range(B):
            h = np.array(h0[d, b], np.float64)
            c = np.array(c0[d, b], np.float64) if layer.cell == "lstm" else None
            steps = range(lengths[b] - 1, -1, -1) if reverse else range(lengths[b])
            for t in steps:
                x = X[t, b].astype(np.float64)
                if layer.cell == "lstm":
                    h, c = lstm_cell(layer, w, acts, x, h, c)
                elif layer.cell == "gru":
                    h = gru_cell(layer, w, acts, x, h)
                else:
                    h = rnn_cell(layer, w, acts, x, h)
                Y[t, b, d * Ho:(d + 1) * Ho] = h
            hT[d, b] = h
            if c is not None:
                cT[d, b] = c
    return Y, hT, cT


def run(spec, X, lengths=None):
    """The whole model on X (T, B, I) -> (T, B, output_size), float64."""
    Y = np.asarray(X, np.float64)
    for layer in spec.layers:
        kind = layer.kind
        if kind == "recurrent":
            Y, _, _ = recurrent(layer, Y, lengths)
        elif kind == "dense":
            Y = Y @ layer.weight.T.astype(np.float64) + (0.0 if layer.bias is None else layer.bias)
        elif kind == "normalize":
            Y = (Y - layer.mean) * layer.scale
        else:
            Y = act(layer.name, layer.alpha, layer.beta, Y)
    return Y


# ---- graph models: each node kind over whole sequences, frames (T, B, *frame), float64 -------------------------

def temporal_conv(layer, X):
    """y_j = bias + sum_k W[:, :, k] x_{j s + k d - left} (grouped), zeros outside the sequence: X (T, B, C_in); the
    sequence padded by (left, right) gives floor((T + left + right - (K - 1) d - 1) / s) + 1 outputs."""
    T, B, _ = X.shape
    W = np.asarray(layer.weight, np.float64)
    cout, cin_g, K = W.shape
    G, d, s, (left, right) = layer.groups, layer.dilation, layer.stride, layer.padding
    cout_g = cout // G
    n = max(0, (T + left + right - (K - 1) * d - 1) // s + 1)
    Y = np.zeros((n, B, cout))
    for j in range(n):
        for o in range(cout):
            g = o // cout_g
            acc = np.full(B, 0.0 if layer.bias is None else float(layer.bias[o]))
            for k in range(K):
                t = j * s + k * d - left
                if 0 <= t < T:
                    acc += X[t, :, g * cin_g:(g + 1) * cin_g] @ W[o, :, k]
            Y[j, :, o] = acc
    return Y


def temporal_pool(layer, X):
    """Max or average over input frames j s + k d - left, k < kernel, of X (T, B, *frame); padding is not a value
    (max skips it; average counts it as zero in a divisor of `kernel`, or leaves it out)."""
    T = X.shape[0]
    K, d, s, (left, right) = layer.kernel, layer.dilation, layer.stride, layer.padding
    n = max(0, (T + left + right - (K - 1) * d - 1) // s + 1)
    out = []
    for j in range(n):
        frames = [X[t] for t in (j * s + k * d - left for k in range(K)) if 0 <= t < T]
        if layer.mode == "max":
            out.append(np.max(frames, axis=0))
        else:
            out.append(np.sum(frames, axis=0) / (K if layer.count_include_pad else len(frames)))
    return np.array(out).reshape((n,) + X.shape[1:])


def frame_conv(layer, x):
    """One frame (C_in, *spatial) through a convolution over its own axes, by the definition."""
    W = np.asarray(layer.weight, np.float64)
    cout, cin_g = W.shape[:2]
    kernel = W.shape[2:]
    G = layer.groups
    spatial = x.shape[1:]
    outs = [(spatial[i] + sum(layer.padding[i]) - layer.dilation[i] * (kernel[i] - 1) - 1) // layer.stride[i] + 1
            for i in range(len(spatial))]
    y = np.zeros([cout] + outs)
    for o in range(cout):
        g = o // (cout // G)
        for pos in np.ndindex(*outs):
            acc = 0.0 if layer.bias is None else float(layer.bias[o])
            for i in range(cin_g):
                for tap in np.ndindex(*kernel):
                    src = [pos[a] * layer.stride[a] - layer.padding[a][0] + tap[a] * layer.dilation[a]
                           for a in range(len(spatial))]
                    if all(0 <= src[a] < spatial[a] for a in range(len(spatial))):
                        acc += W[(o, i) + tap] * x[(g * cin_g + i,) + tuple(src)]
            y[(o,) + pos] = acc
    return y


def pool(layer, x):
    """One frame (C, *spatial) pooled, by the definition (torch's padding rules)."""
    spatial = x.shape[1:]
    n = len(spatial)
    if layer.global_pool:
        red = np.max if layer.mode == "max" else np.mean
        return red(x.reshape(x.shape[0], -1), axis=1).reshape((x.shape[0],) + (1,) * n)
    kernel = layer.kernel * n if len(layer.kernel) == 1 else layer.kernel
    stride = kernel if layer.stride is None else (layer.stride * n if len(layer.stride) == 1 else layer.stride)
    pads = [[layer.padding] * 2] * n if isinstance(layer.padding, int) else \
        [[p, p] if isinstance(p, int) else list(p) for p in layer.padding]
    outs = [(spatial[a] + sum(pads[a]) - kernel[a]) // stride[a] + 1 for a in range(n)]
    y = np.zeros((x.shape[0],) + tuple(outs))
    for c in range(x.shape[0]):
        for pos in np.ndindex(*outs):
            vals = []
            for tap in np.ndindex(*kernel):
                src = [pos[a] * stride[a] - pads[a][0] + tap[a] for a in range(n)]
                if all(0 <= src[a] < spatial[a] for a in range(n)):
                    vals.append(x[(c,) + tuple(src)])
            if layer.mode == "max":
                y[(c,) + pos] = max(vals)
            else:
                y[(c,) + pos] = sum(vals) / (int(np.prod(kernel)) if layer.count_include_pad else len(vals))
    return y


def frame_op(layer, x):
    """A shape operation on one frame, with numpy's own functions."""
    op = type(layer).__name__
    if op == "Reshape":
        return x.reshape(layer.shape)
    if op == "Flatten":
        s, e = layer.start % x.ndim, layer.end % x.ndim
        return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:])
    if op == "Transpose":
        return x.transpose(layer.perm)
    if op == "Squeeze":
        return x.squeeze(tuple(layer.axes))
    if op == "Unsqueeze":
        return np.expand_dims(x, tuple(layer.axes))
    if op == "Slice":
        return x[(slice(None),) * (layer.axis % x.ndim) + (slice(layer.start, layer.stop, layer.step),)]
    if op == "Pad":
        if layer.mode == "constant":
            return np.pad(x, layer.pads, mode="constant", constant_values=layer.value)
        return np.pad(x, layer.pads, mode=layer.mode)
    raise ValueError(op)


def node(layer, ins, lengths=None):
    """One node over whole sequences: ``ins`` its inputs, each (T, B, *frame) -> (T, B, *frame)."""
    kind = layer.kind
    x = ins[0]
    T, B = x.shape[:2]
    per_frame = lambda f: np.stack([np.stack([f(x[t, b]) for b in range(B)]) for t in range(T)])  # noqa: E731
    if kind == "recurrent":
        return recurrent(layer, x, lengths)[0]
    if kind == "dense":
        return x @ np.asarray(layer.weight, np.float64).T + (0.0 if layer.bias is None else layer.bias)
    if kind == "normalize":
        return (x - layer.mean) * layer.scale
    if kind == "activation":
        if layer.name in ("softmax", "log_softmax"):
            return np.moveaxis(act(layer.name, 0, 0, np.moveaxis(x, 2 + layer.axis % (x.ndim - 2), -1)), -1,
                               2 + layer.axis % (x.ndim - 2))
        return act(layer.name, layer.alpha, layer.beta, x)
    if kind == "elementwise":
        fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "max": np.maximum,
              "min": np.minimum}[layer.op]
        a, b = ins
        r = max(a.ndim, b.ndim) - 2
        return fn(a.reshape(a.shape[:2] + (1,) * (r + 2 - a.ndim) + a.shape[2:]),
                  b.reshape(b.shape[:2] + (1,) * (r + 2 - b.ndim) + b.shape[2:]))
    if kind == "embedding":
        return np.asarray(layer.weight, np.float64)[x]
    if kind == "temporal_conv1d":
        return temporal_conv(layer, x)
    if kind == "temporal_pool":
        return temporal_pool(layer, x)
    if kind == "layer_norm":
        axes = tuple(range(x.ndim - len(layer.normalized_shape), x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        y = (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + layer.eps)
        return y * (1.0 if layer.weight is None else layer.weight) + (0.0 if layer.bias is None else layer.bias)
    if kind == "batch_norm":
        shape = (-1,) + (1,) * (x.ndim - 3)
        y = (x - layer.mean.reshape(shape)) / np.sqrt(layer.var.reshape(shape) + layer.eps)
        return y * (1.0 if layer.weight is None else layer.weight.reshape(shape)) + \
            (0.0 if layer.bias is None else layer.bias.reshape(shape))
    if kind == "group_norm":
        g = x.reshape((T, B, layer.groups, -1))
        g = (g - g.mean(axis=3, keepdims=True)) / np.sqrt(g.var(axis=3, keepdims=True) + layer.eps)
        shape = (-1,) + (1,) * (x.ndim - 3)
        y = g.reshape(x.shape)
        return y * (1.0 if layer.weight is None else layer.weight.reshape(shape)) + \
            (0.0 if layer.bias is None else layer.bias.reshape(shape))
    if kind == "l2_norm":
        axis = 2 + layer.axis % (x.ndim - 2)
        return x / np.maximum(np.sqrt((x ** 2).sum(axis=axis, keepdims=True)), layer.eps)
    if kind == "prelu":
        w = np.asarray(layer.weight, np.float64).reshape((-1,) + (1,) * (x.ndim - 3))
        return np.where(x >= 0, x, w * x)
    if kind == "frame_conv":
        return per_frame(lambda f: frame_conv(layer, f))
    if kind == "pool":
        return per_frame(lambda f: pool(layer, f))
    if kind == "frame":
        return per_frame(lambda f: frame_op(layer, f))
    if kind == "concat":
        return np.concatenate(ins, axis=2 + layer.axis % (x.ndim - 2))
    raise ValueError(f"no reference for {kind}")


def run_graph(spec, inputs, lengths=None):
    """A graph model on ``inputs`` (name -> (T, B, *frame)): its outputs in graph order, float64."""
    values = {name: (np.asarray(v) if np.asarray(v).dtype.kind in "iu" else np.asarray(v, np.float64))
              for name, v in inputs.items()}
    for n in spec.nodes:
        values[n.name] = node(n.layer, [values[e] for e in n.inputs], lengths)
    return [values[o] for o in spec.outputs]
