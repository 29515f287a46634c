"""Activation functions for the kernels, exact and fast.

Design:
* ``tanh_`` and ``sigmoid_`` are numba overloads chosen by dtype at compile time: float32 gets both from an
  e^-|x| of its own (range reduction by ln2, a fitted polynomial, 2^n written into the exponent bits): max
  abs error 9e-8 against float64 for each, sigmoid 2.1e-7 relative even in its tails; float64 gets exact
  ``np.tanh`` / ``1 / (1 + exp(-x))``. ``tanh_nd`` / ``sigmoid_nd`` give the float32 value as a fraction, so
  that a cell multiplying several of them divides once (an LSTM's five activations take two divisions). This
  numba build has no vector math library, so ``np.tanh`` or ``np.exp`` in a loop is a scalar libm call; this
  form is plain arithmetic and vectorizes. (It replaced Eigen's rational tanh, 2.8e-7 off, with sigmoid as
  0.5 tanh(x/2) + 0.5: 1.7e-7 off and up to 12% relative in the tails, and both wrong beyond |x| ~ 1e8, where
  the branch-free clamp rounded to 0.) Infinite and NaN arguments give NaN (SECURITY.md), tested on the bits.
* ``inline="always"``: without it numba emits a real call (with an error check) per element and LLVM
  will not vectorize the loop around it.
* Branch-free selection: numba's ``min``/``max`` and ternaries may become branches, which block vectorization;
  ``_select`` is one LLVM select, np.minimum one min instruction, and the recurrent clip's clamp(x, -c, c) =
  0.5 * (|x + c| - |x - c|) two fabs and arithmetic.
* Constants are typed (``np.float32(...)``): a bare Python float is float64 in numba and would promote
  the float32 arithmetic around it.
* ``apply`` is the general ONNX activation (any code, alpha, beta) with exact math, used off the fast path.
"""

import math

import numpy as np
from llvmlite import ir
from numba import carray, types
from numba.extending import intrinsic, overload

from ..config import OVERLOAD_OPTIONS, jit
from .layout import M_CODE, M_D, M_EPI, M_EPI_P, M_H, M_HO, M_IN, M_LEN, M_OUT, M_PLEN, M_SCRATCH, M_STATE

# ---- codes shared with the packers (engine/layers/) ---------------------------------------------------
IDENTITY, RELU, TANH, SIGMOID, AFFINE, LEAKY_RELU, THRESHOLDED_RELU, SCALED_TANH, HARD_SIGMOID, ELU, \
    SOFTSIGN, SOFTPLUS, SELU, SOFTMAX, LOG_SOFTMAX, CLIP, GELU, GELU_TANH, SILU, MISH, HARD_SWISH, \
    SQRT, EXP, LOG, ABS, NEG, RECIPROCAL, POW = range(28)
CODES = {
    "identity": IDENTITY, "relu": RELU, "tanh": TANH, "sigmoid": SIGMOID, "affine": AFFINE,
    "leaky_relu": LEAKY_RELU, "thresholded_relu": THRESHOLDED_RELU, "scaled_tanh": SCALED_TANH,
    "hard_sigmoid": HARD_SIGMOID, "elu": ELU, "softsign": SOFTSIGN, "softplus": SOFTPLUS, "selu": SELU,
    "softmax": SOFTMAX, "log_softmax": LOG_SOFTMAX, "clip": CLIP, "relu6": CLIP, "gelu": GELU,
    "gelu_tanh": GELU_TANH, "silu": SILU, "mish": MISH, "hard_swish": HARD_SWISH, "sqrt": SQRT, "exp": EXP,
    "log": LOG, "abs": ABS, "neg": NEG, "reciprocal": RECIPROCAL, "pow": POW,
}

