"""Every numerical tolerance the suite uses, in one place, with the reason for each number."""

# Engine vs PyTorch / Keras / onnxruntime, float32: the parity bar. Our float32 kernels use a
# rational tanh (max abs error 2.8e-7) and a different summation order than MKL/oneDNN; over T=2000
# steps of a contracting recurrence the difference stays below this.
PARITY_F32 = 1e-5
# float64 runs exact math (np.tanh/np.exp); only summation order differs: ~1e-15 per step.
PARITY_F64 = 1e-9
# step() over a sequence vs run() on it, float32: same cell arithmetic, but run's input projection is a
# BLAS GEMM (different summation order than the stacked step kernel): a few ulps per step.
STEP_VS_RUN_F32 = 1e-6
STEP_VS_RUN_F64 = 1e-12
# Engine float32 vs the float64 NumPy reference (features PyTorch lacks): float32 rounding of weights
# and inputs dominates.
REFERENCE_F32 = 1e-5
REFERENCE_F64 = 1e-9
