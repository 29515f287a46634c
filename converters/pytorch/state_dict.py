"""A PyTorch state_dict (names -> arrays) -> ModelSpec: the architecture read from parameter names.

What the names say:
* ``<p>weight_ih_l<k>[_reverse]``, ``weight_hh``, ``bias_ih``, ``bias_hh``, ``weight_hr``: layer k of an
  nn.LSTM / nn.GRU / nn.RNN at prefix ``<p>``; ``_reverse`` means bidirectional; ``weight_hr`` means
  ``proj_size``. The cell follows from shapes: weight_hh is (G*H, H_out) with G = 4 (LSTM), 3 (GRU), 1 (RNN).
* ``<p>weight_ih`` etc. without ``_l<k>``: an nn.LSTMCell / GRUCell / RNNCell (one forward layer).
* ``<p>weight`` (2-D) with an optional ``<p>bias``: an nn.Linear.
Groups come in module order (the order of their first key).

What they cannot say, and the options that do (see ``spec_from_state_dict``): which groups form the model
and in what order (``layers``), the activation after a linear layer (``activations``, ``head_activation``),
an RNN's nonlinearity (``rnn_nonlinearity``). Keys that belong to no usable group are reported by name
(``ignore`` lists the ones to leave out on purpose).

Layout: PyTorch's parameter layout IS the engine's canonical layout (gates i,f,g,o / r,z,n; weight_ih
(G*H, I)), so no transpose or permutation happens here: arrays pass through as they are.
"""

import itertools
import re

import numpy as np

from engine import (GRU, LSTM, RNN, Activation, BatchNorm, Dense, Embedding, GroupNorm, Input, LayerNorm, ModelSpec,
                    Node, PReLU)
from engine.errors import FormatError, SpecError

_STACKED = re.compile(r"^(?P<prefix>.*?)(?P<name>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(?P<layer>\d+)"
                      r"(?P<rev>_reverse)?$")
_CELL = re.compile(r"^(?P<prefix>.*?)(?P<name>weight_ih|weight_hh|bias_ih|bias_hh)$")
_LINEAR = re.compile(r"^(?P<prefix>.*?)(?P<name>weight|bias|running_mean|running_var|num_batches_tracked)$")
_CELLS = {4: ("lstm", LSTM), 3: ("gru", GRU), 1: ("rnn", RNN)}


class _Group:
    def __init__(self, prefix, kind, order):
        self.prefix, self.kind, self.order = prefix, kind, order
        self.keys = {}

    @property
    def label(self):
        return self.prefix.rstrip(".") or "(top level)"


def _as_numpy(value):
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, when torch is around
        return value.detach().cpu().float().numpy() if str(value.dtype) == "torch.bfloat16" \
            else value.detach().cpu().numpy()
    return None


def find_groups(state_dict):
    """The recognizable parameter groups, in module order, and the keys that fit none."""
    groups, unused = {}, []
    for i, (key, value) in enumerate(state_dict.items()):
        arr = _as_numpy(value)
        if arr is None:
            unused.append(key)
            continue
        for pattern, kind in ((_STACKED, "rnn"), (_CELL, "cell"), (_LINEAR, "linear")):
            m = pattern.match(key)
            if m:
                gid = (m["prefix"], kind)
                group = groups.get(gid)
                if group is None:
                    group = groups[gid] = _Group(m["prefix"], kind, i)
                if kind == "rnn":
                    group.keys[(m["name"], int(m["layer"]), bool(m["rev"]))] = arr
                else:
                    group.keys[m["name"]] = arr
                break
        else:
            unused.append(key)
    ordered = sorted(groups.values(), key=lambda g: g.order)
    usable = []
    for g in ordered:
        if g.kind == "linear":
            g.kind = _plain_kind(g.keys)
            if g.kind is None:
                unused += [g.prefix + k for k in g.keys]
                continue
        usable.append(g)
    return usable, unused


