"""The linear algebra every weighted kernel shares: register-tiled panel accumulation and views of flat buffers.

Design:
* Gate pre-activations are one accumulation over a packed (K, N) matrix (for the cells [W^T; R^T]), stored
  as 64-column panels (npan, K, PANEL) (layout.py): the loop over K is outside, the 64 units of a panel
  inside, contiguous, so it compiles to vertical FMAs with no horizontal sums (measured: the
  row-dot layout was 1.2-1.4x slower).
* The accumulator tile lives in registers: ``_registers`` gives a stack array that LLVM promotes once
  the loops over it are unrolled. ``gemm_acc`` takes the rows six, four or one at a time (float64: two;
  ``_panel``) and loads each weight vector once for all of them, so the weights are read once per
  timestep whatever the number of streams or sequences (one gemv per row read them n times: 2.3x slower
  than onnxruntime at 64 streams). benchmarks/kernel_variants.py times the alternatives.
* Blocked accumulation: each BLOCK of K is summed into the zeroed tile, then added to the output, which
  halves float32 rounding error at fan-in 512 (g2p-en's GRUs: 1.7e-5 -> 1e-5 on logits of ~20;
  accumulating in float64 bought nothing more and cost 1.5x). Every element is summed in the same order
  whichever of the three paths computes it: n rows stepped together equal n rows stepped alone, bit for bit.
* Views of the packed parameters and of scratch are ``carray``s over a pointer (``_mat``, ``_panels``,
  ``_rows``): nothing here allocates.
"""

import llvmlite.ir as ir
from numba import carray, literally, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ..config import OVERLOAD_OPTIONS, jit
from .layout import PANEL

BLOCK = 32  # rows of W per partial sum


@intrinsic
def _registers(typingctx, rows, cols, like):
    """A pointer to rows * cols elements of ``like``'s dtype on the stack (an LLVM alloca); rows and cols
    are compile-time constants. Unlike an array from np.empty, nothing else can point into it, so once the
    loops over it are fully unrolled LLVM keeps its elements in vector registers: ``_panel``'s tile."""
    if not (isinstance(rows, types.IntegerLiteral) and isinstance(cols, types.IntegerLiteral)):
        return None
    count, dtype = rows.literal_value * cols.literal_value, like.dtype

    def codegen(context, builder, signature, args):
        elem = context.get_value_type(dtype)
        ptr = cgutils.alloca_once(builder, ir.ArrayType(elem, count))
        return builder.bitcast(ptr, elem.as_pointer())

    return types.CPointer(dtype)(rows, cols, like), codegen


@jit
def _panel(G, X, Wp, koff, N, r, PART, R):
    """Rows r..r+R-1 of G[:, :N] += X @ rows koff..koff+K of the panelled matrix Wp (npan, Ktot, PANEL).

    R is a compile-time constant (one specialization per row count): the R x PANEL accumulator tile and
    the R inputs of the current k stay in registers, and each weight vector is loaded once for all R rows.
    Every element is summed in the same order whatever R is, so results are bit-identical across R.
    PART (>= R, >= PANEL) receives the tile of the last, zero-padded panel."""
    literally(R)
    K = X.shape[1]
    acc = carray(_registers(R, PANEL, G), (R, PANEL))
    xk = carray(_registers(R, 1, G), (R,))
    for p in range(Wp.shape[0]):
        w = Wp[p]
        j0 = p * PANEL
        full = j0 + PANEL <= N
        for k0 in range(0, K, BLOCK):
            k1 = min(k0 + BLOCK, K)
            for i in range(R):
                for j in range(PANEL):
                    acc[i, j] = 0
            for k in range(k0, k1):
                wk = w[koff + k]
                for i in range(R):
                    xk[i] = X[r + i, k]
                for j in range(PANEL):
                    u = wk[j]
                    for i in range(R):
                        acc[i, j] += xk[i] * u
            if full:
                for i in range(R):
                    o = G[r + i, j0:j0 + PANEL]
                    for j in range(PANEL):
                        o[j] += acc[i, j]
            else:                        # the last, zero-padded panel: only N - j0 columns are real
                for i in range(R):
                    for j in range(PANEL):
                        PART[i, j] = acc[i, j]
                for i in range(R):
                    for j in range(N - j0):
                        G[r + i, j0 + j] += PART[i, j]


