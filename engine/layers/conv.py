"""TemporalConv1d: a convolution along time (torch.nn.Conv1d over (batch, channels, time)), frames (C_in,) in and
(C_out,) out; weight (C_out, C_in / groups, K) as torch stores it.

The node keeps the last (K - 1) * dilation input frames as its state (``<node>.frames``, oldest first), so a
stream started cold equals the sequence run. Causal (left-padded by (K - 1) * dilation, the default, stride 1) it
emits one output per input at once. Anything else has a ``Timing`` (engine/layers/base.py): a stride s emits one
output per s inputs, less left padding makes the first output wait for more input (torch's ``padding=0`` waits
for K frames), and right padding (torch's symmetric ``padding=p``) makes each output wait p frames for the future
it reads: a stream gives those outputs p frames late, and ``Model.run`` gives the last p of them too (it pads the
end with zeros, as torch does). Such a node also keeps its phase (``<node>.phase``: input frames until its next
output).
"""

import numpy as np

from ..errors import SpecError, StateError
from ..kernels import layout as L
from ..kernels.conv import (F_DEPTHWISE, M_CONV2D_DT, M_CONV2D_KT, conv2d_entry, conv2d_step, conv_entry,
                            conv_step)
from .base import Buffer, Kind, Packed, Slot, Timing, phase_after, timed_count
from .validate import _array, _expect_shape, _positive_int


def time_padding(padding, span, where):
    """(left, right) frames of padding along time from "causal" (left by the span), an int (both sides, torch's)
    or a pair; the left part at most ``span`` = (kernel - 1) * dilation (more would make windows of padding
    alone)."""
    if padding == "causal":
        padding = (span, 0)
    elif isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        padding = (int(padding), int(padding))
    if not (isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 0 for p in padding)):
        raise SpecError(f"{where}: padding must be 'causal', an int (both sides) or (left, right), got {padding!r}")
    if padding[0] > span:
        raise SpecError(f"{where}: left padding {padding[0]} is more than (kernel - 1) * dilation = {span} "
                        f"(windows of padding alone); at most {span}")
    return int(padding[0]), int(padding[1])


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
        self.stride = _positive_int(stride, "stride", where)
        self.padding = time_padding(padding, (K - 1) * self.dilation, where)

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

    @property
    def span(self):
        """The input frames before the current one that an output reads: (K - 1) * dilation."""
        return (self.kernel_size - 1) * self.dilation

    def output_size(self, input_size=None):
        return self.out_channels

    def validate(self, input_size, where):
        if input_size != self.in_channels:
            raise SpecError(f"{where}: TemporalConv1d weight {self.weight.shape} (out, in / groups={self.groups}, "
                            f"kernel) takes {self.in_channels} channels, but its input has {input_size}")
        return self.out_channels

    def __repr__(self):
        extra = "".join(f", {k}={v}" for k, v in (("stride", self.stride), ("dilation", self.dilation),
                                                  ("groups", self.groups)) if v != 1)
        pad = "causal" if self.padding == (self.span, 0) else f"padding={self.padding}"
        return (f"TemporalConv1d({self.in_channels} -> {self.out_channels}, kernel={self.kernel_size}{extra}, "
                f"{pad}{'' if self.bias is not None else ', no bias'})")

    def to_config(self):
        arrays = {"weight": self.weight}
        if self.bias is not None:
            arrays["bias"] = self.bias
        return {"kind": self.kind, "name": self.name, "dilation": self.dilation, "groups": self.groups,
                "padding": list(self.padding), "stride": self.stride}, arrays

    @classmethod
    def from_config(cls, config, arrays):
        return cls(arrays["weight"], arrays.get("bias"), dilation=config["dilation"], groups=config["groups"],
                   padding=tuple(config["padding"]), stride=config.get("stride", 1), name=config.get("name"))