def _plain_kind(keys):
    """What a ``<p>weight`` / ``bias`` / running-statistics group is, from its shapes: "linear" (2-D weight),
    "conv" (3-D or 4-D weight: Conv1d, Conv2d), "batchnorm" (running_mean and running_var), "affine" (a 1-D
    weight: LayerNorm, GroupNorm, an affine InstanceNorm or a PReLU, which shapes cannot tell apart), or None."""
    w, b = keys.get("weight"), keys.get("bias")
    if b is not None and b.ndim != 1:
        return None
    if "running_mean" in keys or "running_var" in keys:
        ok = all(keys.get(k) is not None and keys[k].ndim == 1 for k in ("running_mean", "running_var"))
        return "batchnorm" if ok and (w is None or w.ndim == 1) else None
    if w is None:
        return None
    return {1: "affine", 2: "linear", 3: "conv", 4: "conv"}.get(w.ndim)


def _recurrent_layers(group, nonlinearity):
    """Engine layers for one nn.LSTM/GRU/RNN (or *Cell) parameter group."""
    where = f"parameter group {group.label!r}"
    if group.kind == "cell":
        keys = {(name, 0, False): arr for name, arr in group.keys.items()}
    else:
        keys = group.keys
    layers_idx = sorted({k[1] for k in keys})
    if layers_idx != list(range(len(layers_idx))):
        raise FormatError(f"{where}: layer indices {layers_idx} are not 0..{len(layers_idx) - 1}")
    reverse = any(k[2] for k in keys)
    out = []
    for k in layers_idx:
        weights = []
        for rev in ([False, True] if reverse else [False]):
            w = {name: keys.get((name, k, rev)) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                                             "weight_hr")}
            missing = [n for n in ("weight_ih", "weight_hh") if w[n] is None]
            if missing:
                raise FormatError(f"{where}: layer {k}{' reverse' if rev else ''} lacks {', '.join(missing)}")
            weights.append({n: v for n, v in w.items() if v is not None})
        w0 = weights[0]
        hh = w0["weight_hh"]
        if hh.ndim != 2 or w0["weight_ih"].ndim != 2:
            raise FormatError(f"{where}: weight_ih and weight_hh must be 2-D, got {w0['weight_ih'].shape} "
                              f"and {hh.shape}")
        proj = w0.get("weight_hr")
        H = proj.shape[1] if proj is not None else hh.shape[1]
        G = hh.shape[0] // H if H and hh.shape[0] % H == 0 else 0
        if G not in _CELLS:
            raise FormatError(f"{where}: weight_hh of shape {hh.shape} is not (G*H, H) for G = 4 (LSTM), "
                              f"3 (GRU) or 1 (RNN)")
        cell, cls = _CELLS[G]
        kwargs = {"direction": "bidirectional" if reverse else "forward"}
        if cell == "lstm" and proj is not None:
            kwargs["proj_size"] = proj.shape[0]
        if cell == "rnn":
            kwargs["activations"] = [nonlinearity]
        try:
            out.append(cls(w0["weight_ih"].shape[1], H, weights, **kwargs))
        except SpecError as exc:
            raise FormatError(f"{where}, layer {k}: {exc}") from None
    return out


# a module named like this with one 2-D weight and no bias is an nn.Embedding (num_embeddings, dim), not a Linear
_EMBEDDING = re.compile(r"(^|[._])(emb|embed|embeds|embedding|embeddings)([._]|$)|embedding", re.IGNORECASE)


def _is_embedding(group):
    last = group.prefix.rstrip(".").split(".")[-1]
    return group.kind == "linear" and "bias" not in group.keys and bool(_EMBEDDING.search(last))


def _group_layers(group, nonlinearity, first=False):
    if group.kind == "linear":
        if first and _is_embedding(group):   # token ids in: only a model's first layer reads them
            return [Embedding(group.keys["weight"], name=group.label)]
        return [Dense(group.keys["weight"], group.keys.get("bias"), name=group.label)]
    return _recurrent_layers(group, nonlinearity)


def _leftover(groups, used, unused, ignored):
    """The keys no chosen group takes (those of ``unused`` and of the groups whose id is not in ``used``) and
    ``ignore`` does not name, as a short list for an error; "" when there are none."""
    leftover = [k for k in unused if not ignored(k)]
    for g in groups:
        if id(g) not in used:
            names = [g.prefix + (k if isinstance(k, str) else f"{k[0]}_l{k[1]}{'_reverse' if k[2] else ''}")
                     for k in g.keys]
            leftover += [n for n in names if not ignored(n)]
    return ", ".join(leftover[:12]) + (f" and {len(leftover) - 12} more" if len(leftover) > 12 else "")


