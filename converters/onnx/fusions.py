"""Rewrites of an ONNX graph before conversion: subgraphs that exporters write out op by op for a layer the engine
has whole, replaced by that layer's one ONNX node, so that the converter sees (and the model runs) the layer.

* a layer norm written as primitive ops (tf2onnx, older torch exports): ReduceMean -> Sub -> Mul or Pow ->
  ReduceMean -> Add eps -> Sqrt -> Div [-> Mul scale] [-> Add bias]  =>  LayerNormalization;
* a Keras LSTM cell unrolled over a one-step sequence (tf2onnx of a stateful streaming model): the input's one
  step and h through MatMuls, a bias, Split into four gates, sigmoids and tanhs, c and h  =>  LSTM with the cell's
  h and c as its initial state and outputs.

A match is taken only when no tensor inside it is read from outside it (apart from the ones the rewrite gives
again: a cell's h and c); the graph is then put back in topological order.
"""

import numpy as np
from onnx import helper


class _Graph:
    def __init__(self, nodes, consts, outputs, opset, data_input):
        self.nodes, self.consts, self.outputs, self.opset = list(nodes), consts, set(outputs), opset
        self.producer = {o: n for n in self.nodes for o in n.output if o}
        self.readers = {}
        for n in self.nodes:
            for i in n.input:
                if i:
                    self.readers.setdefault(i, []).append(n)
        self.from_data = {data_input}           # the tensors that depend on the data input
        for n in self.nodes:
            if any(i in self.from_data for i in n.input):
                self.from_data.update(o for o in n.output if o)

    def after(self, name):
        """The tensors computed from ``name``."""
        seen, todo = set(), [name]
        while todo:
            for n in self.readers.get(todo.pop(), []):
                for o in n.output:
                    if o and o not in seen:
                        seen.add(o)
                        todo.append(o)
        return seen

    def after_node(self, node):
        out = set()
        for o in node.output:
            if o:
                out |= {o} | self.after(o)
        return out

    def const(self, name):
        if name in self.consts:
            return np.asarray(self.consts[name])
        n = self.producer.get(name)
        if n is not None and n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            from onnx import numpy_helper
            return numpy_helper.to_array(n.attribute[0].t)
        return None

    def attr(self, node, name, default=None):
        for a in node.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    def axes(self, node):
        a = self.attr(node, "axes")
        if a is None and len(node.input) > 1 and node.input[1]:
            c = self.const(node.input[1])
            a = None if c is None else c.reshape(-1).tolist()
        return None if a is None else [int(v) for v in a]

    def only(self, name, op=None):
        """The one node reading ``name`` (of type ``op``), or None."""
        r = self.readers.get(name, [])
        if len(r) == 1 and name not in self.outputs and (op is None or r[0].op_type == op):
            return r[0]
        return None

    def made_by(self, name, op):
        n = self.producer.get(name)
        return n if n is not None and n.op_type == op else None

    def closed(self, inner, keep=()):
        """True when every output of the nodes ``inner`` is read only by nodes of ``inner`` (or is in ``keep``)."""
        ids = {id(n) for n in inner}
        for n in inner:
            for o in n.output:
                outside = any(id(r) not in ids for r in self.readers.get(o, []))
                if o and o not in keep and (o in self.outputs or outside):
                    return False
        return True


def _other(node, name):
    """The input of a two-input node that is not ``name``."""
    a, b = node.input[0], node.input[1]
    return b if a == name else a if b == name else None


