"""The checks every layer's constructor makes on what it is handed: numbers, integers, arrays and their shapes.

Each raises SpecError naming the layer (``where`` / ``owner``), what was expected and what came instead.
"""

import math

import numpy as np

from ..errors import SpecError


def _f(value, what, owner="layer"):
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{owner}: {what} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise SpecError(f"{owner}: {what} must be finite, got {out}")
    return out


def _array(value, what, where, ndim):
    """A read-only float copy of ``value`` (float32 stays float32, anything else becomes float64)."""
    if value is None:
        return None
    try:
        arr = np.array(value, copy=True)
    except Exception as exc:  # noqa: BLE001 - report what the caller handed us
        raise SpecError(f"{where}: {what} is not an array ({exc})") from None
    if arr.dtype.kind not in "fiub":
        raise SpecError(f"{where}: {what} must hold numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32 if arr.dtype == np.float32 else np.float64, copy=False)
    if arr.ndim != ndim:
        raise SpecError(f"{where}: {what} must have {ndim} dimension(s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise SpecError(f"{where}: {what} holds NaN or infinite values")
    arr.setflags(write=False)
    return arr

def _expect_shape(arr, shape, what, where):
    if arr is not None and arr.shape != tuple(shape):
        raise SpecError(f"{where}: {what} must have shape {tuple(shape)}, got {arr.shape}")

def _positive_int(value, what, where, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SpecError(f"{where}: {what} must be an integer >= {minimum}, got {value!r}")
    return int(value)
