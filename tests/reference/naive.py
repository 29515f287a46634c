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
