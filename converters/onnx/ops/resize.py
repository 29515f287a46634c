"""ONNX Resize (10, 11, 13, 18, 19) and Upsample (7, 9) by constant scales on the frame's axes: a linear map of each
frame (_linear.py) whose matrix is ONNX's own reference implementation (onnx.reference) applied to the frame's
basis, so every mode, coordinate transformation and rounding rule is the standard's. Scales on batch or time (a
change of frame rate) and Resize to ``sizes`` are refused."""

import numpy as np

from ..graph import Dyn, Unsupported
from ._common import set_out
from ._linear import frame_linear


def _scales(ctx, node):
    if node.op_type == "Upsample" and ctx.opset < 9:
        from ._common import attrs

        return np.asarray(attrs(node).get("scales"), np.float64)
    index = 1 if node.op_type == "Upsample" or ctx.opset < 11 else 2
    scales = ctx.const(node, index, "scales")
    if (scales is None or np.size(scales) == 0) and node.op_type == "Resize" and ctx.opset >= 11:
        raise Unsupported("Resize to sizes: rnnjit takes constant scales")
    return np.asarray(scales, np.float64).reshape(-1)


def convert_resize(ctx, node):
    x = ctx.value(node.input[0])
    if not isinstance(x, Dyn):
        raise Unsupported(f"{node.op_type} of a {type(x).__name__}")
    scales = _scales(ctx, node)
    roles = [ctx.resolve(r) for r in x.roles]
    if scales is None or len(scales) != len(roles):
        raise Unsupported(f"{node.op_type} scales {scales} for data of rank {len(roles)}")
    moved = [r for r, s in zip(roles, scales) if s != 1 and r not in ("C", "F")]
    if moved:
        raise Unsupported(f"{node.op_type} scales axes {moved} (scales {scales.tolist()}): resizing batch or time "
                          f"changes the frame rate; rnnjit resizes frame axes only")
    feeds = {node.input[0]: None}
    for k, name in enumerate(node.input[1:], 1):
        if name:
            feeds[name] = ctx.const(node, k, name)

    def apply(arr):
        from onnx.reference import ReferenceEvaluator

        feeds[node.input[0]] = arr.astype(np.float32)
        import onnx

        graph_inputs = [onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(
            np.asarray(v).dtype), None) for n, v in feeds.items()]
        out = onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None)
        model = onnx.helper.make_model(onnx.helper.make_graph([node], "resize", graph_inputs, [out]),
                                       opset_imports=[onnx.helper.make_opsetid("", ctx.opset)])
        return ReferenceEvaluator(model).run(None, {n: np.asarray(v) for n, v in feeds.items()})[0]
    set_out(ctx, node, frame_linear(ctx, x, apply, what=node.op_type))
