"""TemporalPool: max or average pooling along time (torch's MaxPool1d / AvgPool1d over (batch, channels, time)),
elementwise over frames of any shape: output frame j pools input frames j * stride + k * dilation - left for k in
range(kernel), over the input padded by (left, right) frames.

Like a strided temporal convolution it has a ``Timing`` (engine/layers/base.py): one output per ``stride`` inputs
(the default stride is the kernel, as in torch), the first one when its window is full, and right padding makes
each output wait for the future it reads (``Model.run`` gives the outputs over the padded end; a stream gives them
``right`` frames late and not the last ones). Padding is not a value: max ignores it (torch pads with -inf) and
average counts it as zeros (``count_include_pad=True``, torch's default) or leaves it out of the divisor.

State per stream: the last (kernel - 1) * dilation input frames (``<node>.frames``, oldest first), how many of
them are real input rather than the start's padding (``<node>.seen``), and the phase (``<node>.phase``, when the
node has a Timing).
"""

import numpy as np

from ..errors import SpecError
from ..kernels import layout as L
from ..kernels.temporal_pool import (POOL_AVG, POOL_AVG_VALID, POOL_MAX, cumulative_entry, cumulative_step, tpool_entry,
                                     tpool_step)
from .base import Kind, Packed, Slot, Timing, timed_count
from .conv import time_padding, timed_input, timed_output
from .validate import _positive_int


class TemporalPool:
    """Max or average pooling along time: ``TemporalPool("max", kernel, stride=None, padding=0, dilation=1,
    count_include_pad=True)``; padding an int (both sides, torch's), (left, right) or "causal" (left by
    (kernel - 1) * dilation: one output per input at stride 1, due at once)."""

    kind = "temporal_pool"
    input_size = None
    MODES = ("max", "avg")

    def __init__(self, mode, kernel, stride=None, padding=0, dilation=1, count_include_pad=True, name=None):
        where = "TemporalPool" + (f" {name!r}" if name else "")
        if mode not in self.MODES:
            raise SpecError(f"{where}: mode must be one of {self.MODES}, got {mode!r}")
        self.mode, self.name = mode, name
        self.kernel = _positive_int(kernel, "kernel", where)
        self.stride = self.kernel if stride is None else _positive_int(stride, "stride", where)
        self.dilation = _positive_int(dilation, "dilation", where)
        if mode == "avg" and self.dilation != 1:
            raise SpecError(f"{where}: average pooling takes no dilation (torch's AvgPool1d has none), got "
                            f"{dilation}")
        self.padding = time_padding(padding, self.span, where)
        self.count_include_pad = bool(count_include_pad)

    @property
    def span(self):
        return (self.kernel - 1) * self.dilation

    def output_size(self, input_size=None):
        """Frames keep their shape (a 1-D frame its width)."""
        return input_size

    def __repr__(self):
        extra = "".join(f", {k}={v}" for k, v in (("dilation", self.dilation),) if v != 1)
        if self.mode == "avg" and not self.count_include_pad:
            extra += ", count_include_pad=False"
        return (f"TemporalPool({self.mode!r}, kernel={self.kernel}, stride={self.stride}, "
                f"padding={self.padding}{extra})")

    def to_config(self):
        return {"kind": self.kind, "name": self.name, "mode": self.mode, "kernel": self.kernel,
                "stride": self.stride, "padding": list(self.padding), "dilation": self.dilation,
                "count_include_pad": self.count_include_pad}, {}

    @classmethod
    def from_config(cls, config, arrays):
        return cls(config["mode"], config["kernel"], config["stride"], tuple(config["padding"]),
                   config["dilation"], config["count_include_pad"], name=config.get("name"))