def _layer_norms(g, new_name):
    out = []
    for r1 in [n for n in g.nodes if n.op_type == "ReduceMean"]:
        if g.axes(r1) != [-1] or g.attr(r1, "keepdims", 1) != 1:
            continue
        x, m = r1.input[0], r1.output[0]
        subs = [n for n in g.readers.get(m, []) if n.op_type == "Sub" and list(n.input) == [x, m]]
        if not subs or len(g.readers.get(m, [])) != len(subs):
            continue
        diffs = {s.output[0] for s in subs}
        sq = next((n for d in diffs for n in g.readers.get(d, []) if
                   (n.op_type == "Mul" and n.input[0] == n.input[1] == d) or
                   (n.op_type == "Pow" and n.input[0] == d and g.const(n.input[1]) is not None
                    and float(g.const(n.input[1])) == 2.0)), None)
        r2 = g.only(sq.output[0], "ReduceMean") if sq is not None else None
        if r2 is None or g.axes(r2) != [-1] or g.attr(r2, "keepdims", 1) != 1:
            continue
        add = g.only(r2.output[0], "Add")
        eps = g.const(_other(add, r2.output[0])) if add is not None else None
        sqrt = g.only(add.output[0], "Sqrt") if eps is not None and eps.size == 1 else None
        div = g.only(sqrt.output[0], "Div") if sqrt is not None else None
        if div is None or div.input[0] not in diffs or div.input[1] != sqrt.output[0]:
            continue
        inner, last, scale, bias = subs + [r1, sq, r2, add, sqrt, div], div, None, None
        mul = g.only(div.output[0], "Mul")
        if mul is not None and g.const(_other(mul, div.output[0])) is not None:
            scale, last = _other(mul, div.output[0]), mul
            inner.append(mul)
            badd = g.only(mul.output[0], "Add")
            if badd is not None and g.const(_other(badd, mul.output[0])) is not None:
                bias, last = _other(badd, mul.output[0]), badd
                inner.append(badd)
        if not g.closed(inner, keep={last.output[0]}):
            continue
        node = helper.make_node("LayerNormalization", [x, scale or "", bias or ""], [last.output[0]],
                                name=new_name(f"{r1.name or 'layer_norm'}/fused"), axis=-1,
                                epsilon=float(np.asarray(eps).reshape(())))
        out.append((inner, [node]))
    return out


def _gelus(g, new_name):
    """x * 0.5 * (1 + erf(x / sqrt(2))) in the orders exporters write it -> Gelu."""
    out = []
    for erf in [n for n in g.nodes if n.op_type == "Erf"]:
        scale = g.producer.get(erf.input[0])
        if scale is None or scale.op_type not in ("Div", "Mul") or g.only(scale.output[0]) is not erf:
            continue
        c = g.const(scale.input[1])
        want = np.sqrt(2.0) if scale.op_type == "Div" else 1 / np.sqrt(2.0)
        if c is None or c.size != 1 or abs(float(c.reshape(())) - want) > 1e-6:
            continue
        x = scale.input[0]
        add = g.only(erf.output[0], "Add")
        one = g.const(_other(add, erf.output[0])) if add is not None else None
        if one is None or one.size != 1 or float(one.reshape(())) != 1.0:
            continue
        m1 = g.only(add.output[0], "Mul")
        if m1 is None:
            continue
        other = _other(m1, add.output[0])
        half = g.producer.get(other)            # (0.5 * x) * (1 + erf)
        inner = [scale, erf, add, m1]
        if other == x:                              # (x * (1 + erf)) * 0.5
            m2 = g.only(m1.output[0], "Mul")
            h = g.const(_other(m2, m1.output[0])) if m2 is not None else None
            if h is None or h.size != 1 or float(h.reshape(())) != 0.5:
                continue
            inner.append(m2)
            last = m2
        elif half is not None and half.op_type == "Mul" and x in half.input and \
                g.const(_other(half, x)) is not None and float(g.const(_other(half, x)).reshape(())) == 0.5 \
                and g.only(other) is m1:
            inner.append(half)
            last = m1
        else:
            continue
        if not g.closed(inner, keep={last.output[0]}):
            continue
        out.append((inner, [helper.make_node("Gelu", [x], [last.output[0]], name=new_name(f"{erf.name or 'gelu'}"
                                                                                              f"/fused"))]))
    return out


GATES = ("i", "o", "f", "c")          # ONNX LSTM's gate order


def _lstm_cells(g, new_name):
    out = []
    for split in [n for n in g.nodes if n.op_type == "Split" and len(n.output) == 4]:
        try:
            found = _lstm_cell(g, split, new_name)
        except (KeyError, TypeError, ValueError, AttributeError):
            found = None
        if found is not None:
            out.append(found)
    return out


def _projection(g, name):
    """``name`` as x @ W (+ b): (x, W (K, N), b or None, node) for a MatMul or a Gemm with a constant weight."""
    mm = g.producer.get(name)
    if mm is not None and mm.op_type == "MatMul":
        w = g.const(mm.input[1])
        return (mm.input[0], w, None, mm) if w is not None and w.ndim == 2 else None
    if mm is not None and mm.op_type == "Gemm" and not g.attr(mm, "transA", 0) \
            and g.attr(mm, "alpha", 1.0) == 1.0 and g.attr(mm, "beta", 1.0) == 1.0:
        w = g.const(mm.input[1])
        if w is None or w.ndim != 2:
            return None
        w = w.T if g.attr(mm, "transB", 0) else w
        c = g.const(mm.input[2]) if len(mm.input) > 2 and mm.input[2] else None
        if len(mm.input) > 2 and mm.input[2] and c is None:
            return None
        return mm.input[0], w, c, mm
    return None


