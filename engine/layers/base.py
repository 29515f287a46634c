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

# How a node that changes the rate along time, or waits for later frames, emits (``Kind.timing``): its output
# frame j is computed when input frame j * stride + warmup arrives, and over a whole sequence (``Model.run``) the
# input has ``tail`` frames of padding after its end, so L input frames give max(0, (L + tail - 1 - warmup) //
# stride + 1) outputs. Such a node keeps its phase, the number of input frames until its next output, as the
# last element of its state row (slot "phase", initially ``warmup``); a causal stride-1 node has none of this.
Timing = namedtuple("Timing", "stride warmup tail")


def timed_count(timing, length, phase=None):
    """How many outputs a node of ``timing`` emits from ``length`` input frames, starting at ``phase`` (input
    frames until its next output; its warmup when None), counting ``timing.tail`` padding frames after the end."""
    phase = timing.warmup if phase is None else phase
    ticks = length + timing.tail
    return 0 if ticks <= phase else (ticks - 1 - phase) // timing.stride + 1


def phase_after(timing, length, phase=None):
    """The phase of a node of ``timing`` after ``length`` more input frames (no tail) from ``phase``."""
    phase = timing.warmup if phase is None else phase
    if length <= phase:
        return phase - length
    return timing.stride - 1 - (length - 1 - phase) % timing.stride


class Packed:
    """One layer in kernel form. ``params`` (float, read-only) and ``meta`` (int64) are what a kernel sees;
    ``kind`` is the layer's Kind."""

    __slots__ = ("layer", "kind", "params", "meta", "in_size", "out_size", "state_size", "scratch_size", "_plain",
                 "shapes", "extra_scratch", "epilogue", "parts")

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
        self.epilogue = None     # the packed Activation fused after it (``with_epilogue``)
        self.parts = (self,)     # what it was packed from: itself, or the node and its fused activation

    def with_epilogue(self, act):
        """This node with the packed activation ``act`` fused after it: its kernel applies the activation to each
        output row it writes (meta[M_EPI]); alpha and beta follow its params."""
        meta = self.meta.copy()
        meta[L.M_EPI], meta[L.M_EPI_P] = act.meta[L.M_CODE] + 1, len(self.params)
        fused = Packed(self.layer, self.kind, np.concatenate([self.params, act.params[:2]]), meta, self.in_size,
                       self.out_size, self.state_size, self.scratch_size)
        fused.shapes, fused.extra_scratch = (self.shapes[0], act.shapes[1]), self.extra_scratch
        fused.epilogue, fused.parts = act, (self, act)
        return fused

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
    variadic = False     # takes `arity` or more input edges (the plan lowers more into nodes of `arity`: ``lower``)
    reads_ids = False    # its input is integer ids (int64), not float frames (its entry point takes int64 *x)
    takes_epilogue = False   # its kernel applies a fused activation to each output row (kernels/activations.py)
    accepts_mask = False  # may also read a mask edge (Keras masking: Masking's (1,) output) after its inputs

    def lower(self, layer, name, inputs):
        """For a variadic kind reading more than ``arity`` edges: the nodes of ``arity`` inputs that compute it, as
        (name, layer, inputs) in order, the last one named ``name``; the others' names are new edges."""
        raise NotImplementedError

    def epilogue_code(self, layer):
        """For an activation a kernel can apply as its epilogue (kernels/activations.EPILOGUE_CODES): its code;
        None for anything else."""
        return None

    def channel_affine(self, layer):
        """For a node that is y = x * scale[c] + shift[c] per channel (BatchNorm): (scale, shift), so that the plan
        can fold it into the node before it; None for every other kind."""
        return None

    def fold_affine(self, layer, scale, shift, out_shape):
        """This kind's layer with a per-channel affine after it (the channel: axis 0 of its output frames, of
        ``out_shape``) folded into its weights and bias (a new layer), or None when it cannot take one exactly (the
        plan then runs the affine as its own node)."""
        return None

    # a kind whose step has a variant compiled for F_FAST layers alone (the recurrent cells) names it here
    fast_step = fast_entry = None

    def step_for(self, arity, packed=None):
        """The step kernel for a node reading ``arity`` edges (a masked node reads one more); for a ``packed``
        layer with the default activations, the kind's variant compiled for those alone, if it has one."""
        if arity != self.arity:
            return self.masked_step
        return self.fast_step if self._fast(packed) and self.fast_step is not None else self.step

    def entry_for(self, arity, packed=None):
        """The function compiled as the C entry point of a node reading ``arity`` edges (see step_for)."""
        if arity != self.arity:
            return self.masked_entry
        return self.fast_entry if self._fast(packed) and self.fast_entry is not None else self.entry

    @staticmethod
    def _fast(packed):
        return packed is not None and bool(packed.meta[L.M_FLAGS] & L.F_FAST)

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

    def slots(self, p):
        """The state slots of a packed node (``state_slots`` of its layer; a kind whose state size depends on its
        input frames overrides this)."""
        return self.state_slots(p.layer)

    def reads_future(self, layer):
        """Why the layer needs later timesteps to compute this one (a short phrase), or None if it does not."""
        return None

    def timing(self, layer):
        """A ``Timing`` for a node that emits fewer frames than it reads (a stride along time) or emits each one
        some frames late (padding that reads ahead); None for one output per input, at once (every other kind)."""
        return None

    def run_lengths(self, layer, lengths, phases=None):
        """The valid length of each sequence of this node's output, from its input's ``lengths``."""
        timing = self.timing(layer)
        if timing is None:
            return lengths
        return np.array([timed_count(timing, int(n), None if phases is None else int(phases[b]))
                         for b, n in enumerate(lengths)], np.int64)

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