# ---- float32 exp(-z), tanh and sigmoid from it ------------------------------------------------------------
# e^-z for z >= 0: z = -n ln2 - r with n = -round(z log2e) and |r| <= ln2 / 2, so e^-z = 2^n e^r. e^r is
# 1 + r + r^2 q(r) with q of degree 4: coefficients fitted for the relative error of e^r on that range (weighted
# least squares on Chebyshev nodes, reweighted by the error until it levels: Lawson's iteration, in float64;
# 3.8e-9 relative with the float32 coefficients below, in exact arithmetic), so each float32 rounding costs more
# than the polynomial does. 2^n goes straight into p's exponent bits (p is in [0.7, 1.42]; n >= -125 keeps the
# result normal). One constant for ln2 (its float32 rounding is 1.9e-9): r is off by n times that, which is
# 5e-8 relative at most where e^-z is not far below float32's resolution next to 1.
_LOG2E, _LN2 = np.float32(1.4426950408889634), np.float32(0.6931471805599453)
_Q0, _Q1, _Q2, _Q3, _Q4 = (np.float32(v) for v in (
    0.4999999403953552, 0.1666652113199234, 0.04166838899254799, 0.008368710055947304, 0.001381461275741458))
_ZMAX = np.float32(86.0)   # e^-86 = 4.5e-38: n = -124
_ZERO32, _HALF32, _ONE32, _TWO32 = np.float32(0.0), np.float32(0.5), np.float32(1.0), np.float32(2.0)
_NAN32 = np.float32(np.nan)


@intrinsic
def _scale2(typingctx, p, n):
    """p * 2**n for a float32 p and an int32 n, by adding n to p's exponent bits (p * 2**n must be normal)."""
    sig = types.float32(types.float32, types.int32)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        bits = builder.add(builder.bitcast(args[0], i32), builder.shl(args[1], ir.Constant(i32, 23)))
        return builder.bitcast(bits, ir.FloatType())
    return sig, codegen


@intrinsic
def _select(typingctx, cond, a, b):
    """``a if cond else b`` as one select instruction (numba's conditional expression is a branch, which LLVM
    does not always turn back into a select, and then the loop around it does not vectorize)."""
    sig = a(types.boolean, a, b)

    def codegen(context, builder, signature, args):
        return builder.select(args[0], args[1], args[2])
    return sig, codegen


@intrinsic
def _not_finite(typingctx, x):
    """Whether float32 x is infinite or NaN, from its bits (an integer test: the fast-math flags, which let LLVM
    assume no NaNs or infinities in float comparisons, do not apply to it)."""
    sig = types.boolean(types.float32)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        magnitude = builder.and_(builder.bitcast(args[0], i32), ir.Constant(i32, 0x7FFFFFFF))
        return builder.icmp_unsigned(">=", magnitude, ir.Constant(i32, 0x7F800000))
    return sig, codegen


def _expneg32(z):
    """e^-z for float32 z >= 0 (numba only; a NaN or infinite z gives e^-86)."""
    raise NotImplementedError("only callable from numba-compiled code")


@overload(_expneg32, jit_options=OVERLOAD_OPTIONS, inline="always")
def _expneg32_overload(z):
    def impl(z):
        c = np.minimum(z, _ZMAX)
        n = np.floor(c * -_LOG2E + _HALF32)          # -round(c log2e)
        r = -c - n * _LN2
        q = (((_Q4 * r + _Q3) * r + _Q2) * r + _Q1) * r + _Q0
        return _scale2(q * (r * r) + r + _ONE32, np.int32(n))
    return impl


def tanh_nd(x):
    """tanh(x) as (numerator, denominator) in [-1, 1] x [1, 2] for float32 (the kernels multiply fractions and
    divide once); (tanh(x), 1) for float64 (numba only)."""
    raise NotImplementedError("only callable from numba-compiled code")


def sigmoid_nd(x):
    """sigmoid(x) as (numerator, denominator) in [0, 1] x [1, 2] for float32; (sigmoid(x), 1) for float64."""
    raise NotImplementedError("only callable from numba-compiled code")


def tanh_(x):
    """tanh: from e^-2|x| for float32 (max abs error 9e-8 against float64), exact for float64 (numba only)."""
    raise NotImplementedError("only callable from numba-compiled code")


def sigmoid_(x):
    """logistic sigmoid: from e^-|x| for float32 (max abs error 9e-8, relative 2.1e-7), exact for float64."""
    raise NotImplementedError("only callable from numba-compiled code")


def _is_f32(x):
    return isinstance(x, types.Float) and x.bitwidth == 32


