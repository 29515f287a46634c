"""Pure-Python twin of the compiled call layer (engine/_ext/_stepcore.pyx): same class, same signatures.

Used when the Cython extension is not built, or when ``RNNJIT_PUREPYTHON=1``. It walks the same plan and calls
the very same numba kernels (each kind's ``step``, through numba's dispatcher, which releases the GIL) on numpy
views of the same buffers, so results are identical; only the per-call overhead differs (a few microseconds
per step).
"""

import threading

import numpy as np


class StepCore:
    """Steps a planned model for ``n`` rows (streams) per call. Build it through Model.stream(s)."""

    TAKES_ADDRESSES = False  # its kernels: each node's step dispatcher

    def __init__(self, kernels, wiring, n, dtype, params, metas, states, scratch, arena, edges, inputs, outputs,
                 single, checker, id_bounds=None, clocking=None, counter=None):
        if getattr(self, "_ready", False):
            raise RuntimeError("StepCore is already initialized")
        nops = len(params)
        if not (len(kernels) == len(metas) == len(states) == len(wiring) == nops) or nops == 0 \
                or not inputs or not outputs:
            raise ValueError("StepCore: kernels, wiring, params, metas and states need one entry per node")
        dt = np.dtype(dtype)
        for a in (arena, scratch):
            if type(a) is not np.ndarray or a.dtype != dt or not a.flags.c_contiguous:
                raise TypeError(f"StepCore: arena and scratch must be C-contiguous {dt} ndarrays")
        for i in range(nops):
            for a, want in ((params[i], dt), (states[i], dt), (metas[i], np.dtype("int64"))):
                if type(a) is not np.ndarray or a.dtype != want or not a.flags.c_contiguous:
                    raise TypeError(f"StepCore: node {i} buffers must be C-contiguous {want} ndarrays")
        self._n, self._dtype, self._single = n, dt, single
        self._in = [(e, int(np.prod(shape))) for e, shape, _ in inputs]
        self._out = [(e, int(np.prod(shape))) for e, shape, _ in outputs]
        e, shape, kind = inputs[0]
        oe, oshape, okind = outputs[0]
        self._clocking, self._counter = clocking, counter
        self._fired = [True] * nops
        self._simple = len(inputs) == 1 and len(outputs) == 1 and len(shape) == 1 and len(oshape) == 1 \
            and np.dtype(kind) == dt and np.dtype(okind) == dt and clocking is None
        if self._simple:
            self._in_size, self._out_size = shape[0], oshape[0]
        # per edge: its (n, size) view of the arena, or (graph inputs and outputs) the caller's array of the call
        self._edge = [None] * len(edges)
        self._ops = [(kernels[i], wiring[i][1], wiring[i][2], params[i], states[i].reshape(n, -1), metas[i])
                     for i in range(nops)]
        for k, (off, size) in enumerate(edges):
            if off >= 0:
                self._edge[k] = arena[off * n:(off + size) * n].reshape(n, size)
        self._scratch = scratch
        self._checker = checker   # it checks a graph's inputs, ids against their tables included (id_bounds)
        self._busy = threading.Lock()
        self._threads = 1
        self._ready = True

    def _run(self, xs, ys):
        n = self._n
        edge = self._edge
        for (e, size), x in zip(self._in, xs):
            edge[e] = x.reshape(n, size)
        for (e, size), y in zip(self._out, ys):
            edge[e] = y.reshape(n, size)
        if self._threads == 1:
            self._run_rows(edge, [op[4] for op in self._ops], self._scratch, self._fired)
            return
        # the compiled layer's split (set_threads), one half after the other here: the same rows, pointers and
        # scratch regions, so the twin checks what the threads compute
        a = (n + 1) // 2
        per = self._scratch.size // n
        fired_b = list(self._fired)
        for lo, hi, fired in ((0, a, self._fired), (a, n, fired_b)):
            self._run_rows([None if v is None else v[lo:hi] for v in edge], [op[4][lo:hi] for op in self._ops],
                           self._scratch[lo * per:], fired)

    def _run_rows(self, edge, states, scratch, fired):
        if self._clocking is None:
            for (step, ins, out, params, _, meta), state in zip(self._ops, states):
                step(*[edge[e] for e in ins], edge[out], params, state, scratch, meta)
            return
        gates, phases, _ = self._clocking
        for i, ((step, ins, out, params, _, meta), state) in enumerate(zip(self._ops, states)):
            if gates[i] >= 0 and not fired[gates[i]]:
                fired[i] = False
                continue
            fired[i] = phases[i] < 0 or state[0, phases[i]] == 0
            step(*[edge[e] for e in ins], edge[out], params, state, scratch, meta)

    def set_threads(self, threads):
        """Step the rows on ``threads`` threads (1 or 2). The compiled layer runs the two halves of the rows at
        once; the twin runs the same halves one after the other."""
        if threads not in (1, 2) or isinstance(threads, bool):
            raise ValueError(f"threads must be 1 or 2, got {threads}")
        if self._busy.locked():
            raise RuntimeError("this stream is in use by another thread")
        self._threads = 1 if self._n < 2 else threads

    @property
    def threads(self):
        """Threads a call steps the rows on (set_threads)."""
        return self._threads

    def _due(self, k):
        gate = self._clocking[2][k]
        return gate < 0 or self._fired[gate]

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

        Returns the output, (output_size,) or (n, output_size): a new array, or ``out`` when given. A model
        with several inputs takes them as a tuple in graph order or a dict by name, and returns a tuple.
        """
        if not self._simple:
            xs = self._checker.coerce_inputs(x, None)
            outs = self._checker.outputs(out, None, x)
            self._enter()
            try:
                self._run(xs, outs)
            finally:
                self._busy.release()
            result = out if isinstance(out, tuple) else (tuple(outs) if len(outs) > 1 else outs[0])
            if self._clocking is not None:   # an output with no frame due on this tick is None
                if len(outs) == 1:
                    return result if self._due(0) else None
                return tuple(r if self._due(k) else None for k, r in enumerate(result))
            return result
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
            self._run((x,), (out,))
        finally:
            self._busy.release()
        return out

    def step_n(self, X, out=None):
        """Advance T timesteps in one call: X (T, input_size) -> (T, output_size) (single stream); a model with
        several inputs takes a tuple (or dict) of (T, ...) arrays and returns a tuple."""
        if not self._single:
            raise TypeError("step_n steps one stream; for many streams call step once per timestep")
        if self._simple:
            if not (type(X) is np.ndarray and X.ndim == 2 and self._fits(X, 2, X.shape[0], self._in_size)):
                X = self._checker.coerce_sequence(X)
            T = X.shape[0]
            if out is None:
                out = np.empty((T, self._out_size), self._dtype)
            elif not self._fits(out, 2, T, self._out_size) or not out.flags.writeable:
                self._checker.bad_out(out, T)
            xs, outs = (X,), (out,)
        elif self._clocking is not None:
            xs = self._checker.coerce_inputs(X, True)
            T = xs[0].shape[0]
            self._enter()
            try:
                outs = self._checker.outputs(out, self._counter(T), X)
                written = [0] * len(outs)
                for t in range(T):
                    # an output not due on this tick is not written: its view past the end is never touched
                    self._run([x[t] for x in xs], [y[min(w, len(y) - 1)] if len(y) else np.empty(y.shape[1:], y.dtype)
                                                   for w, y in zip(written, outs)])
                    written = [w + self._due(k) for k, w in enumerate(written)]
            finally:
                self._busy.release()
            return tuple(outs) if len(outs) > 1 else outs[0]
        else:
            xs = self._checker.coerce_inputs(X, True)
            T = xs[0].shape[0]
            outs = self._checker.outputs(out, T, X)
        self._enter()
        try:
            for t in range(T):
                self._run([x[t] for x in xs], [y[t] for y in outs])
        finally:
            self._busy.release()
        return out if self._simple else (tuple(outs) if len(outs) > 1 else outs[0])

    @property
    def releases_gil(self):
        """Always True here: numba's dispatcher releases the GIL for every kernel call. (The compiled layer
        holds it for steps too small for the release to pay.)"""
        return True