def _chain_order(groups, built, source):
    """The unique order of groups in which each one's output size is the next one's input size."""
    sizes = {}
    for g in groups:
        first, last = built[id(g)][0], built[id(g)][-1]
        in_size = first.in_features if isinstance(first, Dense) else first.input_size
        sizes[id(g)] = (in_size, last.output_size())
    found = []
    for perm in itertools.permutations(groups) if len(groups) <= 8 else []:
        if all(sizes[id(a)][1] == sizes[id(b)][0] for a, b in zip(perm, perm[1:])):
            found.append(perm)
            if len(found) > 1:
                break
    if len(found) != 1:
        labels = ", ".join(f"{g.label!r} ({sizes[id(g)][0]} -> {sizes[id(g)][1]})" for g in groups)
        raise FormatError(f"{source}: this file does not keep module order, and the groups' sizes "
                          f"{'allow several orders' if found else 'do not chain'}: {labels}. "
                          f"Give the order with layers=[...]")
    return list(found[0])


def spec_from_state_dict(state_dict, *, layers=None, activations=None, head_activation=None,
                         rnn_nonlinearity="tanh", ignore=(), order="module", dtype="float32", source="state_dict"):
    """Build a ModelSpec from a flat ``{name: array}`` state_dict.

    layers: the parameter groups (module prefixes, e.g. ``["encoder.rnn", "fc"]``) that form the model, in
        order. Default: every recognizable group in module order, which must hold exactly one recurrent
        group or say so with ``layers`` (the error lists the candidates).
    activations: ``{prefix: activation}`` applied after that group's output (e.g. ``{"fc1": "relu"}``).
    head_activation: activation after the last layer (e.g. ``"sigmoid"``, ``"softmax"``); default none.
    rnn_nonlinearity: ``"tanh"`` (PyTorch's default) or ``"relu"`` for nn.RNN groups (the names do not say).
    ignore: key names or prefixes that are not part of the model (optimizer state, an unused branch).
    order: ``"module"`` takes groups in the order of their keys (what torch.save keeps); ``"chain"`` orders
        them by how their sizes connect, for files that do not keep module order (safetensors); it must
        find exactly one chain, else the error asks for ``layers``.
    """
    groups, unused = find_groups(state_dict)
    by_label = {g.label: g for g in groups}
    ignore = tuple(ignore)

    def ignored(key):
        return any(key == p or key.startswith(p.rstrip(".") + ".") for p in ignore)

    if layers is None:
        chosen = [g for g in groups if not (g.prefix and ignored(g.prefix.rstrip(".")))]
        recurrent = [g for g in chosen if g.kind in ("rnn", "cell")]
        if len(recurrent) != 1:
            labels = ", ".join(f"{g.label!r} ({g.kind})" for g in groups) or "none"
            raise FormatError(f"{source}: found {len(recurrent)} recurrent parameter groups; say which groups "
                              f"form the model with layers=[...]. Groups in module order: {labels}")
        placed = [g for g in chosen if g.kind in ("conv", "affine")]
        if placed:
            raise FormatError(f"{source}: {_placement_question(placed)}; a state_dict does not hold what forward() "
                              f"does around them: give the model's steps with layers=[...], e.g. "
                              f"{_example(chosen)}")
        if any(g.kind == "batchnorm" for g in chosen):
            return _steps_spec([g.label for g in chosen], by_label, unused, groups, ignored, activations,
                               head_activation, rnn_nonlinearity, dtype, source)
    elif any(not isinstance(x, str) or x.rstrip(".") not in by_label for x in layers) or any(
            by_label[x.rstrip(".")].kind not in ("linear", "rnn", "cell") for x in layers):
        return _steps_spec(layers, by_label, unused, groups, ignored, activations, head_activation,
                           rnn_nonlinearity, dtype, source)
    else:
        missing = [name for name in layers if name.rstrip(".") not in by_label]
        if missing:
            raise FormatError(f"{source}: no parameter group {missing}; groups found: {sorted(by_label)}")
        chosen = [by_label[name.rstrip(".")] for name in layers]
    activations = dict(activations or {})
    unknown_acts = set(a.rstrip(".") for a in activations) - set(g.label for g in chosen)
    if unknown_acts:
        raise FormatError(f"{source}: activations given for {sorted(unknown_acts)}, which are not among the "
                          f"model's layers {[g.label for g in chosen]}")
    built = {id(g): _group_layers(g, rnn_nonlinearity, first=(g is chosen[0] and order == "module"))
             for g in chosen}
    if order == "chain" and layers is None:
        chosen = _chain_order(chosen, built, source)
    elif order not in ("module", "chain"):
        raise ValueError(f"order must be 'module' or 'chain', got {order!r}")
    spec_layers = []
    for g in chosen:
        spec_layers += built[id(g)]
        act = activations.get(g.label) or activations.get(g.label + ".")
        if act:
            spec_layers.append(Activation.of(act))
    if head_activation:
        spec_layers.append(Activation.of(head_activation))

    shown = _leftover(groups, {id(g) for g in chosen}, unused, ignored)
    if shown:
        raise FormatError(f"{source}: keys that belong to no layer rnnjit can run: {shown}. Pass "
                          f"ignore=[...] to leave them out, or layers=[...] to choose the model's groups")
    try:
        if spec_layers and isinstance(spec_layers[0], Embedding):   # token ids in: a graph of one int64 input
            nodes = [Node(f"layers.{i}", layer, "ids" if i == 0 else f"layers.{i - 1}")
                     for i, layer in enumerate(spec_layers)]
            return ModelSpec.graph([Input("ids", (), "int64")], nodes, [nodes[-1].name], dtype=dtype,
                                   metadata={"source": source})
        return ModelSpec(spec_layers, dtype=dtype, metadata={"source": source})
    except SpecError as exc:
        order = " -> ".join(repr(layer) for layer in spec_layers)
        raise FormatError(f"{source}: the parameter groups do not chain into one model ({exc}). "
                          f"Layers in order: {order}. Choose and order them with layers=[...]") from None