@overload(tanh_nd, jit_options=OVERLOAD_OPTIONS, inline="always")
def _tanh_nd_overload(x):
    if _is_f32(x):
        def impl(x):
            e = _expneg32(_TWO32 * abs(x))         # tanh |x| = (1 - e^-2|x|) / (1 + e^-2|x|)
            # an infinite or NaN x gives NaN (SECURITY.md: non-finite data propagates as NaN)
            return _select(_not_finite(x), _NAN32, np.copysign(_ONE32 - e, x)), _ONE32 + e
        return impl
    return lambda x: (np.tanh(x), x - x + 1)


@overload(sigmoid_nd, jit_options=OVERLOAD_OPTIONS, inline="always")
def _sigmoid_nd_overload(x):
    if _is_f32(x):
        def impl(x):
            e = _expneg32(abs(x))                  # 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below
            return _select(_not_finite(x), _NAN32, _select(x >= _ZERO32, _ONE32, e)), _ONE32 + e
        return impl
    return lambda x: (1.0 / (1.0 + np.exp(-x)), x - x + 1)


@overload(tanh_, jit_options=OVERLOAD_OPTIONS, inline="always")
def _tanh_overload(x):
    if _is_f32(x):
        def impl(x):
            num, den = tanh_nd(x)
            return num / den
        return impl
    return lambda x: np.tanh(x)


@overload(sigmoid_, jit_options=OVERLOAD_OPTIONS, inline="always")
def _sigmoid_overload(x):
    if _is_f32(x):
        def impl(x):
            num, den = sigmoid_nd(x)
            return num / den
        return impl
    return lambda x: 1.0 / (1.0 + np.exp(-x))


def apply(code, alpha, beta, x):
    """The ONNX activation ``code`` with its alpha/beta at scalar x, exact math (numba only)."""
    raise NotImplementedError("only callable from numba-compiled code")


@overload(apply, jit_options=OVERLOAD_OPTIONS)
def _apply_overload(code, alpha, beta, x):
    def impl(code, alpha, beta, x):
        zero = x - x
        one = zero + 1
        if code == IDENTITY:
            return x
        if code == RELU:
            return x if x > zero else zero
        if code == TANH:
            return np.tanh(x)
        if code == SIGMOID:
            return one / (one + np.exp(-x))
        if code == AFFINE:
            return alpha * x + beta
        if code == LEAKY_RELU:
            return x if x >= zero else alpha * x
        if code == THRESHOLDED_RELU:
            return x if x > alpha else zero
        if code == SCALED_TANH:
            return alpha * np.tanh(beta * x)
        if code == HARD_SIGMOID:
            v = alpha * x + beta
            return zero if v < zero else (one if v > one else v)
        if code == ELU:
            return x if x >= zero else alpha * (np.exp(x) - one)
        if code == SOFTSIGN:
            return x / (one + abs(x))
        if code == SOFTPLUS:
            # log(1 + e^x) without overflow for large x
            return x + np.log1p(np.exp(-x)) if x > zero else np.log1p(np.exp(x))
        if code == SELU:
            return beta * (x if x > zero else alpha * (np.exp(x) - one))
        return x  # SOFTMAX / LOG_SOFTMAX are row operations, handled by the caller
    return impl


def apply_layer(code, alpha, beta, x):
    """``apply`` and the functions only an Activation node takes (clip, gelu, silu, mish, hard_swish and the
    elementwise math), exact math (numba only). Kept apart from ``apply``: every recurrent cell's generic gate
    path inlines that one, and each function added there is compiled into every cell (a cold start pays it)."""
    raise NotImplementedError("only callable from numba-compiled code")


