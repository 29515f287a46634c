"""What the LSTM, GRU and RNN sequence kernels share: starting states, chunked input projections, and the
load/store of the BLAS path (engine/layers/recurrent.py drives the BLAS GEMMs).

Design: below the BLAS batch a sequence kernel projects the inputs of CHUNK timesteps in one six-row
``_panel`` pass into a small work area, then runs the recurrence time-outer, batch-inner (a (T, B, G*H)
projection array up front cost page faults of up to 2 us per step). Per-row lengths and the reverse
direction are a matter of indexing: rows past their length are computed but never written back.

The cells (lstm.py, gru.py, rnn.py): step and sequence share the per-row cell update; two update paths:
``fast`` (default activations, no clip/peephole/input_forget) is branch-free and vectorizes, ``generic``
evaluates any ONNX activation with exact math, element by element. Symbols follow the ONNX operator docs: X_t
input, H_t hidden, C_t cell, W/R input/recurrent weights, P peepholes. Nothing here allocates: scratch comes
from the caller.
"""

from numba import types
from numba.extending import overload

from ..config import OVERLOAD_OPTIONS, jit
from .linalg import _copy, gemm_acc

# The step kernels' ACT argument, a compile-time constant: a layer with the default activations (F_FAST) gets an
# entry point compiled with DEFAULT_ACTIVATIONS, whose code holds the fast cell update alone; any other layer
# one with ANY_ACTIVATIONS (the generic path, which takes the fast one too where F_FAST is set). The generic
# path is about 2 s of a cold first step's compile.
DEFAULT_ACTIVATIONS, ANY_ACTIVATIONS = 0, 1


def activation_choice(fast, generic, nargs):
    """A function ``choose(ACT, a0, ..., a<nargs-1>)``: ``fast(a0, ...)`` when ACT is the constant
    DEFAULT_ACTIVATIONS, else ``generic(a0, ...)``, decided when the kernel is typed (so the other is never
    compiled into it) and inlined there (every level of calls is one more pass of LLVM over all it calls: ~0.7 s
    of a cold start each)."""
    names = ", ".join(f"a{i}" for i in range(nargs))
    scope = {"types": types, "DEFAULT": DEFAULT_ACTIVATIONS, "fast": fast, "generic": generic}
    exec(f"def choose(ACT, {names}):\n"
         f"    raise NotImplementedError('only callable from numba-compiled code')\n"
         f"def typing(ACT, {names}):\n"                  # an overload's typing and implementing signatures match
         f"    if not isinstance(ACT, types.IntegerLiteral):\n"
         f"        return None\n"
         f"    target = fast if ACT.literal_value == DEFAULT else generic\n"
         f"    def impl(ACT, {names}):\n"
         f"        return target({names})\n"
         f"    return impl\n", scope)
    choose = scope["choose"]
    overload(choose, jit_options=OVERLOAD_OPTIONS, inline="always", prefer_literal=True)(scope["typing"])
    return choose


@jit
def _start(HT, H0, lengths):
    """HT = H0 row by row; returns the longest sequence length (the number of recurrence steps)."""
    longest = 0
    for b in range(HT.shape[0]):
        _copy(HT[b], H0[b])
        longest = max(longest, lengths[b])
    return longest


CHUNK = 6   # timesteps whose input projections one six-row _panel pass computes together (sequence kernels)


@jit
def _chunk_inputs(XC, SEQ, lengths, s0, reverse):
    """XC[c * B + b] = x_t of row b at recurrence step s0 + c (t = s, or L-1-s reversed); zeros past its end."""
    B = SEQ.shape[1]
    for c in range(XC.shape[0] // B):
        s = s0 + c
        for b in range(B):
            L = lengths[b]
            x = XC[c * B + b]
            if s < L:
                _copy(x, SEQ[L - 1 - s if reverse else s, b])
            else:
                for j in range(x.shape[0]):
                    x[j] = 0


@jit
def _chunk_project(GC, XC, Wp, N, bias, PART):
    """GC[:, :N] = bias + XC @ W[:K] (the x rows of the panelled Wp): CHUNK steps' input projections at once."""
    for r in range(GC.shape[0]):
        g = GC[r]
        for j in range(N):
            g[j] = bias[j]
    gemm_acc(GC, XC, Wp, 0, N, PART)


@jit
def seq_blas_load(XH, SEQ, HT, lengths, s, reverse):
    """XH[b] = [x_t, H_t-1] for the rows still running at step s (t = s, or L-1-s reversed)."""
    I = SEQ.shape[2]
    for b in range(XH.shape[0]):
        L = lengths[b]
        if s < L:
            _copy(XH[b, :I], SEQ[L - 1 - s if reverse else s, b])
            _copy(XH[b, I:], HT[b])


@jit
def seq_blas_store(SRC, HT, Y, lengths, s, reverse):
    """HT[b] = Y[t, b] = SRC[b] for the rows still running at step s."""
    for b in range(SRC.shape[0]):
        L = lengths[b]
        if s < L:
            _copy(HT[b], SRC[b])
            _copy(Y[L - 1 - s if reverse else s, b], SRC[b])