class TemporalConv1dKind(Kind):
    name, code, spec_class = "temporal_conv1d", L.OP_CONV, TemporalConv1d
    takes_epilogue = True
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
        meta[L.M_H], meta[L.M_HO], meta[L.M_D], meta[L.M_STRIDE] = K, layer.dilation, G, layer.stride
        state = layer.span * layer.in_channels + (self.timing(layer) is not None)
        return Packed(layer, self, buf.finish(dtype), meta, layer.in_channels, cout, state)

    def fold_affine(self, layer, scale, shift, out_shape):
        bias = np.zeros(layer.out_channels) if layer.bias is None else np.asarray(layer.bias, np.float64)
        return TemporalConv1d(np.asarray(layer.weight, np.float64) * scale[:, None, None], bias * scale + shift,
                              dilation=layer.dilation, groups=layer.groups, padding=layer.padding,
                              stride=layer.stride, name=layer.name)

    def timing(self, layer):
        if layer.stride == 1 and layer.padding == (layer.span, 0):
            return None
        return Timing(layer.stride, layer.span - layer.padding[0], layer.padding[1])

    def state_slots(self, layer):
        frames = layer.span * layer.in_channels
        timing = self.timing(layer)
        phase = () if timing is None else (Slot("phase", frames, 1, 1, np.full((1, 1), float(timing.warmup))),)
        return (Slot("frames", 0, frames, 1, None),) + phase

    def run(self, p, seq, lengths, states_in, states_out, prefix):
        """All timesteps at once: one grouped product per tap over the sequence (T, B, C_in) with the node's past
        frames before it and its right padding after, at the ticks where an output is due."""
        layer = p.layer
        T, B, cin = seq.shape
        L, pr = layer.span, layer.padding[1]
        G, K, d = layer.groups, layer.kernel_size, layer.dilation
        cout, cin_g, _ = layer.weight.shape
        dt = seq.dtype
        timing = self.timing(layer) or Timing(1, 0, 0)
        ext, phases = timed_input(seq, states_in, prefix, L, pr, timing)   # tick t's window: ext[t + k d]
        W = np.asarray(layer.weight, dt).reshape(G, cout // G, cin_g, K)
        counts = [timed_count(timing, T, int(ph)) for ph in phases]
        y = np.zeros((max(counts, default=0), B, cout), dt)
        for ph in np.unique(phases):
            rows = np.flatnonzero(phases == ph)
            n = timed_count(timing, T, int(ph))
            acc = np.zeros((n, len(rows), G, cout // G), dt)
            for k in range(K):
                start = int(ph) + k * d
                window = ext[start:start + (n - 1) * timing.stride + 1:timing.stride, rows].reshape(n * len(rows), G,
                                                                                                  cin_g)
                prod = np.matmul(window.transpose(1, 0, 2), W[..., k].transpose(0, 2, 1))   # (G, n * rows, out)
                acc += prod.transpose(1, 0, 2).reshape(n, len(rows), G, cout // G)
            y[:n, rows] = acc.reshape(n, len(rows), cout)
        if layer.bias is not None:
            y += np.asarray(layer.bias, dt)
        timed_output(states_out, prefix, ext, lengths, phases, L, timing, self.timing(layer) is not None)
        return y


def _phases(value, timing, where):
    """Per sequence, a node's phase from an initial state (1, B, 1): whole numbers in [0, max(stride, warmup + 1))."""
    ph = np.asarray(value).reshape(-1)
    top = max(timing.stride, timing.warmup + 1)
    if not np.all((ph == np.round(ph)) & (ph >= 0) & (ph < top)):
        raise StateError(f"{where}: a phase is a whole number of input frames in [0, {top}), got {ph.tolist()}")
    return ph.astype(np.int64)


def timed_input(seq, states_in, prefix, span, tail, timing):
    """What a node keeping its last ``span`` input frames runs a whole sequence (T, B, size) over: ``ext``, the past
    frames (``<prefix>.frames`` from ``states_in``, else zeros), the sequence and ``tail`` frames of zero padding
    (tick t's window ends at ext[t + span]); and each sequence's phase (``<prefix>.phase``, else the warmup)."""
    T, B, size = seq.shape
    dt = seq.dtype
    name = f"{prefix}.frames"
    if name in states_in:   # (1, B, span * size), oldest frame first
        past = states_in[name][0].reshape(B, span, size).transpose(1, 0, 2).astype(dt)
    else:
        past = np.zeros((span, B, size), dt)
    phases = np.full(B, timing.warmup, np.int64)
    if f"{prefix}.phase" in states_in:
        phases = _phases(states_in[f"{prefix}.phase"], timing, where=f"initial_state {prefix + '.phase'!r}")
    return np.concatenate([past, seq, np.zeros((tail, B, size), dt)]), phases


def timed_output(states_out, prefix, ext, lengths, phases, span, timing, has_phase):
    """The final state of ``timed_input``'s node after each sequence's own length: the ``span`` input frames
    before its end, and (a node with a Timing) its phase there."""
    B, size, dt = ext.shape[1], ext.shape[2], ext.dtype
    ends = np.asarray(lengths)
    final = np.stack([ext[e:e + span, b] for b, e in enumerate(ends)]) if span else np.zeros((B, 0, size), dt)
    states_out[f"{prefix}.frames"] = np.ascontiguousarray(final.reshape(1, B, span * size))
    if has_phase:
        states_out[f"{prefix}.phase"] = np.array([phase_after(timing, int(e), int(ph))
                                                  for e, ph in zip(ends, phases)], dt).reshape(1, B, 1)


KIND = TemporalConv1dKind()


class TemporalConv2d:
    """A 2-D convolution over time and one frame axis (torch's Conv2d over (batch, channels, time, frequency), as
    spectrogram models run it): frames (C_in, F) in, (C_out, F') out; weight (C_out, C_in / groups, K_t, K_f) as
    torch stores it. ``stride``, ``dilation``: (time, frequency); ``padding``: (time, frequency), the time part as
    TemporalConv1d's ("causal", an int for both sides, or (left, right)) and the frequency part an int or
    (before, after). Along time it is TemporalConv1d (state, stride, timing); along frequency torch's Conv1d per
    frame. A model whose Conv2d has time last (batch, channels, frequency, time) passes the weight with its last two
    axes swapped."""

    kind = "temporal_conv2d"
    input_size = None

    def __init__(self, weight, bias=None, *, stride=1, padding=("causal", 0), dilation=1, groups=1, name=None):
        where = "TemporalConv2d" + (f" {name!r}" if name else "")
        self.name = name
        self.weight = _array(weight, "weight", where, 4)
        self.bias = _array(bias, "bias", where, 1)
        cout = self.weight.shape[0]
        self.groups = _positive_int(groups, "groups", where)
        if cout % self.groups:
            raise SpecError(f"{where}: groups={self.groups} must divide the {cout} output channels")
        _expect_shape(self.bias, (cout,), "bias (out_channels,)", where)
        pair = lambda v, what: tuple(_positive_int(x, what, where) for x in  # noqa: E731
                                     ((v, v) if isinstance(v, (int, np.integer)) else tuple(v)))
        self.stride, self.dilation = pair(stride, "stride"), pair(dilation, "dilation")
        if len(self.stride) != 2 or len(self.dilation) != 2:
            raise SpecError(f"{where}: stride and dilation are an int or (time, frequency), got {stride!r}, "
                            f"{dilation!r}")
        if not (isinstance(padding, (tuple, list)) and len(padding) == 2):
            raise SpecError(f"{where}: padding is (time, frequency), got {padding!r}")
        # the time axis exactly as TemporalConv1d takes it
        self._time = TemporalConv1d(np.zeros((1, 1, self.weight.shape[2])), stride=self.stride[0],
                                    dilation=self.dilation[0], padding=padding[0], name=name)
        pf = padding[1]
        pf = (pf, pf) if isinstance(pf, (int, np.integer)) and not isinstance(pf, bool) else tuple(pf)
        if len(pf) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in pf):
            raise SpecError(f"{where}: the frequency padding is an int or (before, after), got {padding[1]!r}")
        self.padding = (self._time.padding, (int(pf[0]), int(pf[1])))

    @property
    def in_channels(self):
        return self.weight.shape[1] * self.groups

    @property
    def out_channels(self):
        return self.weight.shape[0]

    @property
    def span(self):
        return self._time.span

    def frame_conv(self, kt=0):
        """The convolution along frequency that time tap ``kt`` applies to its frame (a FrameConv)."""
        from .framewise import FrameConv

        return FrameConv(self.weight[:, :, kt, :], stride=self.stride[1], padding=[list(self.padding[1])],
                         dilation=self.dilation[1], groups=self.groups)

    def __repr__(self):
        return (f"TemporalConv2d({self.in_channels} -> {self.out_channels}, kernel={self.weight.shape[2:]}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, groups={self.groups})")

    def to_config(self):
        arrays = {"weight": self.weight}
        if self.bias is not None:
            arrays["bias"] = self.bias
        return {"kind": self.kind, "name": self.name, "stride": list(self.stride), "dilation": list(self.dilation),
                "padding": [list(p) for p in self.padding], "groups": self.groups}, arrays

    @classmethod
    def from_config(cls, config, arrays):
        return cls(arrays["weight"], arrays.get("bias"), stride=tuple(config["stride"]),
                   dilation=tuple(config["dilation"]), padding=tuple(tuple(p) for p in config["padding"]),
                   groups=config["groups"], name=config.get("name"))


class TemporalConv2dKind(Kind):
    name, code, spec_class = "temporal_conv2d", L.OP_CONV2D, TemporalConv2d
    takes_epilogue = True
    step, entry = staticmethod(conv2d_step), staticmethod(conv2d_entry)

    def _index(self, layer, shape, where="node"):
        from .framewise import FRAME_CONV

        return FRAME_CONV._index(layer.frame_conv(), shape, where)

    def infer(self, layer, inputs, where):
        (edge, shape, dtype), = inputs
        if dtype != "float" or len(shape) != 2 or shape[0] != layer.in_channels:
            raise SpecError(f"{where}: a TemporalConv2d reads float frames of ({layer.in_channels} channels, "
                            f"frequency), but edge {edge!r} carries {dtype} frames of shape {tuple(shape)}")
        outs, _ = self._index(layer, shape, f"{where} on edge {edge!r}")
        return (layer.out_channels,) + tuple(outs), "float"

    def pack_node(self, layer, shapes, dtype):
        from .framewise import FRAME_CONV

        (shape,) = shapes
        outs, idx = self._index(layer, shape)
        Kt = layer.weight.shape[2]
        buf = Buffer()
        meta = np.zeros(L.META_LEN + idx.size, dtype=np.int64)
        w = np.stack([FRAME_CONV._gather_weight(layer.frame_conv(kt)) for kt in range(Kt)])   # (K_t, C_out, window)
        meta[L.M_DIR + L.D_W] = buf.add(w)
        meta[L.M_DIR + L.D_BIAS] = buf.add(layer.bias) if layer.bias is not None else -1
        meta[L.M_H], meta[L.M_HO], meta[L.M_D] = idx.shape[1], int(np.prod(outs)), layer.groups
        meta[L.M_STRIDE], meta[M_CONV2D_KT], meta[M_CONV2D_DT] = layer.stride[0], Kt, layer.dilation[0]
        meta[L.META_LEN:] = idx.ravel()
        size = int(np.prod(shape))
        state = layer.span * size + (self.timing(layer) is not None)
        return Packed(layer, self, buf.finish(dtype), meta, size, layer.out_channels * int(np.prod(outs)), state)

    def timing(self, layer):
        return KIND.timing(layer._time)

    def slots(self, p):
        layer = p.layer
        frames = layer.span * p.in_size
        timing = self.timing(layer)
        phase = () if timing is None else (Slot("phase", frames, 1, 1, np.full((1, 1), float(timing.warmup))),)
        return (Slot("frames", 0, frames, 1, None),) + phase

    def run(self, p, seq, lengths, states_in, states_out, prefix):
        """Whole sequences (T, B, C_in * F): as TemporalConv1d's run along time, each tap's frames gathered
        through the frequency convolution's index map."""
        layer = p.layer
        T, B, size = seq.shape
        L_, pr = layer.span, layer.padding[0][1]
        Kt, d = layer.weight.shape[2], layer.dilation[0]
        G = layer.groups
        cout = layer.out_channels
        dt = seq.dtype
        timing = self.timing(layer) or Timing(1, 0, 0)
        idx = p.meta[L.META_LEN:].reshape(-1, int(p.meta[L.M_H]))                    # (G * npos, window)
        npos, window = int(p.meta[L.M_HO]), idx.shape[1]
        # (G, Kt * window, C_out / G): every time tap's weights stacked, so one BLAS product per group takes the
        # whole receptive field (im2col across the taps too)
        key = ("run", np.dtype(dt).name)
        if key not in p._plain:       # made once per packed node, as Packed.matrix does
            W = p.view(0, L.D_W, (Kt, cout, window)).astype(dt).reshape(Kt, G, cout // G, window)
            p._plain[key] = np.ascontiguousarray(W.transpose(1, 0, 3, 2).reshape(G, Kt * window, cout // G))
        W = p._plain[key]
        ext, phases = timed_input(seq, states_in, prefix, L_, pr, timing)
        flat, valid = np.where(idx >= 0, idx, 0).ravel(), (idx >= 0).reshape(G, npos, window)
        pad = not valid.all()
        whole = flat.size == size and np.array_equal(flat, np.arange(size))    # each tap reads whole frames
        counts = [timed_count(timing, T, int(ph)) for ph in phases]
        y = np.zeros((max(counts, default=0), B, cout * npos), dt)
        for ph in np.unique(phases):
            rows = np.flatnonzero(phases == ph)
            n = timed_count(timing, T, int(ph))
            cols = np.empty((G, n * len(rows) * npos, Kt, window), dt)
            for k in range(Kt):
                start = int(ph) + k * d
                frames = ext[start:start + (n - 1) * timing.stride + 1:timing.stride, rows].reshape(-1, size)
                taps = (frames if whole else frames[:, flat]).reshape(-1, G, npos, window)   # (n * rows, G, npos, w)
                if pad:
                    taps *= valid
                cols[:, :, k] = taps.transpose(1, 0, 2, 3).reshape(G, -1, window)
            cols = cols.reshape(G, -1, Kt * window)
            prod = (cols[0] @ W[0])[None] if G == 1 else np.matmul(cols, W)           # (G, n * rows * npos, out)
            y[:n, rows] = prod.reshape(G, n, len(rows), npos, cout // G).transpose(1, 2, 0, 4, 3).reshape(
                n, len(rows), cout * npos)
        if layer.bias is not None:
            y += np.repeat(np.asarray(layer.bias, dt), npos)
        timed_output(states_out, prefix, ext, lengths, phases, L_, timing, self.timing(layer) is not None)
        return y


CONV2D = TemporalConv2dKind()
