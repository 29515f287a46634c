"""Activation functions for the kernels, exact and fast.

Design:
* ``tanh_`` and ``sigmoid_`` are numba overloads chosen by dtype at compile time: float32 gets a rational
  tanh (Eigen's coefficients, max abs error 2.8e-7 against float64 tanh) and sigmoid(x) = 0.5 tanh(x/2) + 0.5;
  float64 gets exact ``np.tanh`` / ``1 / (1 + exp(-x))``. This numba build has no vector math library,
  so ``np.tanh`` in a loop is a scalar libm call; the rational form is plain arithmetic and vectorizes.
* ``inline="always"``: without it numba emits a real call (with an error check) per element and LLVM
  will not vectorize the loop around it.
* Branch-free clamp: numba's ``min``/``max`` and ternaries become branches, which block vectorization;
  clamp(x, -c, c) = 0.5 * (|x + c| - |x - c|) compiles to two fabs and arithmetic.
* Constants are typed (``np.float32(...)``): a bare Python float is float64 in numba and would promote
  the float32 arithmetic around it.
* ``apply`` is the general ONNX activation (any code, alpha, beta) with exact math, used off the fast path.
"""

import math

import numpy as np
from numba import carray, types
from numba.extending import overload

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

# ---- Eigen's rational tanh for float32 (generic_fast_tanh_float) ------------------------------------
_A1, _A3, _A5, _A7, _A9, _A11, _A13 = (np.float32(v) for v in (
    4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
    -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16))
_B0, _B2, _B4, _B6 = (np.float32(v) for v in (
    4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06))
_CLAMP = np.float32(7.90531110763549805)  # tanh(x) rounds to +-1 in float32 beyond this
_HALF32 = np.float32(0.5)


def tanh_(x):
    """tanh: rational approximation for float32, exact for float64 (numba only)."""
    raise NotImplementedError("only callable from numba-compiled code")


def sigmoid_(x):
    """logistic sigmoid: via the fast tanh for float32, exact for float64 (numba only)."""
    raise NotImplementedError("only callable from numba-compiled code")


def _is_f32(x):
    return isinstance(x, types.Float) and x.bitwidth == 32


@overload(tanh_, jit_options=OVERLOAD_OPTIONS, inline="always")
def _tanh_overload(x):
    if _is_f32(x):
        def impl(x):
            x = _HALF32 * (abs(x + _CLAMP) - abs(x - _CLAMP))  # branch-free clamp to [-c, c]
            x2 = x * x
            p = x2 * _A13 + _A11
            p = x2 * p + _A9
            p = x2 * p + _A7
            p = x2 * p + _A5
            p = x2 * p + _A3
            p = x2 * p + _A1
            p = x * p
            q = x2 * _B6 + _B4
            q = x2 * q + _B2
            q = x2 * q + _B0
            return p / q
        return impl
    return lambda x: np.tanh(x)


@overload(sigmoid_, jit_options=OVERLOAD_OPTIONS, inline="always")
def _sigmoid_overload(x):
    if _is_f32(x):
        return lambda x: _HALF32 * tanh_(_HALF32 * x) + _HALF32
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