def _lstm_cell(g, split, new_name):
    """A split into four gates of x @ W + h @ R (+ biases), the gates' sigmoids and tanh, c = f * c_prev + i * g,
    h = o * tanh(c): the gate roles come from the structure, not from an order."""
    if g.attr(split, "axis", 0) not in (1, -1):
        return None
    inner, terms, todo = [split], [], [split.input[0]]
    while todo:                                    # the sum feeding the split: projections and constant biases
        t = todo.pop()
        add = g.made_by(t, "Add")
        if add is not None and (t == split.input[0] or g.only(t) is not None):
            inner.append(add)
            todo += list(add.input)
        else:
            terms.append(t)
    biases = [g.const(t) for t in terms if g.const(t) is not None]
    projections = [_projection(g, t) for t in terms if g.const(t) is None]
    if len(projections) != 2 or None in projections:
        return None
    inner += [p[3] for p in projections]
    H4 = projections[0][1].shape[1]
    H = H4 // 4
    if H4 % 4 or projections[1][1].shape[1] != H4:
        return None
    acts = {}
    for k, o in enumerate(split.output):
        a = g.only(o)
        if a is None or a.op_type not in ("Sigmoid", "Tanh"):
            return None
        acts[k] = a
    tanh = [k for k, a in acts.items() if a.op_type == "Tanh"]
    if len(tanh) != 1:
        return None
    g_k = tanh[0]
    inner += list(acts.values())
    mul_ig = g.only(acts[g_k].output[0], "Mul")                    # i * g
    i_k = next(k for k, a in acts.items() if a.output[0] == _other(mul_ig, acts[g_k].output[0]))
    add_c = next(n for n in g.readers[mul_ig.output[0]] if n.op_type == "Add")      # c = f * c_prev + i * g
    mul_fc = g.made_by(_other(add_c, mul_ig.output[0]), "Mul")
    f_k = next(k for k, a in acts.items() if a.output[0] in mul_fc.input and k not in (i_k, g_k))
    c_prev = _other(mul_fc, acts[f_k].output[0])
    o_k = ({0, 1, 2, 3} - {i_k, f_k, g_k}).pop()
    c = add_c.output[0]
    tanh_c = next(n for n in g.readers[c] if n.op_type == "Tanh")
    mul_h = g.only(tanh_c.output[0], "Mul")                         # h = o * tanh(c)
    if _other(mul_h, tanh_c.output[0]) != acts[o_k].output[0] or g.only(acts[o_k].output[0]) is not mul_h:
        return None
    h = mul_h.output[0]
    inner += [mul_ig, add_c, mul_fc, tanh_c, mul_h]
    from_data = [p[0] in g.from_data for p in projections]       # the step's input depends on the graph's data
    if sorted(from_data) != [False, True]:
        return None
    (x_t, Wx, bx, _), (h_prev, Wh, bh, _) = projections if from_data[0] else projections[::-1]
    if Wh.shape[0] != H:
        return None
    # a one-step sequence (Keras's unstack: Squeeze(axis 0) of a one-output Split) and its output sequence
    # (Unsqueeze(h, 0) -> Concat), or a graph that takes one frame per call and has no time axis at this point
    X, seq_out, sq = None, None, g.made_by(x_t, "Squeeze")
    if sq is not None and g.axes(sq) == [0] and g.only(x_t) is projections[0 if from_data[0] else 1][3]:
        X = sq.input[0]
        inner.append(sq)
        sp1 = g.made_by(X, "Split")
        if sp1 is not None and len(sp1.output) == 1 and g.only(X) is sq:
            X = sp1.input[0]
            inner.append(sp1)
        seq = [n for n in g.readers.get(h, []) if n.op_type == "Unsqueeze" and g.axes(n) == [0]]
        cat = g.only(seq[0].output[0], "Concat") if len(seq) == 1 else None
        if cat is None or len(cat.input) != 1:
            return None
        inner += [seq[0], cat]
        seq_out = cat.output[0]
    if not g.closed(inner, keep={h, c} | ({seq_out} if seq_out else set())):
        return None
    parts = {name: k for name, k in zip(("i", "f", "c", "o"), (i_k, f_k, g_k, o_k))}
    order = [parts[gate] for gate in GATES]
    dt = Wx.dtype
    W = np.concatenate([Wx[:, k * H:(k + 1) * H].T for k in order])[None]
    R = np.concatenate([Wh[:, k * H:(k + 1) * H].T for k in order])[None]
    b = np.zeros(4 * H, np.float64)
    for extra in biases + [bx, bh]:
        if extra is not None:
            b = b + np.broadcast_to(np.asarray(extra, np.float64).reshape(-1), (4 * H,))
    B = np.concatenate([np.concatenate([b[k * H:(k + 1) * H] for k in order]), np.zeros(4 * H)])[None].astype(dt)
    base = new_name(f"{split.name or 'lstm'}/fused")
    names = {k: f"{base}/{k}" for k in ("W", "R", "B", "X", "h0", "c0", "Y", "Yh", "Yc", "h")}
    g.consts.update({names["W"]: W, names["R"]: R, names["B"]: B})
    nodes = []
    if X is None:                                  # one frame per call: x_t is the frame; give it a time axis
        nodes.append(_unsqueeze0(g, x_t, names["X"]))
        X = names["X"]
    nodes += [_unsqueeze0(g, h_prev, names["h0"]), _unsqueeze0(g, c_prev, names["c0"]),
              helper.make_node("LSTM", [X, names["W"], names["R"], names["B"], "", names["h0"], names["c0"]],
                               [names["Y"], names["Yh"], names["Yc"]], hidden_size=H, name=base),
              _squeeze(g, names["Yc"], [0], c)]
    if seq_out:
        nodes += [_squeeze(g, names["Y"], [1], seq_out), _squeeze(g, names["Yh"], [0], h)]
    else:       # h goes on as the data (the step's output) and may be stacked into the next state too
        nodes += [_squeeze(g, names["Y"], [0, 1], names["h"]), _squeeze(g, names["Yh"], [0], names["h"] + "/state"),
                  helper.make_node("Dual", [names["h"], names["h"] + "/state"], [h], domain="rnnjit")]
    return inner, nodes


