"""ONNX If (1+): a condition known when converting (it depends only on constants and fixed_inputs, e.g. silero's
sample-rate switch) selects a branch, whose nodes are converted in place; an If on the data is refused."""

import numpy as np
import onnx

from ..graph import Unsupported


def convert_if_1(ctx, node):
    cond = ctx.value(node.input[0])
    if not isinstance(cond, np.ndarray):
        raise Unsupported("an If whose condition depends on the data or on a run-time input (a setting input such "
                          "as a sample rate can be fixed: fixed_inputs={name: value})")
    if np.size(cond) != 1:
        raise Unsupported(f"an If condition of shape {np.shape(cond)}")
    name = "then_branch" if bool(np.asarray(cond).reshape(())) else "else_branch"
    branch = next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name), None)
    if branch is None:
        raise Unsupported(f"the If has no {name}")
    ctx.inline(node, branch)
