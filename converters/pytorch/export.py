"""ModelSpec -> a torch module with the same weights (the way back from the engine's canonical layout, which is
PyTorch's own), for ``rnnjit bench``'s torch contender. Imports torch only when called.

``torch_equivalent(spec)`` returns ``(module, zero_states)``: the module steps ``x (1, 1, I)`` with its states
carried explicitly, ``module(x, *states) -> (y (1, 1, O), *states)``. A layer torch cannot express (peepholes,
clip, custom gate activations, GRU linear_before_reset=0, ...) raises ``Unsupported`` naming it.
"""

import numpy as np


_TORCH_ACTS = {"relu", "tanh", "sigmoid", "softmax", "log_softmax", "elu", "selu", "leaky_relu", "softsign",
               "softplus", "identity"}


class Unsupported(Exception):
    pass


def torch_equivalent(spec):
    """A torch module ``step(x (1,1,I), states) -> (y (1,1,O), states)`` with the spec's weights."""
    import torch
    from torch import nn

    mods, kinds = [], []
    for i, layer in enumerate(spec.layers):
        kind = type(layer).__name__
        where = f"layer {i} ({kind})"
        if kind in ("LSTM", "GRU", "RNN"):
            if layer.direction != "forward":
                raise Unsupported(f"{where}: {layer.direction}")
            if layer.has_peepholes or layer.clip is not None or getattr(layer, "input_forget", False):
                raise Unsupported(f"{where}: peepholes / clip / input_forget have no torch equivalent")
            if kind == "GRU" and not layer.linear_before_reset:
                raise Unsupported(f"{where}: linear_before_reset=0 has no torch equivalent")
            if layer.initial_h is not None or layer.initial_c is not None:
                raise Unsupported(f"{where}: a stored initial state")
            acts = [a.name for a in layer.activations[0]]
            kw = {}
            if kind == "RNN":
                if acts[0] not in ("tanh", "relu"):
                    raise Unsupported(f"{where}: activation {acts[0]}")
                kw["nonlinearity"] = acts[0]
            elif acts != list(layer.default_activations):
                raise Unsupported(f"{where}: gate activations {acts}")
            if layer.proj_size:
                kw["proj_size"] = layer.proj_size
            m = getattr(nn, kind)(layer.input_size, layer.hidden_size, batch_first=True, **kw)
            w = layer.weights[0]
            with torch.no_grad():
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
                    if hasattr(m, f"{name}_l0"):
                        src = w.get(name)
                        getattr(m, f"{name}_l0").copy_(torch.from_numpy(np.array(src, np.float32))
                                                       if src is not None else 0.0)
            mods.append(m)
        elif kind == "Dense":
            m = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(np.array(layer.weight, np.float32)))
                if layer.bias is not None:
                    m.bias.copy_(torch.from_numpy(np.array(layer.bias, np.float32)))
            mods.append(m)
        elif kind == "Activation":
            if layer.name not in _TORCH_ACTS or (layer.name in ("elu", "leaky_relu") and layer.alpha not in
                                                 (1.0, 0.01)):
                raise Unsupported(f"{where}: activation {layer.name}")
            mods.append(layer.name)
        elif kind == "Normalize":
            mods.append((torch.from_numpy(np.array(layer.mean, np.float32)),
                         torch.from_numpy(np.array(layer.scale, np.float32))))
        else:
            raise Unsupported(f"{where}: no torch equivalent")
        kinds.append(kind)

    fns = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda x: x,
           "softmax": lambda x: torch.softmax(x, -1), "log_softmax": lambda x: torch.log_softmax(x, -1),
           "elu": nn.functional.elu, "selu": torch.selu, "leaky_relu": nn.functional.leaky_relu,
           "softsign": nn.functional.softsign, "softplus": nn.functional.softplus}

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([m for m in mods if isinstance(m, nn.Module)])

        def forward(self, x, *states):
            states = list(states)
            out_states = []
            j = si = 0
            for kind, m in zip(kinds, mods):
                if kind in ("LSTM", "GRU", "RNN"):
                    mod = self.layers[j]
                    j += 1
                    if kind == "LSTM":
                        x, (h, c) = mod(x, (states[si], states[si + 1]))
                        out_states += [h, c]
                        si += 2
                    else:
                        x, h = mod(x, states[si])
                        out_states.append(h)
                        si += 1
                elif kind == "Dense":
                    x = self.layers[j](x)
                    j += 1
                elif kind == "Activation":
                    x = fns[m](x)
                else:
                    x = (x - m[0]) * m[1]
            return (x, *out_states)

    def zero_states():
        out = []
        for layer in spec.layers:
            if type(layer).__name__ in ("LSTM", "GRU", "RNN"):
                out.append(torch.zeros(1, 1, layer.proj_size or layer.hidden_size))
                if type(layer).__name__ == "LSTM":
                    out.append(torch.zeros(1, 1, layer.hidden_size))
        return out

    return Step().eval(), zero_states
