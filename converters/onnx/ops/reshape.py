"""ONNX Reshape (5; 14 adds allowzero): merges directions into features, adds or drops unit axes.

The target shape may be constant or symbolic (built from Shape()). Time and batch axes must pass through
unchanged; static axes are grouped by matching products, and only [D, F] -> F (directions side by side,
forward first: the engine's bidirectional output) and unit axes may merge.
"""

from ..graph import Dyn, SymVec, Unsupported, Zeros
from ._common import attrs, set_out


def _target(ctx, node):
    v = ctx.value(node.input[1])
    if isinstance(v, SymVec):
        return list(v.items)
    return [int(x) for x in ctx.const(node, 1, "shape").reshape(-1)]


def _reshape(ctx, node, allowzero):
    v = ctx.value(node.input[0])
    target = _target(ctx, node)
    if isinstance(v, Zeros):
        if any(t == -1 for t in target):
            raise Unsupported("reshaping a zero tensor with -1")
        set_out(ctx, node, Zeros([v.shape[i] if (t == 0 and not allowzero) else t for i, t in enumerate(target)]))
        return
    if not isinstance(v, Dyn):
        raise Unsupported(f"Reshape of a {type(v).__name__}")
    per_call = ctx.per_call()
    dims = []  # (role, size or None)
    for role in v.roles:
        role = ctx.resolve(role)
        size = 1 if role == "1" or (role == "T" and per_call) else v.sizes.get(role) if role in ("F", "D", "C") \
            else None
        dims.append((role, size))
    out_roles, i, merged = [], 0, False
    for j, t in enumerate(target):
        if t == 0 and not allowzero:
            t = dims[j][0] if dims[j][1] is None else dims[j][1]
        if isinstance(t, str):                      # a symbolic dim: the same axis, passed through
            while i < len(dims) and dims[i][1] == 1 and dims[i][0] != t:
                i += 1
            if i >= len(dims) or dims[i][0] != t:
                raise Unsupported(f"Reshape moves or merges the {t} axis")
            out_roles.append(dims[i][0])
            i += 1
            continue
        if i < len(dims) and dims[i][1] is None and ctx.static_size(dims[i][0]) == t:
            out_roles.append(dims[i][0])            # a literal size the input declares for this time/batch axis
            i += 1
            continue
        if t == 1 and per_call and i < len(dims) and dims[i][0] == "T":
            out_roles.append("T")                   # the one frame of a graph that takes one per call
            i += 1
            continue
        if t == 1 and (i >= len(dims) or dims[i][1] != 1):
            out_roles.append("1")
            continue
        group, size = [], 1
        while i < len(dims) and dims[i][1] is not None and (t == -1 or size < t):
            group.append(dims[i][0])
            size *= dims[i][1]
            i += 1
        if (t != -1 and size != t) or not group:
            raise Unsupported(f"Reshape to {target} does not keep time and batch apart from the features")
        kept = [g for g in group if g not in ("1", "T")]
        if kept in (["F"], ["D", "F"]):
            out_roles.append("F")
        elif kept == ["C", "F"]:                    # a (C, F) frame flattened (a Reshape node)
            out_roles.append("F")
            merged = True
        elif kept in ([], ["D"]):
            out_roles.append(kept[0] if kept else "T" if "T" in group else "1")
        else:
            raise Unsupported(f"Reshape merges {group}; only directions into features can merge")
    while i < len(dims) and dims[i][1] == 1:
        i += 1
    if i != len(dims):
        raise Unsupported(f"Reshape to {target} drops axes {[d[0] for d in dims[i:]]}")
    if per_call and "T" not in out_roles and "1" in out_roles and "T" not in [d[0] for d in dims]:
        out_roles[out_roles.index("1")] = "T"     # a one-frame-per-call graph gives its time axis back
    sizes = dict(v.sizes)
    if "D" in v.roles and "D" not in out_roles:
        sizes["F"] = v.sizes["F"] * v.sizes["D"]
        sizes["D"] = 1
    if merged:
        from engine.spec import Reshape

        sizes["F"] = v.sizes["C"] * v.sizes["F"]
        sizes.pop("C")
        v = ctx.emit(v, Reshape([sizes["F"]]))
    set_out(ctx, node, Dyn(out_roles, sizes, v.edge, v.reversed_time))


def convert_reshape_5(ctx, node):
    _reshape(ctx, node, False)


def convert_reshape_14(ctx, node):
    _reshape(ctx, node, bool(attrs(node).get("allowzero", 0)))
