"""The ONNX LSTM / GRU / RNN operators -> engine recurrent layers (shared by lstm.py, gru.py, rnn.py).

Layouts (ONNX -> engine canonical, PyTorch's; written once, here):
* LSTM  W (D, 4H, I), R (D, 4H, H), gate blocks i,o,f,c -> ours i,f,g,o: take ONNX blocks [0, 2, 3, 1].
        B (D, 8H) = [Wb | Rb], each in i,o,f,c -> the same permutation, as bias_ih / bias_hh.
        P (D, 3H) peepholes i,o,f -> ours (3, H) i,f,o: rows [0, 2, 1].
* GRU   gate blocks z,r,h -> ours r,z,n: ONNX blocks [1, 0, 2]; linear_before_reset kept as a flag.
* RNN   one block: no permutation.
* activations: one list for all directions, f,g,h per direction (LSTM), f,g (GRU), f (RNN); each function
  consumes activation_alpha / activation_beta in order only if it takes them (onnxruntime's reading).
* layout=1 means X (B, T, I), Y (B, T, D, H), Y_h / Y_c (B, D, H) instead of time-major.
"""

import numpy as np
import onnx

from engine import GRU, LSTM, RNN, Activation
from engine.errors import SpecError

from ..graph import Dual, Dyn, RuntimeInput, State, Unsupported, Zeros

GATE_ORDER = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}
PEEPHOLE_ORDER = [0, 2, 1]
DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
TAKES_ALPHA = {"affine", "leakyrelu", "thresholdedrelu", "scaledtanh", "hardsigmoid", "elu"}
TAKES_BETA = {"affine", "scaledtanh", "hardsigmoid"}
ATTRIBUTES = {
    "LSTM": {"hidden_size", "direction", "activations", "activation_alpha", "activation_beta", "clip", "input_forget",
             "layout"},
    "GRU": {"hidden_size", "direction", "activations", "activation_alpha", "activation_beta", "clip",
            "linear_before_reset", "layout"},
    "RNN": {"hidden_size", "direction", "activations", "activation_alpha", "activation_beta", "clip", "layout"},
}
CLASSES = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}


def _blocks(a, order, H, axis):
    return np.concatenate([np.take(a, np.arange(k * H, (k + 1) * H), axis=axis) for k in order], axis=axis)


def parse_activations(op, attrs, D):
    names = [n.decode() if isinstance(n, bytes) else n for n in attrs.get("activations", [])]
    per_dir = len(DEFAULT_ACTIVATIONS[op])
    if not names:
        names = DEFAULT_ACTIVATIONS[op] * D
    if len(names) != per_dir * D:
        raise Unsupported(f"activations lists {len(names)} functions; {op} with {D} direction(s) takes {per_dir * D}")
    alphas = list(attrs.get("activation_alpha", []))
    betas = list(attrs.get("activation_beta", []))
    out = []
    for name in names:
        key = name.lower()
        alpha = alphas.pop(0) if key in TAKES_ALPHA and alphas else None
        beta = betas.pop(0) if key in TAKES_BETA and betas else None
        try:
            act = Activation(name, alpha, beta)
        except SpecError as exc:
            raise Unsupported(str(exc)) from None
        if not act.usable_in_cell:
            raise Unsupported(f"activation {name} cannot be a recurrent gate function")
        out.append(act)
    return [out[d * per_dir:(d + 1) * per_dir] for d in range(D)]


