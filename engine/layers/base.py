"""What every node kind's room provides, and the packed form all kinds share.

Design: a kind is one module under engine/layers/ holding one ``Kind`` instance (``KIND``): its ModelSpec
class, how it packs (the canonical -> kernel layout), its kernels (``step`` for n rows, ``entry`` for the
Cython call layer), its state slots (what it carries from one timestep to the next), whether it reads the
future, and how it runs whole sequences. The engine (model.py, session.py, the CLI) asks the kind; it never
branches on which kind a layer is. engine/layers/__init__.py lists the kinds in one table.
"""

from collections import namedtuple

import numpy as np

from ..errors import SpecError
from ..kernels import layout as L

# One thing a layer carries from one timestep to the next: ``name`` (the state key is ``layers.<i>.<name>``),
# its place in a stream's state row [offset, offset + size), the number of directions it has in Model.run
# (a bidirectional layer carries one per direction; only forward layers stream), and the layer's initial
# value per direction (directions, size), or None for zeros.
Slot = namedtuple("Slot", "name offset size directions initial")


class Packed:
    """One layer in kernel form. ``params`` (float, read-only) and ``meta`` (int64) are what a kernel sees;
    ``kind`` is the layer's Kind."""

    __slots__ = ("layer", "kind", "params", "meta", "in_size", "out_size", "state_size", "scratch_size", "_plain",
                 "shapes", "extra_scratch")

    def __init__(self, layer, kind, params, meta, in_size, out_size, state_size=0, scratch_size=0):
        meta[L.M_LEN] = len(meta)
        meta[L.M_KIND] = kind.code
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
        self.shapes = None   # the frame shapes of its inputs and output, set by the plan (engine/plan.py)
        self.extra_scratch = 0   # scratch floats per row beyond meta[M_SCRATCH] (a masked step keeps state there)

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


class Buffer:
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


class Kind:
    """A node kind. Subclasses set the class attributes and override what differs from a stateless,
    frame-wise kind that reads no future."""

    name = None          # "lstm", "dense", ...
    code = None          # meta[M_KIND]: kernels/layout.py's OP_* constant
    spec_class = None    # the ModelSpec layer class (engine/spec.py)
    # set both as staticmethod(...): a numba dispatcher or function read through an instance would be bound to it
    step = None          # numba kernel (X (n, in), Y (n, out), P, S (n, state), SC, m): one timestep for n rows
    entry = None         # the Python function compiled as the C entry point (kernels/entry.py)
    convention = None    # a line for `rnnjit info` on the kind's layout conventions, if it has any

    arity = 1            # how many input edges a node of this kind reads
    reads_ids = False    # its input is integer ids (int64), not float frames (its entry point takes int64 *x)
    accepts_mask = False  # may also read a mask edge (Keras masking: Masking's (1,) output) after its inputs

    def channel_affine(self, layer):
        """For a node that is y = x * scale[c] + shift[c] per channel (BatchNorm): (scale, shift), so that the plan
        can fold it into the node before it; None for every other kind."""
        return None

    def fold_affine(self, layer, scale, shift, out_shape):
        """This kind's layer with a per-channel affine after it (the channel: axis 0 of its output frames, of
        ``out_shape``) folded into its weights and bias (a new layer), or None when it cannot take one exactly (the
        plan then runs the affine as its own node)."""
        return None

    def step_for(self, arity):
        """The step kernel for a node reading ``arity`` edges (a masked node reads one more)."""
        return self.step if arity == self.arity else self.masked_step

    def entry_for(self, arity):
        """The function compiled as the C entry point of a node reading ``arity`` edges."""
        return self.entry if arity == self.arity else self.masked_entry

    def id_bound(self, layer):
        """For a kind that reads ids: the ids it takes lie in [0, id_bound) (checked before any kernel runs)."""
        return None

    def infer(self, layer, inputs, where):
        """The frame shape and dtype of the node's output, ``(shape, dtype)``, from its inputs' ``(edge, shape,
        dtype)``; an input that does not fit is a SpecError naming the node, the edge and both shapes. The
        default is a kind over 1-D float frames whose spec class says its width (``validate``)."""
        (edge, shape, dtype), = inputs
        kind = type(layer).__name__
        if dtype != "float":
            raise SpecError(f"{where}: a {kind} reads float frames, but edge {edge!r} carries {dtype} ids")
        if len(shape) != 1:
            raise SpecError(f"{where}: a {kind} reads 1-D frames (features,), but edge {edge!r} carries frames "
                            f"of shape {shape}")
        return (layer.validate(shape[0], where if where.startswith("layer ") else
                               f"{where} on edge {edge!r} (frames of shape {shape})"),), "float"

    def pack(self, layer, in_size, dtype):
        """The layer in kernel form (a Packed), for 1-D input frames of width ``in_size``. A kind overrides this
        or ``pack_node``; each defaults to the other."""
        return self.pack_node(layer, [(in_size,)], dtype)

    def pack_node(self, layer, shapes, dtype):
        """The layer in kernel form for input frames of ``shapes`` (one shape per input edge). The default,
        for a kind over 1-D frames, is ``pack`` with the input's width."""
        (shape,) = shapes
        return self.pack(layer, shape[0], dtype)

    def state_slots(self, layer):
        """What the layer carries from one timestep to the next, as Slots (none: frame-wise)."""
        return ()

    def reads_future(self, layer):
        """Why the layer needs later timesteps to compute this one (a short phrase), or None if it does not."""
        return None

    def run(self, p, seq, lengths, states_in, states_out, prefix):
        """The layer over whole sequences: seq (T, B, in) -> (T, B, out). Recurrent kinds take their initial
        states from ``states_in`` and put their final ones in ``states_out`` under ``prefix + "." + slot``.
        A frame-wise kind runs its step kernel on all T * B frames at once."""
        T, B = seq.shape[:2]
        dt = p.params.dtype
        y = np.empty((T * B, p.out_size), dt)
        self.step(np.ascontiguousarray(seq.reshape(T * B, p.in_size)), y, p.params, np.empty((T * B, 0), dt),
                  np.zeros(T * B * p.scratch_size, dt), p.meta)
        return y.reshape(T, B, p.out_size)

    def __repr__(self):
        return f"<kind {self.name}>"
