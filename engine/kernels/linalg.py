"""The linear algebra every weighted kernel shares: register-tiled panel accumulation and views of flat buffers.

Design:
* Gate pre-activations are one accumulation over a packed (K, N) matrix (for the cells [W^T; R^T]), stored
  as 64-column panels (npan, K, PANEL) (layout.py): the loop over K is outside, the 64 units of a panel
  inside, contiguous, so it compiles to vertical FMAs with no horizontal sums (measured: the
  row-dot layout was 1.2-1.4x slower).
* The accumulator tile lives in registers, as LLVM vectors (``_tile``): ``gemm_acc`` takes the rows six,
  four or one at a time and each tile's columns in blocks sized for the registers of the code's target
  (``_TILES``: AVX-512 6 x 64 floats in 24 of 32 registers, AVX2 and SSE 6 x 2 vectors in 12 of 16), and
  loads each weight vector once for all the rows, so the weights are read once per timestep whatever the
  number of streams or sequences (one gemv per row read them n times: 2.3x slower than onnxruntime at 64
  streams). benchmarks/kernel_variants.py times the alternatives.
* Blocked accumulation: each BLOCK of K is summed into the zeroed tile, then added to the output, which
  halves float32 rounding error at fan-in 512 (g2p-en's GRUs: 1.7e-5 -> 1e-5 on logits of ~20;
  accumulating in float64 bought nothing more and cost 1.5x). Every element is summed in the same order
  whichever tile computes it: n rows stepped together equal n rows stepped alone, bit for bit.
* Views of the packed parameters and of scratch are ``carray``s over a pointer (``_mat``, ``_panels``,
  ``_rows``): nothing here allocates.
"""

import functools

import llvmlite.ir as ir
from numba import carray, literally, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ..config import OVERLOAD_OPTIONS, jit
from .layout import PANEL

BLOCK = 32  # rows of W per partial sum


@intrinsic
def _at(typingctx, arr, i, j):
    """A pointer to ``arr[i, j]`` of a 2-D array, through its strides, unchecked."""
    return _element_pointer(arr, 2, (arr, i, j))


@intrinsic
def _at3(typingctx, arr, i, j, k):
    """A pointer to ``arr[i, j, k]`` of a 3-D array, through its strides, unchecked."""
    return _element_pointer(arr, 3, (arr, i, j, k))


def _element_pointer(arr, ndim, argtypes):
    if not isinstance(arr, types.Array) or arr.ndim != ndim:
        return None

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        inds = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], signature.args[1:])]
        return cgutils.get_item_pointer(context, builder, aryty, ary, inds)

    return types.CPointer(arr.dtype)(*argtypes), codegen