class TemporalPoolKind(Kind):
    name, code, spec_class = "temporal_pool", L.OP_TEMPORAL_POOL, TemporalPool
    step, entry = staticmethod(tpool_step), staticmethod(tpool_entry)

    def infer(self, layer, inputs, where):
        (edge, shape, dtype), = inputs
        if dtype != "float":
            raise SpecError(f"{where}: a TemporalPool reads float frames, but edge {edge!r} carries {dtype} ids")
        return tuple(shape), "float"

    def pack_node(self, layer, shapes, dtype):
        (shape,) = shapes
        F = int(np.prod(shape))
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        meta[L.M_CODE] = POOL_MAX if layer.mode == "max" else (POOL_AVG if layer.count_include_pad else POOL_AVG_VALID)
        meta[L.M_H], meta[L.M_HO], meta[L.M_STRIDE] = layer.kernel, layer.dilation, layer.stride
        state = layer.span * F + 1 + (self.timing(layer) is not None)
        return Packed(layer, self, np.zeros(1, dtype=dtype), meta, F, F, state)

    def timing(self, layer):
        if layer.stride == 1 and layer.padding == (layer.span, 0):
            return None
        return Timing(layer.stride, layer.span - layer.padding[0], layer.padding[1])

    def slots(self, p):
        layer = p.layer
        frames = layer.span * p.in_size
        timing = self.timing(layer)
        phase = () if timing is None else (Slot("phase", frames + 1, 1, 1, np.full((1, 1), float(timing.warmup))),)
        return (Slot("frames", 0, frames, 1, None), Slot("seen", frames, 1, 1, None)) + phase

    def run(self, p, seq, lengths, states_in, states_out, prefix):
        """Whole sequences (T, B, F): the node's past frames, the sequence and its right padding, pooled at the
        ticks where an output is due; padding (before the first real frame, after the end) is masked out."""
        layer = p.layer
        T, B, F = seq.shape
        Lf, pr, K, d = layer.span, layer.padding[1], layer.kernel, layer.dilation
        dt = seq.dtype
        timing = self.timing(layer) or Timing(1, 0, 0)
        seen = np.zeros(B, np.int64)
        if f"{prefix}.seen" in states_in:
            seen = np.clip(np.asarray(states_in[f"{prefix}.seen"]).reshape(B), 0, Lf).astype(np.int64)
        ext, phases = timed_input(seq, states_in, prefix, Lf, pr, timing)
        # which frames of ext are real input: the last `seen` past frames and the sequence
        idx = np.arange(Lf + T + pr)[:, None]
        real = (idx >= Lf - seen[None, :]) & (idx < Lf + T)
        counts = [timed_count(timing, T, int(ph)) for ph in phases]
        y = np.zeros((max(counts, default=0), B, F), dt)
        for ph in np.unique(phases):
            rows = np.flatnonzero(phases == ph)
            n = timed_count(timing, T, int(ph))
            taps = [int(ph) + k * d + np.arange(n) * timing.stride for k in range(K)]
            win = np.stack([ext[t][:, rows] for t in taps])            # (K, n, rows, F)
            ok = np.stack([real[t][:, rows] for t in taps])[..., None]  # (K, n, rows, 1)
            if layer.mode == "max":
                y[:n, rows] = np.where(ok, win, -np.inf).max(axis=0)
            else:
                total = np.where(ok, win, 0).sum(axis=0)
                y[:n, rows] = total / (K if layer.count_include_pad else ok.sum(axis=0))
        timed_output(states_out, prefix, ext, lengths, phases, Lf, timing, self.timing(layer) is not None)
        states_out[f"{prefix}.seen"] = np.minimum(seen + np.asarray(lengths), Lf).astype(dt).reshape(1, B, 1)
        return y


KIND = TemporalPoolKind()


class CumulativePool:
    """The mean or max of every frame so far, elementwise (Keras's GlobalAveragePooling1D / GlobalMaxPooling1D
    along time, as a stream sees it: the output after a sequence's last frame is the global pool of the whole
    sequence). State per stream: the running sum or max, and the frames seen (``<node>.total``, ``<node>.count``);
    float32 counts stay exact to 16.7 million frames."""

    kind = "cumulative_pool"
    input_size = None
    MODES = ("mean", "max")

    def __init__(self, mode="mean", name=None):
        if mode not in self.MODES:
            raise SpecError(f"CumulativePool: mode must be one of {self.MODES}, got {mode!r}")
        self.mode, self.name = mode, name

    def output_size(self, input_size=None):
        return input_size

    def __repr__(self):
        return f"CumulativePool({self.mode!r})"

    def to_config(self):
        return {"kind": self.kind, "name": self.name, "mode": self.mode}, {}

    @classmethod
    def from_config(cls, config, arrays):
        return cls(config["mode"], name=config.get("name"))


class CumulativePoolKind(Kind):
    name, code, spec_class = "cumulative_pool", L.OP_CUMULATIVE_POOL, CumulativePool
    step, entry = staticmethod(cumulative_step), staticmethod(cumulative_entry)

    def infer(self, layer, inputs, where):
        (edge, shape, dtype), = inputs
        if dtype != "float":
            raise SpecError(f"{where}: a CumulativePool reads float frames, but edge {edge!r} carries {dtype} ids")
        return tuple(shape), "float"

    def pack_node(self, layer, shapes, dtype):
        (shape,) = shapes
        F = int(np.prod(shape))
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        meta[L.M_CODE] = POOL_MAX if layer.mode == "max" else POOL_AVG
        return Packed(layer, self, np.zeros(1, dtype=dtype), meta, F, F, F + 1)

    def slots(self, p):
        return (Slot("total", 0, p.in_size, 1, None), Slot("count", p.in_size, 1, 1, None))

    def run(self, p, seq, lengths, states_in, states_out, prefix):
        """Whole sequences (T, B, F): running sums (or maxima) from the node's state."""
        T, B, F = seq.shape
        dt = seq.dtype
        total = states_in[f"{prefix}.total"][0] if f"{prefix}.total" in states_in else None
        count = states_in[f"{prefix}.count"][0, :, 0] if f"{prefix}.count" in states_in else np.zeros(B, dt)
        if p.layer.mode == "max":
            y = np.maximum.accumulate(seq, axis=0)
            if total is not None:
                y = np.where(count[None, :, None] > 0, np.maximum(y, total[None]), y)
            final = y[np.asarray(lengths) - 1, np.arange(B)] if T else total
        else:
            y = np.cumsum(seq, axis=0) + (0 if total is None else total[None])
            final = y[np.asarray(lengths) - 1, np.arange(B)] if T else total
            y = y / (count[None, :, None] + np.arange(1, T + 1, dtype=dt)[:, None, None])
        ends = np.asarray(lengths)
        states_out[f"{prefix}.total"] = np.where(ends[:, None] > 0, final, 0 if total is None else total)[None]
        states_out[f"{prefix}.count"] = (count + ends).astype(dt).reshape(1, B, 1)
        return np.ascontiguousarray(y.astype(dt))


CUMULATIVE = CumulativePoolKind()