def convert(ctx, node, op, opset_has_layout):
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    unknown = sorted(set(attrs) - ATTRIBUTES[op])
    if unknown:
        raise Unsupported(f"attribute(s) {unknown} are not part of {op} and are not ignored")
    if "layout" in attrs and not opset_has_layout:
        raise Unsupported(f"layout is not an attribute of {op} before opset 14")
    layout = int(attrs.get("layout", 0))
    if layout not in (0, 1):
        raise Unsupported(f"layout must be 0 or 1, got {layout}")
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("forward", "reverse", "bidirectional"):
        raise Unsupported(f"direction {direction!r} is not forward, reverse or bidirectional")
    D = 2 if direction == "bidirectional" else 1
    G = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]

    X = ctx.value(node.input[0])
    if not isinstance(X, Dyn) or len(X.roles) != 3 or ctx.resolve(X.roles[2]) != "F":
        raise Unsupported("X must be the model's data with features on its last axis")
    time_axis, batch_axis = (0, 1) if layout == 0 else (1, 0)
    ctx.bind(X.roles[time_axis], "T")
    ctx.bind(X.roles[batch_axis], "B")
    if X.reversed_time:
        if direction == "bidirectional":
            raise Unsupported("a bidirectional layer over a time-reversed input is not supported")
        direction = "reverse" if direction == "forward" else "forward"

    W = ctx.const(node, 1, "W")
    R = ctx.const(node, 2, "R")
    if W.ndim != 3 or W.shape[0] != D or W.shape[1] % G:
        raise Unsupported(f"W must be ({D}, {G}*hidden, input), got {W.shape}")
    H = W.shape[1] // G
    if "hidden_size" in attrs and int(attrs["hidden_size"]) != H:
        raise Unsupported(f"hidden_size={attrs['hidden_size']} but W has {W.shape[1]} rows = {G} x {H}")
    I = W.shape[2]
    if X.sizes.get("F") not in (None, I):
        raise Unsupported(f"W expects {I} input features but X has {X.sizes['F']}")
    if R.shape != (D, G * H, H):
        raise Unsupported(f"R must be {(D, G * H, H)}, got {R.shape}")
    B = ctx.const(node, 3, "B", np.zeros((D, 2 * G * H), np.float32))
    if B.shape != (D, 2 * G * H):
        raise Unsupported(f"B must be {(D, 2 * G * H)}, got {B.shape}")
    P = ctx.const(node, 7, "P") if op == "LSTM" else None
    if P is not None and P.shape != (D, 3 * H):
        raise Unsupported(f"P must be {(D, 3 * H)}, got {P.shape}")

    order = GATE_ORDER[op]
    weights = []
    for d in range(D):
        w = {"weight_ih": _blocks(W[d], order, H, 0), "weight_hh": _blocks(R[d], order, H, 0),
             "bias_ih": _blocks(B[d, :G * H], order, H, 0), "bias_hh": _blocks(B[d, G * H:], order, H, 0)}
        if P is not None:
            w["peephole"] = P[d].reshape(3, H)[PEEPHOLE_ORDER]
        weights.append(w)
    kwargs = {"direction": direction, "activations": parse_activations(op, attrs, D)}
    if "clip" in attrs:
        kwargs["clip"] = float(attrs["clip"])
    if op == "LSTM":
        kwargs["input_forget"] = bool(attrs.get("input_forget", 0))
    if op == "GRU":
        kwargs["linear_before_reset"] = bool(attrs.get("linear_before_reset", 0))

    layer_index = len(ctx.nodes)
    state_roles = ("D", "B", "F") if layout == 0 else ("B", "D", "F")
    for slot, kind in ((5, "h"), (6, "c")):
        if kind == "c" and op != "LSTM":
            continue
        value = ctx.value(node.input[slot]) if slot < len(node.input) else None
        if value is None or isinstance(value, Zeros):
            continue
        if isinstance(value, RuntimeInput):
            want = [D, "B", H] if layout == 0 else ["B", D, H]
            if len(value.dims) != 3 or any(isinstance(d, int) and isinstance(w, int) and d != w
                                           for d, w in zip(value.dims, want)):
                raise Unsupported(f"initial_{kind} from input {value.name!r} has shape {value.dims}; expected "
                                  f"{want}")
            ctx.state_inputs.setdefault(value.name, []).append((f"layers.{layer_index}.{kind}", state_roles,
                                                                value.fn))
            continue
        if not isinstance(value, np.ndarray):
            raise Unsupported(f"initial_{kind} must be a constant, a zero tensor or a graph input, "
                              f"got a {type(value).__name__}")
        arr = value if layout == 0 else value.transpose(1, 0, 2)      # -> (D, B, H)
        if arr.ndim != 3 or arr.shape[0] != D or not np.all(arr == arr[:, :1]):
            raise Unsupported(f"a constant initial_{kind} must be the same for every sequence in the batch "
                              f"(shape (D, 1, H) or rows all equal), got shape {value.shape}")
        kwargs[f"initial_{kind}"] = arr[:, 0]
    seq = ctx.value(node.input[4]) if len(node.input) > 4 else None
    if isinstance(seq, RuntimeInput):
        if ctx.lengths_input not in (None, seq.name):
            raise Unsupported("two different sequence_lens inputs")
        ctx.lengths_input = seq.name
    elif seq is not None:
        raise Unsupported("a constant sequence_lens fixes the batch; pass lengths= to Model.run instead "
                          "(or feed sequence_lens as a graph input)")

    try:
        layer = CLASSES[op](I, H, weights, **kwargs)
    except SpecError as exc:
        raise Unsupported(str(exc)) from None
    if X.sizes.get("F") is None:
        X = X.with_roles(X.roles, dict(X.sizes, F=I))
    Y = ctx.emit(X, layer)
    roles = ("T", "D", "B", "F") if layout == 0 else ("B", "T", "D", "F")
    outs = list(node.output) + ["", "", ""]
    if outs[0]:
        ctx.values[outs[0]] = Dyn(roles, {"F": H, "D": D}, Y.edge, X.reversed_time)
    for out, kind in ((outs[1], "h"), (outs[2] if op == "LSTM" else "", "c")):
        if out:
            key = f"layers.{layer_index}.{kind}"
            ctx.values[out] = State((lambda st, k=key: st[k]) if layout == 0 else
                                    (lambda st, k=key: st[k].transpose(1, 0, 2)),
                                    [D, "B", H] if layout == 0 else ["B", D, H], [key])
            if kind == "h" and D == 1 and direction == "forward" and ctx.per_call():
                # one frame per call: the final h is also the step's output, which the graph may read on as data
                ctx.values[out] = Dual(Dyn(state_roles, {"F": H, "D": 1}, Y.edge, X.reversed_time), ctx.values[out])