@intrinsic
def _tile(typingctx, out, ldo, w, ldw, lds, x, ldx, kn, rows, cols, lanes):
    """out[i, j] += sum over k < kn of x[i * ldx + k] * W[k, j], for i < rows, j < cols, where column j of W
    is column j % PANEL of the panel j // PANEL after w: at w[(j // PANEL) * lds + k * ldw + j % PANEL]
    (pointers and strides in elements; a tile wider than a panel spans the next). Each element starts from 0
    and takes one multiply-add per k, in order of k, then is added to ``out``: the same operations whatever
    ``rows`` and ``cols`` are.

    Written as LLVM vector code, not as loops for LLVM to vectorize: the rows x cols accumulators are ``lanes``-wide
    vectors (rows * cols / lanes of them, sized by _TILES to fit the register file), each weight vector is loaded
    once for all rows and each x broadcast once for all columns. The loop form vectorized well or not depending on
    the tile's shape and the target's tuning (on CPUs that LLVM tunes for 256-bit vectors it spilled the 6 x 64
    tile: 3x slower than OpenBLAS at 64 rows), and with fast-math it could reassociate the sum over k, so rows
    computed together would not have equalled rows computed alone. ``llvm.fmuladd`` is one rounding where the target
    has FMA and two where it has not: the same choice for every element of a build."""
    if not all(isinstance(a, types.IntegerLiteral) for a in (rows, cols, lanes)):
        return None
    R, C, V = rows.literal_value, cols.literal_value, lanes.literal_value
    dtype = out.dtype
    align = dtype.bitwidth // 8

    def codegen(context, builder, signature, args):
        o, ldo_, wp, ldw_, lds_, xp, ldx_, kn_ = args[:8]
        elem = context.get_value_type(dtype)
        vec = ir.VectorType(elem, V)
        i64 = ldo_.type
        fmuladd = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec, vec, vec]),
            "llvm.fmuladd.v%d%s" % (V, "f32" if dtype.bitwidth == 32 else "f64"))
        acc = [[cgutils.alloca_once(builder, vec) for _ in range(C // V)] for _ in range(R)]
        for row in acc:
            for a in row:
                builder.store(ir.Constant(vec, [0.0] * V), a)
        undef = ir.Constant(vec, ir.Undefined)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), V), [0] * V)

        def vptr(base, offset):
            return builder.bitcast(builder.gep(base, [offset]), vec.as_pointer())

        with cgutils.for_range(builder, kn_) as loop:
            k = loop.index
            wk = builder.gep(wp, [builder.mul(k, ldw_)])
            wv = [builder.load(vptr(wk, builder.add(builder.mul(ir.Constant(i64, v * V // PANEL), lds_),
                                                    ir.Constant(i64, v * V % PANEL))), align=align)
                  for v in range(C // V)]
            for i in range(R):
                xi = builder.load(builder.gep(xp, [builder.add(builder.mul(ir.Constant(i64, i), ldx_), k)]))
                xb = builder.shuffle_vector(builder.insert_element(undef, xi, ir.Constant(ir.IntType(32), 0)),
                                            undef, splat)
                for v in range(C // V):
                    builder.store(builder.call(fmuladd, [xb, wv[v], builder.load(acc[i][v])]), acc[i][v])
        for i in range(R):
            for v in range(C // V):
                p = vptr(o, builder.add(builder.mul(ir.Constant(i64, i), ldo_), ir.Constant(i64, v * V)))
                builder.store(builder.fadd(builder.load(p, align=align), builder.load(acc[i][v])), p, align=align)
        return context.get_dummy_value()

    return types.void(out, ldo, w, ldw, lds, x, ldx, kn, rows, cols, lanes), codegen


@jit
def _panel(G, X, Wp, koff, N, r, PART, R, CW, CH, V):
    """Rows r..r+R-1 of G[:, :N] += X @ rows koff..koff+K of the panelled matrix Wp (npan, Ktot, PANEL), CW
    columns at a time (one ``_tile`` per BLOCK of K; a tile wider than a panel spans two). The last block, when
    N is not a multiple of CW, takes a tile of CH = CW / 2 columns if that covers it, and goes through PART
    (>= R rows, >= CW columns) where the weights' zero padding makes columns past N. R, CW, CH and V are
    compile-time constants (one specialization per tile shape); every element is summed in the same order
    whatever they are, so results are bit-identical across tile shapes."""
    literally(R)
    literally(CW)
    literally(CH)
    literally(V)
    K = X.shape[1]
    ldg = G.strides[0] // G.itemsize
    ldx = X.strides[0] // X.itemsize
    ldp = PART.strides[0] // PART.itemsize
    lds = Wp.strides[0] // Wp.itemsize
    for jc in range(0, N, CW):
        rest = N - jc
        wide = rest > CH                 # a CW-wide tile, else a CH-wide one (a last block of at most CH columns)
        exact = rest >= CW or rest == CH
        # an exact tile adds into G; the last panel's zero padding (only `rest` columns are real) goes via PART
        out, ldo = (_at(G, r, jc), ldg) if exact else (_at(PART, 0, 0), ldp)
        for k0 in range(0, K, BLOCK):
            kn = min(BLOCK, K - k0)
            w = _at3(Wp, jc // PANEL, koff + k0, jc % PANEL)
            x = _at(X, r, k0)
            if not exact:
                for i in range(R):
                    for j in range(CW):
                        PART[i, j] = 0
            if wide:                     # each tile shape expanded once: fewer instructions to compile
                _tile(out, ldo, w, PANEL, lds, x, ldx, kn, R, CW, V)
            else:
                _tile(out, ldo, w, PANEL, lds, x, ldx, kn, R, CH, V)
            if not exact:
                for i in range(R):
                    for j in range(rest):
                        G[r + i, jc + j] += PART[i, j]


@jit
def gemm_acc(G, X, Wp, koff, N, PART):
    """G[:, :N] += X (n, K) @ W[koff:koff + K] for W (Ktot, N) stored as panels Wp (npan, Ktot, PANEL) (see
    layout.py); PART (min(n, 6), >= TILE) is scratch. The rows go in register tiles of six, then four
    (8 as 4 + 4), the rest one by one, each tile's columns in blocks sized for the target's registers
    (_TILES). Each element's sum is the same sequence of operations whichever tile computes it, so n rows
    stepped together equal n rows stepped alone bit for bit, on every target. The last axis of every array
    must be contiguous."""
    if (G.strides[1] != G.itemsize or X.strides[1] != X.itemsize or Wp.strides[2] != Wp.itemsize
            or PART.strides[1] != PART.itemsize):
        raise ValueError("gemm_acc: each row of G, X, Wp and PART must be contiguous")
    _row_tiles(G, X, Wp, koff, N, PART)


def _row_tiles(G, X, Wp, koff, N, PART):
    """gemm_acc's row tiles for G's dtype and the target's registers (numba only)."""
    raise NotImplementedError("only callable from numba-compiled code")


@functools.lru_cache(maxsize=None)
def vector_target():
    """(vector bits, vector registers) of the code numba generates here: what ``NUMBA_CPU_NAME`` and
    ``NUMBA_CPU_FEATURES`` select, else the host. Found by compiling a 16-float add with numba's own target
    machine and reading which registers it uses (zmm: AVX-512, ymm: AVX, else 128-bit SSE or NEON), so it
    agrees with the code the kernels get whatever the CPU's name or LLVM's tuning for it."""
    import llvmlite.binding as llvm
    from numba.core.registry import cpu_target

    codegen = cpu_target.target_context.codegen()
    module = ir.Module()
    vec = ir.VectorType(ir.FloatType(), 16)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [vec.as_pointer()]), "probe")
    builder = ir.IRBuilder(fn.append_basic_block())
    v = builder.load(fn.args[0])
    builder.store(builder.fadd(v, v), fn.args[0])
    builder.ret_void()
    parsed = llvm.parse_assembly(str(module))
    asm = codegen._tm.emit_assembly(parsed)
    triple = llvm.get_process_triple()
    if "zmm" in asm:
        return 512, 32
    if "ymm" in asm:
        return 256, 16
    return 128, (32 if triple.startswith(("aarch64", "arm64")) else 16)


@functools.lru_cache(maxsize=None)
def _TILES(bits):
    """The register tiles for elements of ``bits``: (lanes, (rows, columns) of the multi-row tiles, columns of a
    lone row). Six rows by four vectors fill 24 of 32 registers (AVX-512, NEON); with 16 registers (AVX2, SSE)
    six rows by two vectors fill 12, leaving room for the weight vectors and a broadcast. A lone row takes eight
    vectors across (AVX2 64 floats, AVX-512 128: two panels), eight independent chains of multiply-adds (four
    were bound by the multiply-add's latency: LSTM 32x128's step was 7% slower). benchmarks/kernel_variants.py
    times the alternatives."""
    vbits, regs = vector_target()
    lanes = vbits // bits
    width = (4 if regs >= 32 else 2) * lanes
    return lanes, (6, width), min(2 * PANEL, 8 * lanes)


@overload(_row_tiles, jit_options=OVERLOAD_OPTIONS, inline="always")
def _row_tiles_overload(G, X, Wp, koff, N, PART):
    """Chosen when the kernel is typed: the tiles for its dtype and target (each tile shape is a compile of its
    own, so float32 code holds no float64 tile)."""
    V, (_, CW), C1 = _TILES(G.dtype.bitwidth)
    CH, C1H = max(V, CW // 2), max(V, C1 // 2)    # a last block of half the columns takes a tile of its own

    def tiles(G, X, Wp, koff, N, PART):
        n, r = X.shape[0], 0
        while n - r >= 6 and n - r != 8:
            _panel(G, X, Wp, koff, N, r, PART, 6, CW, CH, V)
            r += 6
        while r + 4 <= n:
            _panel(G, X, Wp, koff, N, r, PART, 4, CW, CH, V)
            r += 4
        while r < n:
            _panel(G, X, Wp, koff, N, r, PART, 1, C1, C1H, V)
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
