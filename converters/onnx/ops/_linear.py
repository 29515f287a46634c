"""An op that is a fixed linear map of each frame (Einsum with a constant operand, Resize by constant scales on the
frame's axes): its matrix is found by applying the op to the frame's basis vectors, and it runs as one Dense over
the flattened frame. Exact for any such op, whatever its mode or equation; bounded in size, since the matrix holds
(frame in) x (frame out) weights where the op itself may touch each value once."""

import numpy as np

from engine import Dense
from engine.spec import Reshape

from ..graph import FRAME_ROLES, Dyn, Unsupported

MAX_WEIGHTS = 1 << 22      # 16 MB of float32: beyond it the Dense would cost far more than the op it stands for


def frame_linear(ctx, x, apply, out_roles=None, what="the op"):
    """The data ``apply`` maps linearly, frame by frame. ``apply(arr)``: the op on an array laid out as ``x`` is
    (ONNX's layout, every non-frame axis of size 1 except one that carries the basis); ``out_roles``: the output's
    roles in its axis order (default: the input's). Returns the output Dyn."""
    if not isinstance(x, Dyn):
        raise Unsupported(f"{what} of a {type(x).__name__}")
    roles = [ctx.resolve(r) for r in x.roles]
    out_roles = roles if out_roles is None else [ctx.resolve(r) for r in out_roles]
    frame_in = [i for i, r in enumerate(roles) if r in FRAME_ROLES]
    if [roles[i] for i in frame_in] not in (["F"], ["C", "F"]) or "D" in roles:
        raise Unsupported(f"{what} of data with axes {roles}: rnnjit maps frames of (features,) or (channels, "
                          f"features)")
    carriers = [i for i, r in enumerate(roles) if r in ("B", "x0", "x1", "T")]
    if not carriers:
        raise Unsupported(f"{what} of data with no batch or time axis")
    carrier = carriers[0]
    if roles[carrier] not in out_roles or sorted(r for r in roles if r not in FRAME_ROLES and r != "1") != \
            sorted(r for r in out_roles if r not in FRAME_ROLES and r != "1"):
        raise Unsupported(f"{what} maps axes {roles} to {out_roles}: rnnjit keeps batch and time as they are")
    sizes = [x.sizes[roles[i]] for i in frame_in]
    n_in = int(np.prod(sizes))
    order = sorted([carrier] + frame_in)
    basis = np.eye(n_in).reshape([n_in] + sizes).transpose(np.argsort([carrier] + frame_in))
    shape = [n_in if i == carrier else (x.sizes[roles[i]] if i in frame_in else 1) for i in range(len(roles))]
    assert [shape[i] for i in order] == list(basis.shape)
    try:
        y = np.asarray(apply(basis.reshape(shape)), np.float64)
    except Unsupported:
        raise
    except Exception as exc:   # noqa: BLE001 - the op cannot run on this layout: say so, with what it said
        raise Unsupported(f"{what} cannot be evaluated on a frame of {tuple(sizes)} ({type(exc).__name__}: "
                          f"{exc})") from None
    if y.ndim != len(out_roles):
        raise Unsupported(f"{what} gives rank {y.ndim}, expected {len(out_roles)}")
    c_out = out_roles.index(roles[carrier])
    frame_out = [i for i, r in enumerate(out_roles) if r in FRAME_ROLES]
    if [out_roles[i] for i in frame_out] not in (["F"], ["C", "F"]) or y.shape[c_out] != n_in or any(
            y.shape[i] != 1 for i in range(y.ndim) if i != c_out and i not in frame_out):
        raise Unsupported(f"{what} changes the batch or time axes (output shape {y.shape} for input {tuple(shape)})")
    out_sizes = [y.shape[i] for i in frame_out]
    n_out = int(np.prod(out_sizes))
    if n_in * n_out > MAX_WEIGHTS:
        raise Unsupported(f"{what} maps a frame of {n_in} values to {n_out}; as one Dense that is {n_in * n_out} "
                          f"weights, over rnnjit's bound of {MAX_WEIGHTS}")
    matrix = np.moveaxis(y, [c_out] + frame_out, list(range(1 + len(frame_out)))).reshape(n_in, n_out)
    if len(frame_in) > 1:
        x = ctx.emit(x, Reshape([n_in]))
    out = ctx.emit(x, Dense(matrix.T.copy()))
    if len(frame_out) > 1:
        out = ctx.emit(out, Reshape(out_sizes))
    new_sizes = dict(x.sizes)
    for i, s in zip(frame_out, out_sizes):
        new_sizes[out_roles[i]] = s
    return Dyn(out_roles, new_sizes, out.edge, x.reversed_time)
