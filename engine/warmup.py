"""Compiling ahead of time: ``engine.warmup(...)`` and ``rnnjit warmup``.

Design: every kernel is compiled by numba on its first use and written to numba's on-disk cache (``cache=True``,
engine/config.py), so only the first process on a machine (or in a container image) pays for it: about 8-10 s
per recurrent cell kind and dtype for the step, and as much again for ``Model.run``'s sequence kernels. A
process that finds them in the cache loads them in milliseconds. ``warmup`` runs a model once through every
path a user can take (one stream step, ``run`` below and at the BLAS batch), so that an image built with
``rnnjit warmup model.onnx`` starts its services with nothing left to compile. Where the cache lives: numba's
``NUMBA_CACHE_DIR`` when set, else a ``__pycache__`` beside the engine's modules (or, where that is not
writable, numba's per-user cache directory); ``cache_dir()`` says which.
"""

import os
import time

import numpy as np


def cache_dir():
    """The directory numba writes rnnjit's compiled kernels to (and loads them from)."""
    from numba.core.caching import FunctionCache

    from .kernels.lstm import lstm_entry

    return os.path.dirname(FunctionCache(lstm_entry)._cache_path) if FunctionCache(lstm_entry)._cache_path \
        else os.environ.get("NUMBA_CACHE_DIR", "")


def _zeros(model, lead):
    xs = [np.zeros(lead + tuple(shape), model.dtype if dtype != "int64" else np.int64)
          for shape, dtype in model.inputs.values()]
    return xs[0] if len(xs) == 1 else tuple(xs)


def warmup(*models, dtype=None):
    """Compile (or load from numba's cache) every kernel the given models use: each a Model, a ModelSpec or a
    path ``engine.load`` reads (``dtype`` applies to specs and paths). Returns what it did: the kernels compiled
    (not found in the cache), the numba functions compiled in all, and the seconds it took."""
    from numba.core.event import install_recorder

    from . import io
    from .kernels import entry
    from .layers.recurrent import BLAS_MIN_BATCH
    from .model import Model
    from .spec import ModelSpec

    t0, before = time.perf_counter(), len(entry.COMPILED)
    with install_recorder("numba:compile") as rec:
        for m in models:
            if isinstance(m, ModelSpec):
                m = Model(m, dtype=dtype)
            elif not isinstance(m, Model):
                m = io.load(m, **({} if dtype is None else {"dtype": dtype}))
            if m.streamable:
                m.stream().step(_zeros(m, ()))
            for batch in (1, BLAS_MIN_BATCH):   # run()'s compiled recurrence, and its BLAS path
                m.run(_zeros(m, (batch, 2)))
    compiles = sum(1 for _, event in rec.buffer if event.is_start)
    return {"kernels compiled": [f"{name} {dt}" for name, dt, _ in entry.COMPILED[before:]],
            "functions compiled": compiles, "seconds": time.perf_counter() - t0}


def default_specs(dtype="float32"):
    """Small models of every recurrent cell (with the default activations and with any) and the usual heads: what
    ``rnnjit warmup`` with no file compiles."""
    from .spec import GRU, LSTM, RNN, Activation, Dense, ModelSpec

    rng = np.random.default_rng(0)
    n_in, H = 4, 8

    def w(G):
        return {"weight_ih": rng.normal(size=(G * H, n_in)), "weight_hh": rng.normal(size=(G * H, H))}

    # each cell twice: with the default activations (their own entry point) and with a clip, which takes the
    # generic one that every other ONNX activation set uses too
    return [ModelSpec([cell(n_in, H, w(G), clip=clip), Dense(rng.normal(size=(2, H))), Activation("sigmoid")],
                      dtype=dtype)
            for cell, G in ((LSTM, 4), (GRU, 3), (RNN, 1)) for clip in (None, 1e4)]
