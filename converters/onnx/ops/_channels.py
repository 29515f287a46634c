"""Where ONNX's channel axis (axis 1 of (N, C, ...)) and spatial axes sit among the data's roles, for the ops that
work per channel or over the spatial axes (normalizations, pooling, PRelu)."""

from ..graph import FRAME_ROLES, Dyn, Unsupported


def channel_layout(ctx, x, op):
    """(roles, spatial): the data's resolved roles, with ONNX's axis 1 the frame's first axis (the channels), and
    the indices of the spatial axes (2...), each "T" (time) or a frame role."""
    if not isinstance(x, Dyn):
        raise Unsupported(f"{op} of a {type(x).__name__}")
    roles = [ctx.resolve(r) for r in x.roles]
    frame = [r for r in roles if r in FRAME_ROLES]
    if len(roles) < 2 or not frame or roles[1] != frame[0]:
        raise Unsupported(f"{op} over axis 1 ({roles[1] if len(roles) > 1 else '?'}) of data with axes {roles}: "
                          f"rnnjit needs ONNX's channel axis to be the frame's first axis")
    if roles[0] not in ("B", "x0", "x1"):
        raise Unsupported(f"{op}: axis 0 holds {roles[0]}, not the batch")
    return roles, list(range(2, len(roles)))
