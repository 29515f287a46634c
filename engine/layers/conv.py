"""TemporalConv1d: a convolution along time (torch.nn.Conv1d over (batch, channels, time)), frames (C_in,) in and
(C_out,) out; weight (C_out, C_in / groups, K) as torch stores it.

Causal (left-padded by (K - 1) * dilation, the default) it streams: the node keeps the last (K - 1) * dilation
input frames as its state (``<node>.frames``, oldest first), so a stream started cold equals the sequence run.
Padded on both sides (``padding=p``, torch's symmetric padding, or ``(left, right)``) it reads ``right`` frames
of the future and runs in ``Model.run`` only. Either way the padding must keep one output per input
(left + right = (K - 1) * dilation); stride along time changes the output rate and is refused for now
(docs/architecture.md, streaming semantics).
"""

import numpy as np

from ..errors import SpecError
from ..kernels import layout as L
from ..kernels.conv import F_DEPTHWISE, conv_entry, conv_step
from .base import Buffer, Kind, Packed, Slot
from .validate import _array, _expect_shape, _positive_int


class TemporalConv1d:
    """y_t = bias + sum_k weight[:, :, k] x_{t - (K - 1 - k) * dilation} (grouped), causal by default."""

    kind = "temporal_conv1d"

    def __init__(self, weight, bias=None, *, dilation=1, groups=1, padding="causal", stride=1, name=None):
        where = "TemporalConv1d" + (f" {name!r}" if name else "")
        self.name = name
        self.weight = _array(weight, "weight", where, 3)
        self.bias = _array(bias, "bias", where, 1)
        cout, cin_g, K = self.weight.shape
        self.dilation = _positive_int(dilation, "dilation", where)
        self.groups = _positive_int(groups, "groups", where)
        if cout % self.groups:
            raise SpecError(f"{where}: groups={self.groups} must divide the {cout} output channels")
        _expect_shape(self.bias, (cout,), "bias (out_channels,)", where)
        if _positive_int(stride, "stride", where) != 1:
            raise SpecError(f"{where}: stride={stride} along time changes the output rate (one output per {stride} "
                            f"inputs), which rnnjit does not run yet; stride 1 only")
        span = (K - 1) * self.dilation
        if padding == "causal":
            padding = (span, 0)
        elif isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
            padding = (int(padding), int(padding))
        if not (isinstance(padding, (tuple, list)) and len(padding) == 2
                and all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 0 for p in padding)):
            raise SpecError(f"{where}: padding must be 'causal', an int (both sides) or (left, right), got {padding!r}")
        self.padding = (int(padding[0]), int(padding[1]))
        if sum(self.padding) != span:
            raise SpecError(f"{where}: padding {self.padding} must add up to (kernel - 1) * dilation = {span} so that "
                            f"each input frame gives one output frame (other paddings change the sequence length)")

    @property
    def in_channels(self):
        return self.weight.shape[1] * self.groups

    input_size = in_channels

    @property
    def out_channels(self):
        return self.weight.shape[0]

    @property
    def kernel_size(self):
        return self.weight.shape[2]

    @property
    def causal(self):
        return self.padding[1] == 0

    def output_size(self, input_size=None):
        return self.out_channels

    def validate(self, input_size, where):
        if input_size != self.in_channels:
            raise SpecError(f"{where}: TemporalConv1d weight {self.weight.shape} (out, in / groups={self.groups}, "
                            f"kernel) takes {self.in_channels} channels, but its input has {input_size}")
        return self.out_channels

    def __repr__(self):
        extra = "".join(f", {k}={v}" for k, v in (("dilation", self.dilation), ("groups", self.groups)) if v != 1)
        pad = "causal" if self.causal else f"padding={self.padding}"
        return (f"TemporalConv1d({self.in_channels} -> {self.out_channels}, kernel={self.kernel_size}{extra}, "
                f"{pad}{'' if self.bias is not None else ', no bias'})")

    def to_config(self):
        arrays = {"weight": self.weight}
        if self.bias is not None:
            arrays["bias"] = self.bias
        return {"kind": self.kind, "name": self.name, "dilation": self.dilation, "groups": self.groups,
                "padding": list(self.padding)}, arrays

    @classmethod
    def from_config(cls, config, arrays):
        return cls(arrays["weight"], arrays.get("bias"), dilation=config["dilation"], groups=config["groups"],
                   padding=tuple(config["padding"]), name=config.get("name"))