def _unsqueeze0(g, x, out):
    if g.opset >= 13:
        g.consts[out + "/axes"] = np.array([0], np.int64)
        return helper.make_node("Unsqueeze", [x, out + "/axes"], [out])
    return helper.make_node("Unsqueeze", [x], [out], axes=[0])


def _squeeze(g, x, axes, out):
    if g.opset >= 13:
        g.consts[out + "/axes"] = np.array(axes, np.int64)
        return helper.make_node("Squeeze", [x, out + "/axes"], [out])
    return helper.make_node("Squeeze", [x], [out], axes=axes)


def fuse(nodes, consts, outputs, opset, data_input):
    """The graph's nodes with the known multi-op layers replaced by one node each, in topological order. New
    constants (a fused LSTM's W, R, B) are added to ``consts``. Also returns a list of what was fused."""
    g = _Graph(nodes, consts, outputs, opset, data_input)
    used = {n.name for n in nodes}

    def new_name(base):
        name, k = base, 1
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        return name

    done, removed, added = [], set(), []
    for finder, what in ((_layer_norms, "layer norm"), (_lstm_cells, "LSTM cell"), (_gelus, "gelu")):
        for inner, new in finder(g, new_name):
            if any(id(n) in removed for n in inner):
                continue
            removed.update(id(n) for n in inner)
            added += new
            done.append(f"{what} " + (new[0].output[0] if what in ("layer norm", "gelu") else
                                      next(n.name for n in new if n.op_type == "LSTM")))
    if not done:
        return list(nodes), done
    return _topological([n for n in nodes if id(n) not in removed] + added, consts), done


def _topological(nodes, consts):
    have = set(consts)
    producers = {o for n in nodes for o in n.output}
    pending, order = list(nodes), []
    while pending:
        for k, n in enumerate(pending):
            if all(not i or i in have or i not in producers for i in n.input):
                order.append(n)
                have.update(o for o in n.output if o)
                del pending[k]
                break
        else:       # a cycle: leave the rest in their order; the converter reports what it cannot read
            return order + pending
    return order