@overload(apply_layer, jit_options=OVERLOAD_OPTIONS)
def _apply_layer_overload(code, alpha, beta, x):
    def impl(code, alpha, beta, x):
        if code < CLIP:
            return apply(code, alpha, beta, x)
        zero = x - x
        one = zero + 1
        if code == CLIP:
            return alpha if x < alpha else (beta if x > beta else x)
        if code == GELU:   # exact: x * Phi(x)
            return 0.5 * x * (one + math.erf(x * 0.7071067811865476))
        if code == GELU_TANH:
            return 0.5 * x * (one + np.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
        if code == SILU:
            return x / (one + np.exp(-x))
        if code == MISH:
            sp = x + np.log1p(np.exp(-x)) if x > zero else np.log1p(np.exp(x))
            return x * np.tanh(sp)
        if code == HARD_SWISH:   # x * relu6(x + 3) / 6
            v = x + 3
            return x * (zero if v < zero else (v if v < 6 else zero + 6)) / 6
        if code == SQRT:
            return np.sqrt(x)
        if code == EXP:
            return np.exp(x)
        if code == LOG:
            return np.log(x)
        if code == ABS:
            return abs(x)
        if code == NEG:
            return -x
        if code == RECIPROCAL:
            return one / x
        if code == POW:   # x ** alpha, a constant exponent
            return x ** alpha
        return x
    return impl


# ---- an activation fused after a dense or convolution node (the plan fuses it; engine/plan.py) ----------
EPILOGUE_CODES = (RELU, LEAKY_RELU, CLIP)   # branch-free and cheap to compile into every kernel that takes one


@jit(inline="always")
def epilogue(y, P, m):
    """The fused activation (meta[M_EPI] - 1) applied in place to one row ``y`` of the node's output, while it is
    still in cache: the same arithmetic as the Activation node's (apply / apply_layer) for these codes."""
    code = m[M_EPI] - 1
    if code < 0:
        return
    alpha, beta = P[m[M_EPI_P]], P[m[M_EPI_P] + 1]
    zero = alpha - alpha
    if code == RELU:
        for j in range(y.shape[0]):
            v = y[j]
            y[j] = v if v > zero else zero
    elif code == LEAKY_RELU:
        for j in range(y.shape[0]):
            v = y[j]
            y[j] = v if v >= zero else alpha * v
    elif code == CLIP:
        for j in range(y.shape[0]):
            v = y[j]
            y[j] = alpha if v < alpha else (beta if v > beta else v)


# ---- the activation layer: a function applied elementwise, or softmax / log-softmax over each row ------

@jit
def activation_step(X, Y, P, S, SC, m):
    """Y = act(X) elementwise, or softmax / log-softmax along one axis of each frame: the frame seen as
    (outer, meta[M_HO] = the axis's length, inner), outer = meta[M_H], inner = meta[M_D] (all 0 for a 1-D frame:
    1, F, 1)."""
    code = m[M_CODE]
    alpha, beta = P[0], P[1]
    n, F = X.shape
    if code == SOFTMAX or code == LOG_SOFTMAX:
        outer, A, inner = m[M_H], m[M_HO], m[M_D]
        if A == 0:   # a 1-D frame
            outer, A, inner = 1, F, 1
        for r in range(n):
            x = X[r]
            y = Y[r]
            for a in range(outer):
                for b in range(inner):
                    base = a * A * inner + b
                    mx = x[base]
                    for j in range(1, A):
                        v = x[base + j * inner]
                        mx = v if v > mx else mx
                    total = x[base] - x[base]
                    for j in range(A):
                        total += np.exp(x[base + j * inner] - mx)
                    if code == SOFTMAX:
                        for j in range(A):
                            y[base + j * inner] = np.exp(x[base + j * inner] - mx) / total
                    else:
                        lt = np.log(total)
                        for j in range(A):
                            y[base + j * inner] = x[base + j * inner] - mx - lt
    elif code == RELU:      # (the commonest alone: a loop without the per-element dispatch vectorizes)
        for r in range(n):
            x = X[r]
            y = Y[r]
            for j in range(F):
                v = x[j]
                y[j] = v if v > 0 else v - v
    else:
        for r in range(n):
            x = X[r]
            y = Y[r]
            for j in range(F):
                y[j] = apply_layer(code, alpha, beta, x[j])


def activation_entry(x, y, p, s, sc, meta, n):
    """The C entry point (engine.kernels.entry.compile_entry): activation_step over raw pointers."""
    m = carray(meta, (meta[M_LEN],))
    activation_step(carray(x, (n, m[M_IN])), carray(y, (n, m[M_OUT])), carray(p, (m[M_PLEN],)),
                    carray(s, (n, m[M_STATE])), carray(sc, (n * m[M_SCRATCH],)), m)