_AFFINE_KINDS = ("layer_norm", "group_norm", "instance_norm", "prelu")


def _placement_question(groups):
    parts = []
    for g in groups:
        w = g.keys.get("weight")
        if g.kind == "conv":
            parts.append(f"{g.label!r} is a Conv{w.ndim - 2}d (weight {w.shape}) whose stride, padding, dilation and "
                         f"groups a state_dict does not hold (torch's defaults are taken unless "
                         f"'{g.label}(padding=..., ...)' says them), nor whether it runs within each frame or "
                         f"along time")
        else:
            parts.append(f"{g.label!r} has a 1-D weight of {w.shape[0]}{' and a bias' if 'bias' in g.keys else ''}: "
                         f"a LayerNorm, GroupNorm, affine InstanceNorm or PReLU; say which, as "
                         f"'{g.label}(kind=\"layer_norm\")' (or group_norm with groups=, instance_norm, prelu)")
    return "; ".join(parts)


def _example(groups):
    return "[" + ", ".join(repr(g.label) for g in groups) + "] with the functional steps between them (\"relu\", " \
        "\"max_pool1d(2)\", \"flatten\", ...)"


def _group_step(g, kwargs, nonlinearity, first, assumed):
    """The Step of parameter group ``g`` with the attributes ``kwargs`` the user gave it in layers=[...]."""
    from .steps import Step, conv_layers

    label, w, b = g.label, g.keys.get("weight"), g.keys.get("bias")
    allowed = {"conv": ("stride", "padding", "dilation", "groups"), "batchnorm": ("eps",),
               "affine": ("kind", "eps", "groups")}.get(g.kind, ())
    extra = sorted(set(kwargs) - set(allowed))
    if extra:
        raise FormatError(f"layers=[...]: {label!r} ({g.kind}) takes {', '.join(allowed) or 'no attributes'}, "
                          f"not {', '.join(extra)}")
    eps = kwargs.get("eps", 1e-5)
    if g.kind in ("linear", "rnn", "cell"):
        built = _group_layers(g, nonlinearity, first=first)
        head = built[0]
        in_shape = () if isinstance(head, Embedding) else (head.in_features if isinstance(head, Dense)
                                                            else head.input_size,)
        return Step(label, lambda shape: built, in_shape)
    if g.kind == "conv":
        n = w.ndim - 2
        given = {k: kwargs[k] for k in allowed if k in kwargs}
        missing = [k for k in allowed if k not in kwargs]
        if missing:
            assumed.append(f"{label}: {', '.join(missing)} are not in a state_dict; torch's defaults taken")
        per = {k: (list(v) if isinstance(v, (list, tuple)) else [v] * n)
               for k, v in (("stride", given.get("stride", 1)), ("dilation", given.get("dilation", 1)),
                            ("padding", given.get("padding", 0)))}
        groups = given.get("groups", 1)
        return Step(label, lambda shape: conv_layers(w, b, per["stride"], per["padding"], per["dilation"], groups,
                                                     shape, label))
    if g.kind == "batchnorm":
        if "eps" not in kwargs:
            assumed.append(f"{label}: BatchNorm eps is not in a state_dict; torch's default 1e-5 taken")
        layer = BatchNorm(g.keys["running_mean"], g.keys["running_var"], w, b, eps, name=label)
        return Step(label, lambda shape: [layer])
    kind = kwargs.get("kind")
    if kind not in _AFFINE_KINDS:
        raise FormatError(_placement_question([g]))
    if kind == "prelu":
        if b is not None:
            raise FormatError(f"{label!r}: a PReLU has no bias, but the group has one")
        layer = PReLU(w, name=label)
    elif kind == "layer_norm":
        layer = LayerNorm((w.shape[0],), w, b, eps, name=label)
    else:
        count = kwargs.get("groups") if kind == "group_norm" else w.shape[0]
        if count is None:
            raise FormatError(f"{label!r}: a group_norm needs groups=")
        layer = GroupNorm(count, w.shape[0], w, b, eps, name=label)
    if "eps" not in kwargs and kind != "prelu":
        assumed.append(f"{label}: {kind} eps is not in a state_dict; torch's default 1e-5 taken")
    return Step(label, lambda shape: [layer])


