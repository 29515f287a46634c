"""A live torch ``nn.Module`` -> ModelSpec, by walking its children in registration order.

Recurrent modules go through the same parameter reading as a state_dict (state_dict.py); nn.Linear
becomes Dense; activation modules become Activation; Dropout and Identity are no-ops at inference. Any
other module with a computation of its own is refused by name: walking children cannot see a custom
``forward``, so the module order is taken as the data flow, and the docs say so.
"""

from engine import Activation, Dense, ModelSpec
from engine.errors import FormatError, SpecError

from .state_dict import _recurrent_layers, find_groups


def _activation_for(module):
    """The engine Activation equivalent to a torch activation module, or None if it is not one."""
    name = type(module).__name__
    simple = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Softsign": "softsign", "SELU": "selu"}
    if name in simple:
        return Activation(simple[name])
    if name == "LeakyReLU":
        return Activation("leaky_relu", module.negative_slope)
    if name == "ELU":
        return Activation("elu", module.alpha)
    if name == "Hardsigmoid":  # relu6(x + 3) / 6 = clamp(x / 6 + 1/2, 0, 1)
        return Activation("hard_sigmoid", 1.0 / 6.0, 0.5)
    if name == "Softplus":
        if module.beta != 1 or module.threshold != 20:
            raise FormatError(f"Softplus with beta={module.beta}, threshold={module.threshold} is not supported "
                              f"(only the defaults 1 and 20)")
        return Activation("softplus")
    if name in ("Softmax", "LogSoftmax"):
        if module.dim not in (-1, None, 1, 2):
            raise FormatError(f"{name}(dim={module.dim}) is not over the feature axis")
        return Activation("softmax" if name == "Softmax" else "log_softmax")
    return None


def spec_from_module(module, *, dtype="float32"):
    import torch.nn as nn

    layers, refused = [], []

    def visit(mod, path):
        if isinstance(mod, (nn.LSTM, nn.GRU, nn.RNN, nn.LSTMCell, nn.GRUCell, nn.RNNCell)):
            groups, _ = find_groups({k: v.detach().cpu().numpy() for k, v in mod.state_dict().items()})
            layers.extend(_recurrent_layers(groups[0], getattr(mod, "nonlinearity", "tanh")))
        elif isinstance(mod, nn.Linear):
            bias = None if mod.bias is None else mod.bias.detach().cpu().numpy()
            layers.append(Dense(mod.weight.detach().cpu().numpy(), bias, name=path or None))
        elif isinstance(mod, (nn.Dropout, nn.Identity)):
            pass
        elif _activation_for(mod) is not None:
            layers.append(_activation_for(mod))
        elif isinstance(mod, nn.Sequential) or (list(mod.children()) and not list(mod.parameters(recurse=False))):
            for name, child in mod.named_children():
                visit(child, f"{path}.{name}" if path else name)
        else:
            refused.append(f"{path or '(root)'} ({type(mod).__name__})")

    visit(module, "")
    if refused:
        raise FormatError(f"modules rnnjit cannot run: {', '.join(refused)}")
    if not layers:
        raise FormatError(f"{type(module).__name__} holds no layers rnnjit can run")
    try:
        return ModelSpec(layers, dtype=dtype, metadata={"source": f"torch module {type(module).__name__}"})
    except SpecError as exc:
        raise FormatError(f"the module's layers do not chain into one model ({exc})") from None