@jit
def gemm_acc(G, X, Wp, koff, N, PART):
    """G[:, :N] += X (n, K) @ W[koff:koff + K] for W (Ktot, N) stored as panels Wp (npan, Ktot, PANEL) (see
    layout.py); PART (min(n, 6), >= PANEL) is scratch. float32 rows go six at a time (but 8 as 4 + 4), then
    four, the rest one by one; float64 rows two at a time. Either way each element's sum is the same sequence
    of operations, so n rows stepped together equal n rows stepped alone bit for bit."""
    _row_tiles(G, X, Wp, koff, N, PART)


def _row_tiles(G, X, Wp, koff, N, PART):
    """gemm_acc's row tiles for G's dtype (numba only)."""
    raise NotImplementedError("only callable from numba-compiled code")


@overload(_row_tiles, jit_options=OVERLOAD_OPTIONS, inline="always")
def _row_tiles_overload(G, X, Wp, koff, N, PART):
    """Chosen when the kernel is typed, so float32 code holds no float64 tile and float64 code no float32 ones
    (each tile is a compile of its own: about 0.5 s a kernel on a first use)."""
    if G.dtype.bitwidth == 64:
        def pairs(G, X, Wp, koff, N, PART):
            n, r = X.shape[0], 0
            while r + 2 <= n:                # float64: pairs
                _panel(G, X, Wp, koff, N, r, PART, 2)
                r += 2
            while r < n:
                _panel(G, X, Wp, koff, N, r, PART, 1)
                r += 1
        return pairs

    def tiles(G, X, Wp, koff, N, PART):
        n, r = X.shape[0], 0
        while n - r >= 6 and n - r != 8:     # six rows: 24 of the 32 AVX-512 registers hold accumulators
            _panel(G, X, Wp, koff, N, r, PART, 6)
            r += 6
        while r + 4 <= n:
            _panel(G, X, Wp, koff, N, r, PART, 4)
            r += 4
        while r < n:
            _panel(G, X, Wp, koff, N, r, PART, 1)
            r += 1
    return tiles


@jit
def _copy(dst, src):
    """dst[:n] = src for n = len(src), as a loop (no temporary, no allocation)."""
    for i in range(src.shape[0]):
        dst[i] = src[i]


@jit
def _clamp(v, clip):
    return -clip if v < -clip else (clip if v > clip else v)


@intrinsic
def _address(typingctx, arr, offset):
    """A pointer to ``arr[offset]`` of a contiguous 1-D array, for ``carray`` views (no bounds check)."""
    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.gep(ary.data, [args[1]])

    return types.CPointer(arr.dtype)(arr, offset), codegen


# The views below are carrays over the caller's flat buffers: ``buf[a:b].reshape(...)`` went through
# numba's no-copy-reshape helper, ~36 ns a view, a fifth of a whole LSTM 8x32 step. The regions' sizes
# come from the packer (Packed.scratch_size) and Model.run, which allocate the buffers.

@jit
def _mat(P, offset, rows, cols):
    """The (rows, cols) C-contiguous matrix at ``offset`` of a flat buffer."""
    return carray(_address(P, offset), (rows, cols))


@jit
def _panels(P, offset, rows, cols):
    """The panelled (rows, cols) matrix at ``offset``: (ceil(cols / PANEL), rows, PANEL), see layout.py."""
    return carray(_address(P, offset), ((cols + PANEL - 1) // PANEL, rows, PANEL))


@jit
def _rows(buf, offset, n, width):
    """An (n, width) C-contiguous region of a flat scratch buffer."""
    return carray(_address(buf, offset), (n, width))