def _steps_spec(layers, by_label, unused, groups, ignored, activations, head_activation, nonlinearity, dtype,
                source):
    """spec_from_state_dict for a model given as steps: groups (with attributes, ``"conv1(padding=2)"``) and the
    functional steps forward() takes between them (steps.py)."""
    from .steps import Step, chain_spec, read_step

    steps, assumed, used = [], [], set()
    activations = {k.rstrip("."): v for k, v in dict(activations or {}).items()}
    for item in layers:
        name, kwargs, step = read_step(item, by_label, "parameter group", source)
        if step is not None:
            steps.append(step)
            continue
        g = by_label[name]
        try:
            steps.append(_group_step(g, kwargs, nonlinearity, not steps, assumed))
        except SpecError as exc:
            raise FormatError(f"{source}: {name!r}: {exc}") from None
        except FormatError as exc:
            raise FormatError(f"{source}: {exc}") from None
        used.add(id(g))
        if activations.get(name):
            act = Activation.of(activations.pop(name))
            steps.append(Step(f"{name} activation", lambda shape, act=act: [act]))
    if activations:
        raise FormatError(f"{source}: activations given for {sorted(activations)}, which are not among the model's "
                          f"steps")
    if head_activation:
        act = Activation.of(head_activation)
        steps.append(Step("head activation", lambda shape: [act]))
    shown = _leftover(groups, used, unused, ignored)
    if shown:
        raise FormatError(f"{source}: keys that belong to no step of the model: {shown}. Pass ignore=[...] to leave "
                          f"them out, or add their groups to layers=[...]")
    metadata = {"source": source}
    if assumed:
        metadata["torch.assumed"] = "; ".join(assumed)
    return chain_spec(steps, dtype=dtype, source=source, metadata=metadata)
