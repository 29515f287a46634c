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
import logging
import time

import numpy as np
from numba import types

from ..config import CACHE, cfunc

log = logging.getLogger("rnnjit")
# what each process compiled (and did not find in numba's cache): (entry name, dtype, seconds), for warmup()
COMPILED = []

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
    name = _name(entry)
    cached = _in_cache(entry, signature)
    if not cached:   # say so before the seconds go: a first run should not look hung
        log.info("compiling the %s kernel for %s (its first use with this numba cache: a few seconds; "
                 "`rnnjit warmup` does it ahead of time)", name, np.dtype(dtype).name)
    t0 = time.perf_counter()
    fn = cfunc(signature, entry)
    if fn.cache_hits == 0:
        COMPILED.append((name, np.dtype(dtype).name, time.perf_counter() - t0))
        if cached:
            log.info("compiled the %s kernel for %s in %.1f s", name, np.dtype(dtype).name, COMPILED[-1][2])
    return fn


def _name(entry):
    """What messages and warmup's report call an entry point: its kind ("gru"), and for a cell's generic entry
    (every ONNX activation; its ``_fast`` twin is what layers with the default ones use) ", any activation"."""
    name = entry.__name__[:-len("_entry")] if entry.__name__.endswith("_entry") else entry.__name__
    if name.endswith("_fast"):
        return name[:-len("_fast")]
    return name + (", any activation" if getattr(entry, "generic", False) else "")


def _in_cache(entry, signature):
    """Whether numba's on-disk cache holds ``entry`` compiled for ``signature`` for this CPU (what cfunc will
    load instead of compiling)."""
    if not CACHE:
        return False
    try:
        from numba.core.caching import FunctionCache
        from numba.core.registry import cpu_target

        return FunctionCache(entry).load_overload(signature, cpu_target.target_context) is not None
    except Exception:  # noqa: BLE001 - a guess for a message only; cfunc itself decides
        return False
