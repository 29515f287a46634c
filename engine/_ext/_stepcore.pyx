# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The compiled call layer: Python -> numba kernel in about a tenth of a microsecond.

Design: a numba dispatcher call costs ~0.4 us plus ~0.11 us per array argument, more than the kernel
itself at small sizes. ``StepCore`` instead holds, in C fields, the address of each layer's numba
``@cfunc`` (its kind's entry point, ``engine.kernels.entry.compile_entry``) and raw pointers to every packed
weight, state and scratch buffer, all allocated once by the Python side (engine/session.py), which also keeps
them alive. ``step`` checks
its input with a few C comparisons (exact ndarray, dtype, C-contiguous, shape), releases the GIL and
calls the kernel once per layer (holding the GIL instead when the call is too small for the release to pay,
see ``GIL_RELEASE_WORK``). Anything off the fast path (a list, float64 into a float32 model, a
strided view) goes to the InputChecker it was handed (engine/session.py), which converts or raises the
engine's ShapeError.

The pure-Python twin (engine/_ext/twin.py) has the same class, methods and signatures.
"""

cimport numpy as cnp
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

cnp.import_array()

# Releasing and retaking the GIL costs ~50 ns, a sixth of a whole LSTM 8x32 step, and lets another thread
# run Python for only as long as the kernel takes. Like numpy's NPY_BEGIN_THREADS_THRESHOLDED, a call
# releases it only when it does at least this much work: parameters read per step (about one multiply-add
# each) x rows x timesteps. 16384 is an LSTM of (input + hidden) x 4 hidden = 16K, e.g. 32x32 or 8x56, whose
# kernel takes ~0.5 us; a step_n of 100 timesteps of the smallest model clears it too.
cdef int64_t _GIL_WORK = 16384
GIL_RELEASE_WORK = _GIL_WORK

ctypedef void (*op_t)(void *x, void *y, void *params, void *state, void *scratch, int64_t *meta,
                      int64_t n) noexcept nogil


cdef class StepCore:
    """Steps a packed model for ``n`` rows (streams) per call. Build it through Model.stream(s)."""

    TAKES_ADDRESSES = True   # its kernels: the address of each layer's C entry point

    cdef op_t *fns
    cdef int nops
    cdef int64_t n, in_size, out_size, itemsize
    cdef int typenum
    cdef bint single, ready, busy
    cdef int64_t work  # parameters x rows read per step: the GIL is released from _GIL_WORK on
    cdef void **params
    cdef void **states
    cdef void **bufs
    cdef int64_t **metas
    cdef void *scratch
    cdef object _keep
    cdef object checker

    def __init__(self, kernels, n, in_size, out_size, dtype, params, metas, states, scratch, bufs, single, checker):
        """``kernels``: per layer, the address of its C entry point (the twin takes step dispatchers here).
        ``checker``: the slow path for input off the fast one (engine.session.InputChecker)."""
        cdef int i
        cdef cnp.ndarray arr
        if self.ready:
            raise RuntimeError("StepCore is already initialized")
        self.nops = len(params)
        if not (len(kernels) == len(metas) == len(states) == self.nops and len(bufs) == self.nops - 1) \
                or self.nops == 0:
            raise ValueError("StepCore: kernels, params, metas and states need one entry per layer, bufs one fewer")
        self.n, self.in_size, self.out_size = n, in_size, out_size
        self.single = single
        dt = cnp.dtype(dtype)
        self.typenum = dt.num
        self.itemsize = dt.itemsize
        self._keep = (list(params), list(metas), list(states), scratch, list(bufs))
        self.checker = checker
        self.params = <void **>malloc(self.nops * sizeof(void *))
        self.states = <void **>malloc(self.nops * sizeof(void *))
        self.bufs = <void **>malloc(self.nops * sizeof(void *))
        self.metas = <int64_t **>malloc(self.nops * sizeof(int64_t *))
        self.fns = <op_t *>malloc(self.nops * sizeof(op_t))
        if self.params == NULL or self.states == NULL or self.bufs == NULL or self.metas == NULL \
                or self.fns == NULL:
            raise MemoryError()
        for i in range(self.nops):
            if not isinstance(kernels[i], int) or not kernels[i]:
                raise ValueError(f"StepCore: layer {i} has no kernel address")
            self.fns[i] = <op_t><size_t>kernels[i]
            for a, want in ((params[i], dt), (states[i], dt), (metas[i], cnp.dtype("int64"))):
                if type(a) is not cnp.ndarray or a.dtype != want or not a.flags.c_contiguous:
                    raise TypeError(f"StepCore: layer {i} buffers must be C-contiguous {want} ndarrays")
            self.params[i] = cnp.PyArray_DATA(<cnp.ndarray>params[i])
            self.states[i] = cnp.PyArray_DATA(<cnp.ndarray>states[i])
            self.metas[i] = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>metas[i])
            self.bufs[i] = NULL
            if i < self.nops - 1:
                arr = bufs[i]
                self.bufs[i] = cnp.PyArray_DATA(arr)
        arr = scratch
        self.scratch = cnp.PyArray_DATA(arr)
        self.work = n * sum(int(cnp.PyArray_SIZE(<cnp.ndarray>p)) for p in params)
        self.ready = True

    def __dealloc__(self):
        free(self.params)
        free(self.states)
        free(self.bufs)
        free(self.metas)
        free(self.fns)

    cdef inline void _run(self, void *x, void *y) noexcept nogil:
        cdef int i
        cdef void *src = x
        cdef void *dst
        for i in range(self.nops):
            dst = y if i == self.nops - 1 else self.bufs[i]
            self.fns[i](src, dst, self.params[i], self.states[i], self.scratch, self.metas[i], self.n)
            src = dst

    cdef inline void _run_steps(self, char *xp, char *yp, int64_t T, int64_t xstride, int64_t ystride) noexcept nogil:
        cdef int64_t t
        for t in range(T):
            self._run(xp + t * xstride, yp + t * ystride)

    cdef inline bint _fits(self, object a, int ndim, int64_t d0, int64_t d1) noexcept:
        """a is an exact ndarray of our dtype, C-contiguous, with shape (d0,) or (d0, d1)."""
        cdef cnp.ndarray arr
        if type(a) is not cnp.ndarray:
            return False
        arr = <cnp.ndarray>a
        if cnp.PyArray_TYPE(arr) != self.typenum or cnp.PyArray_NDIM(arr) != ndim \
                or not cnp.PyArray_IS_C_CONTIGUOUS(arr):
            return False
        if cnp.PyArray_DIMS(arr)[0] != d0:
            return False
        return ndim == 1 or cnp.PyArray_DIMS(arr)[1] == d1

    cdef inline int _enter(self) except -1:
        # check-and-set with the GIL held and no Python code in between: atomic against other threads
        if not self.ready:
            raise RuntimeError("this stream was not built by Model.stream()/Model.streams()")
        if self.busy:
            raise RuntimeError("this stream is in use by another thread (stepping it, or reading or writing its "
                               "state); give each thread its own stream (model.stream() is cheap)")
        self.busy = True
        return 0

    def _take(self):
        """Hold the stream for a state operation of the Python side (reset, get_state, set_state, to_bytes):
        the same busy flag ``step`` holds, so either waits for nothing and refuses while the other runs."""
        self._enter()

    def _give(self):
        """Release what ``_take`` held."""
        self.busy = False

    def step(self, x, out=None):
        """Advance one timestep. x: (input_size,) for a stream, (n, input_size) for n streams.

        Returns the output, (output_size,) or (n, output_size): a new array, or ``out`` when given
        (then nothing is allocated).
        """
        cdef int ndim = 1 if self.single else 2
        cdef int64_t d0 = self.in_size if self.single else self.n
        cdef cnp.npy_intp dims[2]
        cdef void *xp
        cdef void *yp
        if not self._fits(x, ndim, d0, self.in_size):
            x = self.checker.coerce_input(x)
        if out is None:
            if self.single:
                dims[0] = self.out_size
            else:
                dims[0] = self.n
                dims[1] = self.out_size
            out = cnp.PyArray_EMPTY(ndim, dims, self.typenum, 0)
        elif not self._fits(out, ndim, self.out_size if self.single else self.n, self.out_size) \
                or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
            self.checker.bad_out(out)
        xp = cnp.PyArray_DATA(<cnp.ndarray>x)
        yp = cnp.PyArray_DATA(<cnp.ndarray>out)
        self._enter()
        try:
            if self.work >= _GIL_WORK:
                with nogil:
                    self._run(xp, yp)
            else:
                self._run(xp, yp)
        finally:
            self.busy = False
        return out

    def step_n(self, X, out=None):
        """Advance T timesteps in one call: X (T, input_size) -> (T, output_size) (single stream)."""
        cdef cnp.ndarray xa, ya
        cdef int64_t T
        cdef char *xp
        cdef char *yp
        cdef int64_t xstride, ystride
        cdef cnp.npy_intp dims[2]
        if not self.single:
            raise TypeError("step_n steps one stream; for many streams call step once per timestep")
        if type(X) is cnp.ndarray and cnp.PyArray_NDIM(<cnp.ndarray>X) == 2:
            T = cnp.PyArray_DIMS(<cnp.ndarray>X)[0]
        else:
            X = self.checker.coerce_sequence(X)
            T = X.shape[0]
        if not self._fits(X, 2, T, self.in_size):
            X = self.checker.coerce_sequence(X)
        if out is None:
            dims[0] = T
            dims[1] = self.out_size
            out = cnp.PyArray_EMPTY(2, dims, self.typenum, 0)
        elif not self._fits(out, 2, T, self.out_size) or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
            self.checker.bad_out(out, T)
        xa = X
        ya = out
        xp = <char *>cnp.PyArray_DATA(xa)
        yp = <char *>cnp.PyArray_DATA(ya)
        xstride = self.in_size * self.itemsize
        ystride = self.out_size * self.itemsize
        self._enter()
        try:
            if self.work * T >= _GIL_WORK:
                with nogil:
                    self._run_steps(xp, yp, T, xstride, ystride)
            else:
                self._run_steps(xp, yp, T, xstride, ystride)
        finally:
            self.busy = False
        return out

    @property
    def releases_gil(self):
        """Whether ``step`` runs the kernels without the GIL (False for models too small for it to pay;
        ``step_n`` releases it when its timesteps together are large enough)."""
        return self.work >= _GIL_WORK
