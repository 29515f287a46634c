"""numba-compiled kernels: typed, allocation-free, writing into caller buffers.

layout.py       the packed (params, meta) layout shared with the packers (engine/layers/)
linalg.py       the register-tiled panel accumulation and flat-buffer views every weighted kernel shares
recurrence.py   what the recurrent sequence kernels share (chunked projections, the BLAS path's load/store)
lstm.py gru.py rnn.py dense.py normalize.py
                one kind's kernels each: its step over n rows (and sequences) and its C entry point
activations.py  exact and fast activation functions, and the activation layer's kernel
entry.py        compiling a kind's C entry point for a dtype

Design (cache invalidation): numba's on-disk cache keys each function by the timestamp of its OWN source
file, not of the functions it inlines from other files, so after an edit to cells.py the cached
``ops._lstm_c`` would still run the old cell code. Before any kernel is decorated, this package hashes
all kernel sources (and the JIT config) and, when the hash differs from the one stored beside numba's
in-tree cache, removes that cache, so every kernel recompiles from current sources once.
"""

import hashlib
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
_SOURCES = tuple(sorted(f for f in os.listdir(_HERE) if f.endswith(".py"))) + (os.path.join("..", "config.py"),)
_STAMP = "rnnjit-kernel-sources.sha256"


def _invalidate_stale_cache():
    digest = hashlib.sha256()
    for name in _SOURCES:
        with open(os.path.join(_HERE, name), "rb") as fh:
            digest.update(fh.read())
    current = digest.hexdigest()
    cache = os.path.join(_HERE, "__pycache__")
    stamp = os.path.join(cache, _STAMP)
    try:
        with open(stamp) as fh:
            if fh.read().strip() == current:
                return
    except OSError:
        pass
    try:
        os.makedirs(cache, exist_ok=True)
        for entry in os.listdir(cache):
            if entry.endswith((".nbi", ".nbc")):
                os.remove(os.path.join(cache, entry))
        with open(stamp, "w") as fh:
            fh.write(current)
    except OSError:  # a read-only install: numba then caches in its user-wide directory, keyed the same way
        pass


_invalidate_stale_cache()
