"""The dtype a converted model runs in when the caller does not say: the file's own.

A file whose floating-point weights are all float64 loads as a float64 model (a float64 GRU checkpoint then
matches torch's float64 to 1e-15, where converting to float32 left it 4e-7 off); anything else (float32, half
precision, a mix) loads as float32. ``dtype=`` overrides it in every format.
"""

import numpy as np


def file_dtype(dtypes):
    """"float64" when every floating-point dtype among ``dtypes`` is float64, else "float32"."""
    floats = [np.dtype(d) for d in dtypes if np.dtype(d).kind == "f"]
    return "float64" if floats and all(d == np.float64 for d in floats) else "float32"


def arrays_dtype(arrays):
    """``file_dtype`` of the arrays' dtypes (objects without a numpy dtype are left out)."""
    out = []
    for a in arrays:
        try:
            out.append(np.dtype(a.dtype))
        except (AttributeError, TypeError):
            continue
    return file_dtype(out)