class TemporalConv1dKind(Kind):
    name, code, spec_class = "temporal_conv1d", L.OP_CONV, TemporalConv1d
    step, entry = staticmethod(conv_step), staticmethod(conv_entry)

    def pack(self, layer, in_size, dtype):
        G, K = layer.groups, layer.kernel_size
        cout, cin_g, _ = layer.weight.shape
        buf = Buffer()
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        if cin_g == 1 and G > 1:   # depthwise: (C_out, 1, K) -> (K, C_out), every output in the innermost loop
            meta[L.M_DIR + L.D_W] = buf.add(np.asarray(layer.weight, np.float64)[:, 0, :].T)
            meta[L.M_FLAGS] = F_DEPTHWISE
        else:   # (C_out, C_in/G, K) -> (G, K, C_in/G, C_out/G): a group's outputs contiguous in the innermost loop
            w = np.asarray(layer.weight, np.float64).reshape(G, cout // G, cin_g, K).transpose(0, 3, 2, 1)
            meta[L.M_DIR + L.D_W] = buf.add(w)
        meta[L.M_DIR + L.D_BIAS] = buf.add(layer.bias) if layer.bias is not None else -1
        meta[L.M_H], meta[L.M_HO], meta[L.M_D] = K, layer.dilation, G
        state = layer.padding[0] * layer.in_channels
        return Packed(layer, self, buf.finish(dtype), meta, layer.in_channels, cout, state)

    def fold_affine(self, layer, scale, shift, out_shape):
        bias = np.zeros(layer.out_channels) if layer.bias is None else np.asarray(layer.bias, np.float64)
        return TemporalConv1d(np.asarray(layer.weight, np.float64) * scale[:, None, None], bias * scale + shift,
                              dilation=layer.dilation, groups=layer.groups, padding=layer.padding, name=layer.name)

    def state_slots(self, layer):
        return (Slot("frames", 0, layer.padding[0] * layer.in_channels, 1, None),)

    def reads_future(self, layer):
        return None if layer.causal else f"padding={layer.padding} reads {layer.padding[1]} frames ahead"

    def run(self, p, seq, lengths, states_in, states_out, prefix):
        """All timesteps at once: one grouped product per tap over the padded sequence (T, B, C_in)."""
        layer = p.layer
        T, B, cin = seq.shape
        left, right = layer.padding
        G, K, d = layer.groups, layer.kernel_size, layer.dilation
        cout, cin_g, _ = layer.weight.shape
        dt = seq.dtype
        name = f"{prefix}.frames"
        if name in states_in:   # (1, B, left * C_in), oldest frame first
            past = states_in[name][0].reshape(B, left, cin).transpose(1, 0, 2)
        else:
            past = np.zeros((left, B, cin), dt)
        padded = np.concatenate([past.astype(dt), seq, np.zeros((right, B, cin), dt)])
        W = np.asarray(layer.weight, dt).reshape(G, cout // G, cin_g, K)
        y = np.zeros((T, B, G, cout // G), dt)
        for k in range(K):
            window = padded[k * d:k * d + T].reshape(T, B, G, cin_g)
            y += np.einsum("tbgi,goi->tbgo", window, W[..., k])
        y = y.reshape(T, B, cout)
        if layer.bias is not None:
            y += np.asarray(layer.bias, dt)
        # the final state: the `left` input frames before each sequence's end
        ends = np.asarray(lengths)
        final = np.stack([padded[e:e + left, b] for b, e in enumerate(ends)]) if left else np.zeros((B, 0, cin), dt)
        states_out[name] = np.ascontiguousarray(final.reshape(1, B, left * cin))
        return y


KIND = TemporalConv1dKind()
