"""Pure-Python twin of the compiled call layer (engine/_ext/_stepcore.pyx): same class, same signatures.

Used when the Cython extension is not built, or when ``RNNJIT_PUREPYTHON=1``. It calls the very same
numba kernels (each kind's ``step``, through numba's dispatcher, which releases the GIL) on numpy views of the
same buffers, so results are identical; only the per-call overhead differs (a few microseconds per step).
"""

import threading

import numpy as np

from ..kernels.layout import M_OUT, M_STATE


class StepCore:
    """Steps a packed model for ``n`` rows (streams) per call. Build it through Model.stream(s)."""

    TAKES_ADDRESSES = False  # its kernels: each layer's step dispatcher

    def __init__(self, kernels, n, in_size, out_size, dtype, params, metas, states, scratch, bufs, single, checker):
        if getattr(self, "_ready", False):
            raise RuntimeError("StepCore is already initialized")
        nops = len(params)
        if not (len(kernels) == len(metas) == len(states) == nops and len(bufs) == nops - 1) or nops == 0:
            raise ValueError("StepCore: kernels, params, metas and states need one entry per layer, bufs one fewer")
        dt = np.dtype(dtype)
        for i in range(nops):
            for a, want in ((params[i], dt), (states[i], dt), (metas[i], np.dtype("int64"))):
                if type(a) is not np.ndarray or a.dtype != want or not a.flags.c_contiguous:
                    raise TypeError(f"StepCore: layer {i} buffers must be C-contiguous {want} ndarrays")
        self._n, self._in_size, self._out_size, self._dtype, self._single = n, in_size, out_size, dt, single
        self._ops = []
        for i in range(nops):
            m = metas[i]
            y = bufs[i].reshape(n, m[M_OUT]) if i < nops - 1 else None
            self._ops.append((kernels[i], params[i], states[i].reshape(n, m[M_STATE]), m, y))
        self._scratch = scratch
        self._checker = checker
        self._busy = threading.Lock()
        self._ready = True

    def _run(self, x, y):
        n = self._n
        src = x.reshape(n, -1)
        last = len(self._ops) - 1
        for i, (step, params, state, meta, buf) in enumerate(self._ops):
            dst = y.reshape(n, -1) if i == last else buf
            step(src, dst, params, state, self._scratch, meta)
            src = dst

    def _fits(self, a, ndim, d0, d1):
        return (type(a) is np.ndarray and a.dtype == self._dtype and a.ndim == ndim and a.flags.c_contiguous
                and a.shape[0] == d0 and (ndim == 1 or a.shape[1] == d1))

    def _enter(self):
        if not getattr(self, "_ready", False):
            raise RuntimeError("this stream was not built by Model.stream()/Model.streams()")
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("this stream is in use by another thread (stepping it, or reading or writing its "
                               "state); give each thread its own stream (model.stream() is cheap)")

    def _take(self):
        """Hold the stream for a state operation of the Python side (reset, get_state, set_state, to_bytes):
        the same lock ``step`` holds, so either refuses while the other runs."""
        self._enter()

    def _give(self):
        """Release what ``_take`` held."""
        self._busy.release()

    def step(self, x, out=None):
        """Advance one timestep. x: (input_size,) for a stream, (n, input_size) for n streams.

        Returns the output, (output_size,) or (n, output_size): a new array, or ``out`` when given.
        """
        single = self._single
        ndim, d0 = (1, self._in_size) if single else (2, self._n)
        if not self._fits(x, ndim, d0, self._in_size):
            x = self._checker.coerce_input(x)
        if out is None:
            out = np.empty((self._out_size,) if single else (self._n, self._out_size), self._dtype)
        elif not self._fits(out, ndim, self._out_size if single else self._n, self._out_size) \
                or not out.flags.writeable:
            self._checker.bad_out(out)
        self._enter()
        try:
            self._run(x, out)
        finally:
            self._busy.release()
        return out

    def step_n(self, X, out=None):
        """Advance T timesteps in one call: X (T, input_size) -> (T, output_size) (single stream)."""
        if not self._single:
            raise TypeError("step_n steps one stream; for many streams call step once per timestep")
        if not (type(X) is np.ndarray and X.ndim == 2 and self._fits(X, 2, X.shape[0], self._in_size)):
            X = self._checker.coerce_sequence(X)
        T = X.shape[0]
        if out is None:
            out = np.empty((T, self._out_size), self._dtype)
        elif not self._fits(out, 2, T, self._out_size) or not out.flags.writeable:
            self._checker.bad_out(out, T)
        self._enter()
        try:
            for t in range(T):
                self._run(X[t], out[t])
        finally:
            self._busy.release()
        return out

    @property
    def releases_gil(self):
        """Always True here: numba's dispatcher releases the GIL for every kernel call. (The compiled layer
        holds it for steps too small for the release to pay.)"""
        return True
