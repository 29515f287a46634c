"""Test helpers: ModelSpecs built directly from torch modules' parameters, random models, seeds.

``spec_from_torch`` reads nn.LSTM/GRU/RNN parameters by name. PyTorch's layout IS the engine's canonical
layout (gates i,f,g,o / r,z,n; weight_ih (G*H, I)), so no permutation happens here; the checkpoint
converter (converters/) is a separate piece with its own round-trip tests.
"""


import numpy as np

import engine


def _np(t):
    return t.detach().cpu().double().numpy()


def recurrent_layers_from_torch(module):
    """One engine recurrent layer per torch layer of nn.LSTM / nn.GRU / nn.RNN."""
    import torch

    if isinstance(module, torch.nn.LSTM):
        cls, extra = engine.LSTM, {"proj_size": module.proj_size}
    elif isinstance(module, torch.nn.GRU):
        cls, extra = engine.GRU, {}
    elif isinstance(module, torch.nn.RNN):
        cls = engine.RNN
        extra = {"activations": [module.nonlinearity]}
    else:
        raise TypeError(type(module))
    D = 2 if module.bidirectional else 1
    Ho = module.proj_size if getattr(module, "proj_size", 0) else module.hidden_size
    layers = []
    for layer in range(module.num_layers):
        weights = []
        for sfx in ["", "_reverse"][:D]:
            w = {"weight_ih": _np(getattr(module, f"weight_ih_l{layer}{sfx}")),
                 "weight_hh": _np(getattr(module, f"weight_hh_l{layer}{sfx}"))}
            if module.bias:
                w["bias_ih"] = _np(getattr(module, f"bias_ih_l{layer}{sfx}"))
                w["bias_hh"] = _np(getattr(module, f"bias_hh_l{layer}{sfx}"))
            if extra.get("proj_size"):
                w["weight_hr"] = _np(getattr(module, f"weight_hr_l{layer}{sfx}"))
            weights.append(w)
        in_size = module.input_size if layer == 0 else D * Ho
        layers.append(cls(in_size, module.hidden_size, weights,
                          direction="bidirectional" if D == 2 else "forward", **extra))
    return layers


def spec_from_torch(module, dtype="float32"):
    return engine.ModelSpec(recurrent_layers_from_torch(module), dtype=dtype)


def torch_state_to_engine(h0, c0, num_layers, D):
    """torch (L*D, B, H) initial states -> Model.run initial_state dict of (D, B, H) per layer."""
    state = {}
    for layer in range(num_layers):
        state[f"layers.{layer}.h"] = h0[layer * D:(layer + 1) * D]
        if c0 is not None:
            state[f"layers.{layer}.c"] = c0[layer * D:(layer + 1) * D]
    return state


def cap_gate_norms(weight_hh, H, max_norm):
    """Scale each gate's (H, Ho) block of a recurrent matrix (G * H, Ho), in place, down to spectral norm
    ``max_norm`` where it is above it, so the recurrence contracts."""
    for g in range(weight_hh.shape[0] // H):
        block = weight_hh[g * H:(g + 1) * H]
        norm = np.linalg.norm(block.astype(np.float64), 2)
        if norm > max_norm:
            block *= max_norm / norm


def random_weights(rng, cell, I, H, *, Ho=None, peephole=False, scale=0.5, max_norm=0.9):
    """Random canonical weights for one direction of a recurrent layer (non-trivial, incl. biases).

    Each gate's recurrent block (H, Ho) is scaled down to spectral norm ``max_norm`` if it is above it, so
    the recurrence contracts. uniform(-0.5, 0.5) alone draws blocks of norm ~2 at H=16: a ReLU RNN on such
    weights grows to |h| ~ 1e20 in 300 steps, and then float32 rounding, amplified every step, is all a
    comparison sees. ``max_norm=None`` keeps the raw draw.
    """
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    Ho = Ho or H
    weight_ih = rng.uniform(-scale, scale, (G * H, I))
    weight_hh = rng.uniform(-scale, scale, (G * H, Ho))
    if max_norm is not None:
        cap_gate_norms(weight_hh, H, max_norm)
    w = {"weight_ih": weight_ih,
         "weight_hh": weight_hh,
         "bias_ih": rng.uniform(-scale, scale, G * H),
         "bias_hh": rng.uniform(-scale, scale, G * H)}
    if Ho != H:
        w["weight_hr"] = rng.uniform(-scale, scale, (Ho, H))
    if peephole:
        w["peephole"] = rng.uniform(-scale, scale, (3, H))
    return w
