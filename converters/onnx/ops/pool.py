"""ONNX MaxPool (1, 8, 10, 11, 12), AveragePool (1, 7, 10, 11, 19), GlobalAveragePool / GlobalMaxPool (1): along
time -> TemporalPool (one spatial axis, that axis time), over a frame's own axes -> Pool."""


from engine import Pool, TemporalPool
from engine.errors import SpecError

from ..graph import Dyn, Unsupported
from ._channels import channel_layout
from ._common import attrs, reject_attributes, set_out


def _pool(ctx, node, mode):
    reject_attributes(node, {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads",
                             "storage_order", "strides"})
    if len(node.output) > 1 and node.output[1]:
        raise Unsupported("MaxPool's indices output is used")
    a = attrs(node)
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad not in ("NOTSET", "VALID") or a.get("ceil_mode", 0):
        raise Unsupported(f"auto_pad={auto_pad}, ceil_mode={a.get('ceil_mode', 0)} (give explicit pads, floor mode)")
    x = ctx.value(node.input[0])
    roles, spatial = channel_layout(ctx, x, node.op_type)
    kernel = list(a["kernel_shape"])
    n = len(kernel)
    strides = list(a.get("strides", [1] * n))
    dilations = list(a.get("dilations", [1] * n))
    pads = list(a.get("pads", [0] * 2 * n)) if auto_pad == "NOTSET" else [0] * 2 * n
    include = bool(a.get("count_include_pad", 0))
    if len(spatial) != n:
        raise Unsupported(f"a {n}-D kernel over {len(spatial)} spatial axes")
    time = [k for k, i in enumerate(spatial) if roles[i] in ("T", "x0", "x1")]
    if time and n > 1:
        k = time[0]
        if (kernel[k], strides[k], dilations[k], pads[k], pads[k + n]) != (1, 1, 1, 0, 0):
            raise Unsupported("pooling over time and a frame axis at once")
        # a window of one frame along time: the pool is over the frame's axes alone
        spatial = spatial[:k] + spatial[k + 1:]
        kernel, strides, dilations = (v[:k] + v[k + 1:] for v in (kernel, strides, dilations))
        pads = pads[:k] + pads[k + 1:n] + pads[n:n + k] + pads[n + k + 1:]
        n, time = n - 1, []
    try:
        if time:
            ctx.bind(x.roles[spatial[0]], "T")
            layer = TemporalPool(mode, kernel[0], stride=strides[0], padding=(int(pads[0]), int(pads[1])),
                                 dilation=dilations[0], count_include_pad=include)
            set_out(ctx, node, ctx.emit(x, layer))
            return
        if any(d != 1 for d in dilations):
            raise Unsupported("dilated pooling over a frame's axes")
        layer = Pool(mode, kernel, stride=strides, padding=[[int(pads[k]), int(pads[k + n])] for k in range(n)],
                     count_include_pad=include)
        out = ctx.emit(x, layer)
    except SpecError as exc:
        raise Unsupported(str(exc)) from None
    sizes = dict(x.sizes)
    for k, i in enumerate(spatial):
        size = sizes[roles[i]]
        sizes[roles[i]] = (size + pads[k] + pads[k + n] - kernel[k]) // strides[k] + 1
    set_out(ctx, node, Dyn(x.roles, sizes, out.edge, x.reversed_time))


def convert_maxpool_1(ctx, node):
    _pool(ctx, node, "max")


def convert_averagepool_1(ctx, node):
    _pool(ctx, node, "avg")


def _global(ctx, node, mode):
    x = ctx.value(node.input[0])
    roles, spatial = channel_layout(ctx, x, node.op_type)
    if any(roles[i] in ("T", "x0", "x1") for i in spatial):
        raise Unsupported(f"{node.op_type} over time pools the whole sequence, whose end a stream never sees (a "
                          f"running pool over the frames so far is CumulativePool)")
    try:
        out = ctx.emit(x, Pool(mode, global_pool=True))
    except SpecError as exc:
        raise Unsupported(str(exc)) from None
    sizes = dict(x.sizes)
    for i in spatial:
        sizes[roles[i]] = 1
    set_out(ctx, node, Dyn(x.roles, sizes, out.edge, x.reversed_time))


def convert_globalaveragepool_1(ctx, node):
    _global(ctx, node, "avg")


def convert_globalmaxpool_1(ctx, node):
    _global(ctx, node, "max")


