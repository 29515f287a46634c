"""Compiling a kind's C entry point.

Design: every stepped kind has the same C signature,

    void entry(T *x, T *y, T *params, T *state, T *scratch, int64 *meta, int64 n)

(a kind reading two edges, such as Add, takes ``T *a, T *b`` where one-input kinds take ``x``),

written out once per kind beside its kernel (``lstm_entry`` ...: numba cannot cache a closure, so no factory).
``compile_entry`` compiles one for a dtype on first use: a model compiles only the kinds it has (an LSTM alone:
8 s cold instead of 17 s for every kind in one function). The Cython call layer holds one such address per
layer; the pure-Python twin calls each kind's ``step`` dispatcher with arrays instead.
"""

import functools

import numpy as np
from numba import types

from ..config import cfunc

_NUMBA_TYPES = {"float32": types.float32, "float64": types.float64}


@functools.lru_cache(maxsize=None)
def compile_entry(dtype, entry, arity=1, reads_ids=False):
    """The C-callable form of ``entry`` (a kind's ``*_entry``) for ``dtype``; compiled (or loaded) on first use.
    A kind of ``arity`` 2 (two input edges) takes both inputs' pointers before ``y``; a kind that ``reads_ids``
    takes ``int64 *x``."""
    ptr = types.CPointer(_NUMBA_TYPES[np.dtype(dtype).name])
    ids = types.CPointer(types.int64)
    signature = types.void(*([ids if reads_ids else ptr] * arity), ptr, ptr, ptr, ptr, types.CPointer(types.int64),
                           types.int64)
    return cfunc(signature, entry)
