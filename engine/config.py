"""All JIT settings in one place, and the one wrapper that applies them.

Design: the kernels only vectorize with fast-math flags and ``error_model="numpy"`` (otherwise every float
division carries a ZeroDivision branch and LLVM keeps strict FP ordering), ``nogil=True`` lets the Cython
layer and threads run them without the GIL, and ``cache=True`` writes the compiled machine code next to the
module so a second process loads it instead of recompiling (numba keys the cache by source file, function
and signature, and checks the source's timestamp).

Environment variables (read once, at import):

``RNNJIT_PUREPYTHON=1``
    use the pure-Python twin of the compiled call layer even when the Cython extension is built
    (it calls the very same numba kernels, only the Python -> kernel crossing differs).
``RNNJIT_NO_CACHE=1``
    do not read or write numba's on-disk cache (for measuring cold compile times).
"""

import os

import numba

PURE_PYTHON = os.environ.get("RNNJIT_PUREPYTHON", "").strip() not in ("", "0")
CACHE = os.environ.get("RNNJIT_NO_CACHE", "").strip() in ("", "0")

# LLVM fast-math flags, all but two: "arcp" (x / y may become x * approx(1 / y)) and "afn" (approximate
# library functions). With them, divisions compile to a 14-bit reciprocal estimate plus one Newton step,
# which cost float64 its exactness (7e-9 off NumPy) and float32 a factor 4 in error; without them the
# gate loops still vectorize (reassociation and no-NaN/Inf/signed-zero assumptions are what they need).
FASTMATH = {"nnan", "ninf", "nsz", "contract", "reassoc"}

# Flags for every kernel: see the module docstring for why each one is here.
JIT_OPTIONS = dict(nogil=True, fastmath=FASTMATH, error_model="numpy", cache=CACHE)
# C-callable kernels (numba @cfunc) take the same flags but nogil, which only applies to dispatchers.
CFUNC_OPTIONS = dict(fastmath=FASTMATH, error_model="numpy", cache=CACHE)
# numba overloads (the activation functions kernels inline): the code-generation flags alone.
OVERLOAD_OPTIONS = dict(fastmath=FASTMATH, error_model="numpy")


def jit(fn=None, **overrides):
    """``numba.njit`` with the project's flags; ``overrides`` change single flags for one function."""
    options = dict(JIT_OPTIONS, **overrides)
    if fn is None:
        return lambda f: numba.njit(**options)(f)
    return numba.njit(**options)(fn)


def cfunc(signature, fn):
    """``numba.cfunc`` with the project's flags (compiles now, or loads from the cache)."""
    return numba.cfunc(signature, **CFUNC_OPTIONS)(fn)
