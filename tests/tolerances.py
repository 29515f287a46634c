"""Every numerical tolerance the suite uses, in one place, with the reason for each number."""

# Engine vs PyTorch / Keras / onnxruntime, float32: the parity bar. Our float32 kernels have their own
# tanh and sigmoid (within ACTIVATION_F32) and a different summation order than MKL/oneDNN; over T=2000 steps of
# a contracting recurrence the difference stays below this.
PARITY_F32 = 1e-5
# The float32 tanh and sigmoid (engine/kernels/activations.py) against float64, absolute: e^-|x| comes out of a
# polynomial 3.8e-9 off and about four float32 roundings (u = 2^-24 relative each: the range reduction, the
# polynomial's last steps, the scaling), the fraction (1 - e) / (1 + e) or 1 / (1 + e) out of two more and the
# division: at most ~7u relative on a value at most 1, bounded here by 8u = 2^-21. Measured: 8.9e-8 (1.5u).
ACTIVATION_F32 = 2.0 ** -21
# sigmoid relative to itself in its lower tail (x down to -80, values to 1.8e-35): the same roundings on e^x,
# the same bound; the rational tanh it replaced was off there by up to 12% of the value.
SIGMOID_TAIL_RELATIVE_F32 = 2.0 ** -21
# float64 runs exact math (np.tanh/np.exp); only summation order differs: ~1e-15 per step.
PARITY_F64 = 1e-9
# step() over a sequence vs run() on it, float32: same cell arithmetic, but run's sequence kernel sums each
# gate's input projection (made a few timesteps at a time) and its recurrent part in two accumulations where
# step makes one over [x, h]: a different summation order, a few ulps per step. On
# tests/test_streams.py's model with contracting recurrent weights (tests.helpers.random_weights), 5,000
# seeds gave at most 4.8e-7 over 300 steps. (With the raw uniform draw the ReLU layer blew up to 1e20 and
# 0.7% of seeds exceeded 1e-6: float32 rounding amplified each step, not a step/run mismatch.)
STEP_VS_RUN_F32 = 1e-6
STEP_VS_RUN_F64 = 1e-12
# The same over 500,000 steps (tests/test_reliability.py), chunked step_n vs one run: the model contracts, so
# rounding does not accumulate (7.2e-7 measured on an AVX-512 machine), but the kernels' summation order
# follows the instruction set they are compiled for; a single fixed draw gets the parity bar's margin.
LONG_STEP_VS_RUN_F32 = 1e-5
# run() at batch >= BLAS_MIN_BATCH (one BLAS GEMM of [x_t, H_t-1] per timestep) vs the engine's own
# blocked accumulation: two summation orders of every gate pre-activation, each within PARITY of the
# float64 truth; over 20+ steps they drift apart by ~1e-6 in float32.
BLAS_VS_KERNEL_F32 = 5e-6
BLAS_VS_KERNEL_F64 = 1e-12
# Saturated gates (tests/test_parity_torch.py: inputs to +-60, input weights to 90, pre-activations in the
# hundreds), float32 vs torch float64: a pre-activation sum of that size carries float32 rounding of ~1e-5
# before any activation, and a gate near its linear region passes it on. torch's own float32 is up to
# 5.3e-5 off its float64 there (10 seeds), the engine's up to 5.7e-5. A tanh clamped too early shows far
# above this bar: at 4.0 instead of 7.9 it errs by 6.7e-4.
SATURATED_F32 = 2e-4
# Engine float32 vs the float64 NumPy reference (features PyTorch lacks): float32 rounding of weights
# and inputs dominates.
REFERENCE_F32 = 1e-5
REFERENCE_F64 = 1e-9

# Where an output is large (an unbounded ReLU RNN reaches |y| ~ 100+), one float32 ulp exceeds 1e-5
# (ulp(169) = 1.5e-5), so no float32 computation can be within 1e-5 absolute. There the bar becomes a
# few ulps of the engine's dtype at that value; wherever 1e-5 is representable it stays 1e-5.
ULPS = 4


def assert_parity(actual, desired, atol, dtype, what="output"):
    """|actual - desired| <= max(atol, ULPS ulps of dtype at |desired|), elementwise, with a clear report. An
    infinity matches only the same infinity (a max pool over nothing but padding gives -inf, as torch does)."""
    import numpy as np

    actual = np.asarray(actual, np.float64)
    desired = np.asarray(desired, np.float64)
    assert actual.shape == desired.shape, f"{what}: shape {actual.shape} != expected {desired.shape}"
    resolution = ULPS * np.spacing(np.abs(desired).astype(dtype)).astype(np.float64)
    tol = np.maximum(atol, resolution)
    with np.errstate(invalid="ignore"):
        err = np.abs(actual - desired)
    bad = ~((err <= tol) | (np.isinf(desired) & (actual == desired)))  # NaN counts as bad
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err, -1)), err.shape)
        raise AssertionError(f"{what}: {int(bad.sum())} of {err.size} values off; worst at {i}: got {actual[i]!r}, "
                             f"expected {desired[i]!r}, error {err[i]:.3g} > tolerance {tol[i]:.3g} "
                             f"(atol {atol}, {ULPS} ulps of {np.dtype(dtype).name})")

# A real model's float32 outputs after long computations, relative to the largest output of the step:
# g2p-en's decoder emits logits up to ~20 through a 256-input head (row L1 norms up to 63), where 1e-5
# absolute is 4 float32 ulps. Independent float32 implementations differ there by their summation order
# (the package's own float32 is 6e-6 off the exact result, the engine's up to 1.2e-5 = 6e-7 relative);
# 8 float32 epsilons of the output scale bounds both. The float64 comparison is the exactness check.
REAL_MODEL_F32_RELATIVE = 8 * 2.0 ** -23

# The bar for real models shipped in packages, float32 against the package's own module: 1e-5 of the
# output scale (the largest |output| over the inputs compared). Summation orders differ between implementations;
# a layout or gate-order mistake is off by the output scale itself.
REAL_MODEL_SCALE_F32 = 1e-5

# The demo's shipped recording against the simulator re-run (tests/test_demo.py): the signal was generated in
# float64 and stored as float32, |x| < 2.3, so storage rounds it by at most half an ulp there (1.2e-7)...
FLOAT32_STORAGE = 1e-6
# ...and the float64 beat and artifact times are the same arithmetic repeated; what libm may differ by on
# another machine is far below this.
SAME_FLOAT64_ARITHMETIC = 1e-12
