"""Pack each ModelSpec layer into the flat (params, meta) form the kernels read (see kernels/layout.py).

This is the one place where the canonical layout (PyTorch's, engine/spec.py) becomes the kernel layout:
weights transposed so gate units are contiguous, input and recurrent weights stacked and cut into column
panels, biases pre-added.
"""

import numpy as np

from ..kernels import layout as L
from ..kernels.activations import CODES
from ..spec import GRU, LSTM, RNN, Activation, Dense, Normalize


class Packed:
    """One layer in kernel form. ``params`` (float, read-only) and ``meta`` (int64) are what a kernel sees."""

    __slots__ = ("layer", "kind", "params", "meta", "in_size", "out_size", "state_size", "scratch_size", "_plain")

    def __init__(self, layer, kind, params, meta, in_size, out_size, state_size=0, scratch_size=0):
        meta[L.M_LEN] = len(meta)
        meta[L.M_KIND] = kind
        meta[L.M_IN] = in_size
        meta[L.M_OUT] = out_size
        meta[L.M_PLEN] = len(params)
        meta[L.M_STATE] = state_size
        meta[L.M_SCRATCH] = scratch_size
        params.setflags(write=False)
        meta.setflags(write=False)
        self.layer, self.kind, self.params, self.meta = layer, kind, params, meta
        self.in_size, self.out_size = in_size, out_size
        self.state_size, self.scratch_size = state_size, scratch_size
        self._plain = {}

    def view(self, d, slot, shape):
        """A numpy view of one packed vector or plain array (biases, dense weights)."""
        offset = int(self.meta[L.M_DIR + d * L.DIR_STRIDE + slot])
        return self.params[offset:offset + int(np.prod(shape))].reshape(shape)

    def matrix(self, d, slot, rows, cols):
        """One panelled matrix (D_M, D_PROJ, D_WXN, D_RHN) as a plain read-only (rows, cols) array, for BLAS
        (Model.run). Made once per Packed and kept: the copy costs as much as one GEMM with it."""
        key = (d, slot)
        if key not in self._plain:
            npan = -(-cols // L.PANEL)
            panels = self.view(d, slot, (npan, rows, L.PANEL))
            plain = np.ascontiguousarray(panels.transpose(1, 0, 2).reshape(rows, npan * L.PANEL)[:, :cols])
            plain.setflags(write=False)
            self._plain[key] = plain
        return self._plain[key]


class _Buffer:
    """Appends arrays to one flat buffer, returning each one's offset."""

    def __init__(self):
        self.parts, self.size = [], 0

    def add(self, arr):
        arr = np.ascontiguousarray(arr, dtype=np.float64).ravel()
        return self._append(arr)

    def add_panels(self, matrix):
        """A (K, N) matrix in the kernels' panel layout (kernels/layout.py)."""
        K, N = matrix.shape
        npan = -(-N // L.PANEL)
        padded = np.zeros((K, npan * L.PANEL), np.float64)
        padded[:, :N] = matrix
        return self._append(padded.reshape(K, npan, L.PANEL).transpose(1, 0, 2).ravel())

    def _append(self, arr):
        offset = self.size
        self.parts.append(arr)
        self.size += arr.size
        return offset

    def finish(self, dtype):
        if not self.parts:
            return np.zeros(0, dtype=dtype)
        return np.concatenate(self.parts).astype(dtype)


def _is_fast(layer, acts):
    if layer.clip is not None or layer.has_peepholes or (layer.cell == "lstm" and layer.input_forget):
        return False
    if layer.cell == "rnn":
        return acts[0] in (Activation("tanh"), Activation("relu"))
    return acts == tuple(Activation(a) for a in layer.default_activations)


def pack_recurrent(layer, dtype):
    """LSTM/GRU/RNN -> Packed. Canonical (PyTorch) layout in, kernel layout out, per direction."""
    G, H, I, Ho, D = layer.gates, layer.hidden_size, layer.input_size, layer.output_hidden, layer.num_directions
    buf = _Buffer()
    meta = np.zeros(L.META_LEN, dtype=np.int64)
    fast = all(_is_fast(layer, acts) for acts in layer.activations)
    for d, (w, acts) in enumerate(zip(layer.weights, layer.activations)):
        base = L.M_DIR + d * L.DIR_STRIDE
        W, R = w["weight_ih"], w["weight_hh"]                       # (G*H, I), (G*H, Ho)
        # widened before the biases are pre-added: float32 weights summed in float32 would round the sum
        b_ih = np.asarray(w.get("bias_ih", np.zeros(G * H)), np.float64)
        b_hh = np.asarray(w.get("bias_hh", np.zeros(G * H)), np.float64)
        if layer.cell == "gru":
            # canonical r,z,n rows -> stacked [W_rz^T; R_rz^T] (I+H, 2H); n kept apart: W_n^T (I,H), R_n^T (H,H)
            meta[base + L.D_M] = buf.add_panels(np.concatenate([W[:2 * H].T, R[:2 * H].T], axis=0))
            meta[base + L.D_B] = buf.add(b_ih[:2 * H] + b_hh[:2 * H])   # r, z biases pre-added
            meta[base + L.D_WXN] = buf.add_panels(W[2 * H:].T)
            meta[base + L.D_RHN] = buf.add_panels(R[2 * H:].T)
            meta[base + L.D_BXN] = buf.add(b_ih[2 * H:])
            meta[base + L.D_BHN] = buf.add(b_hh[2 * H:])                # apart: r multiplies it (lbr=1)
        else:
            # canonical (G*H, I) and (G*H, Ho), gates i,f,g,o -> stacked [W^T; R^T] (I+Ho, G*H), same gate order
            meta[base + L.D_M] = buf.add_panels(np.concatenate([W.T, R.T], axis=0))
            meta[base + L.D_B] = buf.add(b_ih + b_hh)                   # biases pre-added
        if layer.cell == "lstm":
            meta[base + L.D_PEEP] = buf.add(w.get("peephole", np.zeros((3, H))))   # (3, H): i, f, o
            if layer.proj_size:
                meta[base + L.D_PROJ] = buf.add_panels(w["weight_hr"].T)               # (Ho, H) -> (H, Ho)
        floats = [layer.clip if layer.clip is not None else 0.0]
        for k, act in enumerate(acts):
            floats += [act.alpha, act.beta]
            meta[base + L.D_ACT0 + k] = CODES[act.name]
        floats += [0.0] * (7 - len(floats))
        meta[base + L.D_FLT] = buf.add(np.array(floats))
    flags = (L.F_FAST if fast else 0) | (L.F_CLIP if layer.clip is not None else 0)
    if layer.cell == "lstm":
        flags |= (L.F_INPUT_FORGET if layer.input_forget else 0) | (L.F_PROJ if layer.proj_size else 0)
    if layer.cell == "gru" and layer.linear_before_reset:
        flags |= L.F_LBR
    meta[L.M_H], meta[L.M_HO], meta[L.M_D], meta[L.M_FLAGS] = H, Ho, D, flags
    kind = {"lstm": L.OP_LSTM, "gru": L.OP_GRU, "rnn": L.OP_RNN}[layer.cell]
    K = I + Ho
    # per-row stepping buffers (see the *_step kernels): state [h | c]; scratch regions per row
    state = Ho + H if layer.cell == "lstm" else H
    scratch = {"lstm": K + 5 * H + max(L.TILE, 4 * H), "gru": K + 5 * H + max(L.TILE, 2 * H),
               "rnn": K + H + max(L.TILE, H)}[layer.cell]
    return Packed(layer, kind, buf.finish(dtype), meta, I, D * Ho, state, scratch)


def pack_dense(layer, dtype):
    buf = _Buffer()
    meta = np.zeros(L.META_LEN, dtype=np.int64)
    meta[L.M_DIR + L.D_W] = buf.add(layer.weight)          # (out, in) as given: a dot product per output
    meta[L.M_DIR + L.D_BIAS] = buf.add(layer.bias) if layer.bias is not None else -1
    return Packed(layer, L.OP_DENSE, buf.finish(dtype), meta, layer.in_features, layer.out_features)


def pack_normalize(layer, dtype):
    buf = _Buffer()
    meta = np.zeros(L.META_LEN, dtype=np.int64)
    meta[L.M_DIR + L.D_MEAN] = buf.add(layer.mean)
    meta[L.M_DIR + L.D_SCALE] = buf.add(layer.scale)
    return Packed(layer, L.OP_NORM, buf.finish(dtype), meta, layer.size, layer.size)


def pack_activation(layer, size, dtype):
    meta = np.zeros(L.META_LEN, dtype=np.int64)
    meta[L.M_CODE] = CODES[layer.name]
    return Packed(layer, L.OP_ACT, np.array([layer.alpha, layer.beta], dtype=dtype), meta, size, size)


def pack_spec(spec, dtype):
    """Every layer of ``spec`` packed for ``dtype``, in order."""
    packed, size = [], spec.input_size
    for layer in spec.layers:
        if isinstance(layer, (LSTM, GRU, RNN)):
            p = pack_recurrent(layer, dtype)
        elif isinstance(layer, Dense):
            p = pack_dense(layer, dtype)
        elif isinstance(layer, Normalize):
            p = pack_normalize(layer, dtype)
        elif isinstance(layer, Activation):
            p = pack_activation(layer, size, dtype)
        else:  # ModelSpec validation makes this unreachable; keep the message anyway
            raise TypeError(f"cannot pack layer {layer!r}")
        packed.append(p)
        size = p.out_size
    return packed

