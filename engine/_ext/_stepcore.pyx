# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The compiled call layer: Python -> numba kernel in about a tenth of a microsecond.

Design: a numba dispatcher call costs ~0.4 us plus ~0.11 us per array argument, more than the kernel
itself at small sizes. ``StepCore`` instead holds, in C fields, the address of each node's numba
``@cfunc`` (its kind's entry point, ``engine.kernels.entry.compile_entry``) and raw pointers to every packed
weight, state, scratch and arena buffer, all allocated once by the Python side (engine/session.py), which also
keeps them alive. It walks the model's plan (engine/plan.py): per node, the C entry point called with the
pointers of the edges it reads and writes. Edges inside the graph live at static offsets in the arena; graph
inputs are read from the caller's arrays and graph outputs written into the caller's ``out`` arrays.

A model of one input and one output with 1-D frames (every chain) takes the fast path: ``step`` checks its
input with a few C comparisons (exact ndarray, dtype, C-contiguous, shape), releases the GIL and walks the
plan (holding the GIL instead when the call is too small for the release to pay, see ``GIL_RELEASE_WORK``).
Anything off the fast path (a list, float64 into a float32 model, a strided view), and every call of a model
with several inputs or outputs, goes through the InputChecker it was handed (engine/session.py), which
converts or raises the engine's ShapeError.

The pure-Python twin (engine/_ext/twin.py) has the same class, methods and signatures.
"""

cimport numpy as cnp
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free

cnp.import_array()

# A second thread for ``streams(n, threads=2)``: one worker per StepCore, started on first use, that steps the
# second half of the rows while the caller's thread steps the first. Each call hands it a new generation number;
# it spins for about 50 us waiting for the next (a service stepping every few microseconds never sleeps), then
# sleeps on a condition variable. The caller spins until the worker reports the generation done. A process that
# forks starts a new worker in the child on its first threaded call (the parent's thread does not exist there).
cdef extern from *:
    """
    #include <pthread.h>
    #include <unistd.h>
    #include <time.h>
    #if defined(__x86_64__) || defined(__i386__)
    #define RJ_RELAX() __builtin_ia32_pause()
    #elif defined(__aarch64__)
    #define RJ_RELAX() __asm__ __volatile__("yield")
    #else
    #define RJ_RELAX() ((void)0)
    #endif
    typedef void (*rj_task)(void *ctx, int part);
    typedef struct {
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        pid_t pid;                   /* the process whose thread this is; 0: none started */
        long gen, done;              /* atomics: the last generation handed out / finished */
        int quit;
        rj_task fn;
        void *ctx;
    } rj_pool;

    static double rj_now(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return t.tv_sec + 1e-9 * t.tv_nsec;
    }

    static void *rj_worker(void *arg) {
        rj_pool *p = (rj_pool *)arg;
        long seen = 0;               /* rj_dispatch starts it at generation 0, and may hand out 1 before it runs */
        for (;;) {
            long g;
            double until = rj_now() + 50e-6;
            unsigned spins = 0;
            while ((g = __atomic_load_n(&p->gen, __ATOMIC_ACQUIRE)) == seen) {
                RJ_RELAX();
                if ((++spins & 63) == 0 && rj_now() > until) {
                    pthread_mutex_lock(&p->mu);
                    while ((g = __atomic_load_n(&p->gen, __ATOMIC_ACQUIRE)) == seen)
                        pthread_cond_wait(&p->cv, &p->mu);
                    pthread_mutex_unlock(&p->mu);
                    break;
                }
            }
            seen = g;
            if (__atomic_load_n(&p->quit, __ATOMIC_ACQUIRE))
                return NULL;
            p->fn(p->ctx, 1);
            __atomic_store_n(&p->done, g, __ATOMIC_RELEASE);
        }
    }

    /* Run fn(ctx, 0) here and fn(ctx, 1) on the worker, both done on return. 0: done; -1: no worker could be
       started (then nothing ran). */
    static int rj_dispatch(rj_pool *p, rj_task fn, void *ctx) {
        long g;
        if (p->pid != getpid()) {
            pthread_mutex_init(&p->mu, NULL);
            pthread_cond_init(&p->cv, NULL);
            p->gen = p->done = 0;
            p->quit = 0;
            if (pthread_create(&p->thread, NULL, rj_worker, p) != 0) {
                p->pid = 0;
                return -1;
            }
            p->pid = getpid();
        }
        p->fn = fn;
        p->ctx = ctx;
        g = p->gen + 1;
        __atomic_store_n(&p->gen, g, __ATOMIC_RELEASE);
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        fn(ctx, 0);
        while (__atomic_load_n(&p->done, __ATOMIC_ACQUIRE) != g)
            RJ_RELAX();
        return 0;
    }

    static void rj_stop(rj_pool *p) {
        if (p->pid != getpid())
            return;                  /* never started, or started by the parent of this fork */
        __atomic_store_n(&p->quit, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&p->gen, p->gen + 1, __ATOMIC_RELEASE);
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        p->pid = 0;
    }
    """
    ctypedef void (*rj_task)(void *ctx, int part) noexcept nogil
    ctypedef struct rj_pool:
        pass
    int rj_dispatch(rj_pool *p, rj_task fn, void *ctx) nogil
    void rj_stop(rj_pool *p) nogil


cdef void _run_part(void *ctx, int part) noexcept nogil:
    (<StepCore>ctx)._run_rows(part)

# Releasing and retaking the GIL costs ~50 ns, a sixth of a whole LSTM 8x32 step, and lets another thread
# run Python for only as long as the kernel takes. Like numpy's NPY_BEGIN_THREADS_THRESHOLDED, a call
# releases it only when it does at least this much work: parameters read per step (about one multiply-add
# each) x rows x timesteps. 16384 is an LSTM of (input + hidden) x 4 hidden = 16K, e.g. 32x32 or 8x56, whose
# kernel takes ~0.5 us; a step_n of 100 timesteps of the smallest model clears it too.
cdef int64_t _GIL_WORK = 16384
GIL_RELEASE_WORK = _GIL_WORK
cdef enum:
    MAX_ARITY = 2
    MAX_IO = 8            # graph inputs and outputs the call layer takes
    MAX_FRAME_NDIM = 6    # frames of more axes go through the InputChecker

# the C entry points of one-input and two-input kinds (engine/kernels/entry.py)
ctypedef void (*op_t)(void *x, void *y, void *params, void *state, void *scratch, int64_t *meta,
                      int64_t n) noexcept nogil
ctypedef void (*op2_t)(void *a, void *b, void *y, void *params, void *state, void *scratch, int64_t *meta,
                       int64_t n) noexcept nogil


cdef class StepCore:
    """Steps a planned model for ``n`` rows (streams) per call. Build it through Model.stream(s)."""

    TAKES_ADDRESSES = True   # its kernels: the address of each node's C entry point

    cdef void **fns
    cdef int *arity
    cdef int *win            # per node, MAX_ARITY input edge indices
    cdef int *wout           # per node, its output edge index
    cdef int nops, nedges, nin, nout
    cdef void **edge         # per edge, where its frames are for this call
    cdef int *in_edge
    cdef int *out_edge
    cdef int64_t *in_bytes   # bytes of one row's frame, per graph input
    cdef int64_t *out_bytes
    # a graph's step without the checker: per input its typenum, frame ndim and dims, and the bound its ids
    # must stay under (-1: none); per output its frame ndim and dims
    cdef int in_typenum[MAX_IO]
    cdef int in_fnd[MAX_IO]
    cdef cnp.npy_intp in_fdims[MAX_IO * MAX_FRAME_NDIM]
    cdef int64_t in_count[MAX_IO]
    cdef int64_t in_bound[MAX_IO]
    cdef int out_fnd[MAX_IO]
    cdef cnp.npy_intp out_fdims[MAX_IO * MAX_FRAME_NDIM]
    cdef bint graph_fast     # the fields above describe every input and output
    cdef int64_t n, in_size, out_size, itemsize
    cdef int typenum
    cdef bint single, simple, ready, busy
    cdef int64_t work  # parameters x rows read per step: the GIL is released from _GIL_WORK on
    cdef void **params
    cdef void **states
    cdef int64_t **metas
    cdef void *scratch
    cdef object _keep
    cdef object _edges
    cdef object checker
    cdef tuple in_names
    # nodes that emit only on some ticks (engine/plan.py, Plan.clocking): per node the node whose output tick it
    # waits for (-1: every tick) and the offset of its phase in its state row (-1: none); per output its gate;
    # per node whether it emitted on the last tick (``fired``); ``counter(T)``: the frames each output gets in T
    # ticks, from the phases (Stream._due_counts)
    cdef bint clocked
    cdef int *gate
    cdef int64_t *phase_off
    cdef char *fired
    cdef int out_gate[MAX_IO]
    cdef object counter
    # threads (set_threads): the rows [0, n_a) step on the caller's thread, [n_a, n) on the worker, each with its
    # own pointers (edge_b, states_b, scratch_b, fired_b for the second part)
    cdef int nthreads
    cdef int64_t n_a
    cdef rj_pool *pool
    cdef void **edge_b
    cdef void **states_b
    cdef void *scratch_b
    cdef char *fired_b
    cdef int64_t *edge_row      # bytes of one row of each edge

    def __init__(self, kernels, wiring, n, dtype, params, metas, states, scratch, arena, edges, inputs, outputs,
                 single, checker, id_bounds=None, clocking=None, counter=None):
        """``kernels``: per node, the address of its C entry point (the twin takes step dispatchers here);
        ``wiring``: per node (arity, input edge indices, output edge index); ``edges``: per edge (its offset in
        the arena in elements per row, or -1 for a graph input or output; its frame size); ``inputs`` / ``outputs``: per
        graph input / output (edge index, frame shape, dtype name); ``checker``: the slow path
        (engine.session.InputChecker); ``id_bounds``: per graph input, the bound its integer ids must stay under
        (or None); ``clocking``: Plan.clocking() (None: every node runs on every tick), with ``counter(T)`` giving
        how many frames each output gets in the next T ticks."""
        cdef int i, k
        cdef char *base
        cdef int64_t off
        if self.ready:
            raise RuntimeError("StepCore is already initialized")
        self.nops, self.nedges, self.nin, self.nout = len(params), len(edges), len(inputs), len(outputs)
        if not (len(kernels) == len(metas) == len(states) == len(wiring) == self.nops) or self.nops == 0 \
                or self.nin == 0 or self.nout == 0:
            raise ValueError("StepCore: kernels, wiring, params, metas and states need one entry per node")
        dt = cnp.dtype(dtype)
        self.n = n
        self.single = single
        self.typenum = dt.num
        self.itemsize = dt.itemsize
        self._keep = (list(params), list(metas), list(states), scratch, arena)
        self._edges = [(int(off), int(size)) for off, size in edges]
        self.nthreads = 1
        self.checker = checker
        self.fns = <void **>calloc(self.nops, sizeof(void *))
        self.params = <void **>calloc(self.nops, sizeof(void *))
        self.states = <void **>calloc(self.nops, sizeof(void *))
        self.metas = <int64_t **>calloc(self.nops, sizeof(int64_t *))
        self.arity = <int *>calloc(self.nops, sizeof(int))
        self.win = <int *>calloc(self.nops * MAX_ARITY, sizeof(int))
        self.wout = <int *>calloc(self.nops, sizeof(int))
        self.edge = <void **>calloc(self.nedges, sizeof(void *))
        self.in_edge = <int *>calloc(self.nin, sizeof(int))
        self.out_edge = <int *>calloc(self.nout, sizeof(int))
        self.in_bytes = <int64_t *>calloc(self.nin, sizeof(int64_t))
        self.out_bytes = <int64_t *>calloc(self.nout, sizeof(int64_t))
        self.gate = <int *>calloc(self.nops, sizeof(int))
        self.phase_off = <int64_t *>calloc(self.nops, sizeof(int64_t))
        self.fired = <char *>calloc(self.nops, sizeof(char))
        if self.gate == NULL or self.phase_off == NULL or self.fired == NULL:
            raise MemoryError()
        if self.fns == NULL or self.params == NULL or self.states == NULL or self.metas == NULL \
                or self.arity == NULL or self.win == NULL or self.wout == NULL or self.edge == NULL \
                or self.in_edge == NULL or self.out_edge == NULL or self.in_bytes == NULL or self.out_bytes == NULL:
            raise MemoryError()
        for a, want in ((arena, dt), (scratch, dt)):
            if type(a) is not cnp.ndarray or a.dtype != want or not a.flags.c_contiguous:
                raise TypeError(f"StepCore: arena and scratch must be C-contiguous {want} ndarrays")
        base = <char *>cnp.PyArray_DATA(<cnp.ndarray>arena)
        for k in range(self.nedges):
            off = edges[k][0]
            if off >= 0:
                if off * self.n > cnp.PyArray_SIZE(<cnp.ndarray>arena):
                    raise ValueError(f"StepCore: edge {k} lies outside the arena")
                self.edge[k] = base + off * self.n * self.itemsize
        for i in range(self.nops):
            if not isinstance(kernels[i], int) or not kernels[i]:
                raise ValueError(f"StepCore: node {i} has no kernel address")
            self.fns[i] = <void *><size_t>kernels[i]
            arity, ins, out = wiring[i]
            if not 1 <= arity <= MAX_ARITY or len(ins) != arity or not all(0 <= e < self.nedges for e in ins) \
                    or not 0 <= out < self.nedges:
                raise ValueError(f"StepCore: node {i} is wired wrong: {wiring[i]}")
            self.arity[i] = arity
            for k in range(arity):
                self.win[i * MAX_ARITY + k] = ins[k]
            self.wout[i] = out
            for a, want in ((params[i], dt), (states[i], dt), (metas[i], cnp.dtype("int64"))):
                if type(a) is not cnp.ndarray or a.dtype != want or not a.flags.c_contiguous:
                    raise TypeError(f"StepCore: node {i} buffers must be C-contiguous {want} ndarrays")
            self.params[i] = cnp.PyArray_DATA(<cnp.ndarray>params[i])
            self.states[i] = cnp.PyArray_DATA(<cnp.ndarray>states[i])
            self.metas[i] = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>metas[i])
        for k, (e, shape, kind) in enumerate(inputs):
            self.in_edge[k] = e
            size = 1
            for s in shape:
                size *= s
            self.in_bytes[k] = size * cnp.dtype(kind).itemsize
        for k, (e, shape, kind) in enumerate(outputs):
            self.out_edge[k] = e
            size = 1
            for s in shape:
                size *= s
            self.out_bytes[k] = size * cnp.dtype(kind).itemsize
        if self.nin > MAX_IO or self.nout > MAX_IO:
            raise ValueError(f"the compiled call layer takes up to {MAX_IO} graph inputs and {MAX_IO} outputs")
        self.graph_fast = True
        self.in_names = tuple(checker.inputs[k][0] for k in range(self.nin))
        for k, (e, shape, kind) in enumerate(inputs):
            self.in_typenum[k] = cnp.dtype(kind).num
            self.in_fnd[k] = len(shape)
            self.in_count[k] = 1
            for i, d in enumerate(shape[:MAX_FRAME_NDIM]):
                self.in_fdims[k * MAX_FRAME_NDIM + i] = d
                self.in_count[k] *= d
            self.in_bound[k] = -1 if id_bounds is None or id_bounds[k] is None else id_bounds[k]
            self.graph_fast = self.graph_fast and len(shape) <= MAX_FRAME_NDIM
        for k, (e, shape, kind) in enumerate(outputs):
            self.out_fnd[k] = len(shape)
            for i, d in enumerate(shape[:MAX_FRAME_NDIM]):
                self.out_fdims[k * MAX_FRAME_NDIM + i] = d
            self.graph_fast = self.graph_fast and len(shape) <= MAX_FRAME_NDIM and cnp.dtype(kind) == dt
        e, shape, kind = inputs[0]
        oe, oshape, okind = outputs[0]
        self.clocked = clocking is not None
        for i in range(self.nops):
            self.gate[i] = -1
            self.phase_off[i] = -1
        for k in range(self.nout):
            self.out_gate[k] = -1
        if self.clocked:
            gates, phases, out_gates = clocking
            if len(gates) != self.nops or len(phases) != self.nops or len(out_gates) != self.nout or counter is None:
                raise ValueError("StepCore: clocking needs a gate and a phase per node, a gate per output and a counter")
            for i in range(self.nops):
                if not -1 <= gates[i] < i or not -1 <= phases[i] < cnp.PyArray_SIZE(<cnp.ndarray>states[i]):
                    raise ValueError(f"StepCore: node {i} is clocked wrong: gate {gates[i]}, phase {phases[i]}")
                self.gate[i] = gates[i]
                self.phase_off[i] = phases[i]
            for k in range(self.nout):
                if not -1 <= out_gates[k] < self.nops:
                    raise ValueError(f"StepCore: output {k} is clocked wrong: gate {out_gates[k]}")
                self.out_gate[k] = out_gates[k]
        self.counter = counter
        self.simple = self.nin == 1 and self.nout == 1 and len(shape) == 1 and len(oshape) == 1 \
            and cnp.dtype(kind) == dt and cnp.dtype(okind) == dt and not self.clocked
        if self.simple:   # (boundscheck is off: index a frame shape only where it is known to be 1-D)
            self.in_size, self.out_size = shape[0], oshape[0]
        self.scratch = cnp.PyArray_DATA(<cnp.ndarray>scratch)
        self.work = n * sum(int(cnp.PyArray_SIZE(<cnp.ndarray>p)) for p in params)
        self.ready = True

    def __dealloc__(self):
        if self.pool != NULL:
            with nogil:
                rj_stop(self.pool)
            free(self.pool)
        free(self.edge_b)
        free(self.states_b)
        free(self.fired_b)
        free(self.edge_row)
        free(self.fns)
        free(self.params)
        free(self.states)
        free(self.metas)
        free(self.arity)
        free(self.win)
        free(self.wout)
        free(self.edge)
        free(self.in_edge)
        free(self.out_edge)
        free(self.in_bytes)
        free(self.out_bytes)
        free(self.gate)
        free(self.phase_off)
        free(self.fired)

    cdef inline void _node(self, int i, void **edge, void **states, void *scratch, int64_t n) noexcept nogil:
        cdef int *w = self.win + i * MAX_ARITY
        if self.arity[i] == 1:
            (<op_t>self.fns[i])(edge[w[0]], edge[self.wout[i]], self.params[i], states[i], scratch, self.metas[i], n)
        else:
            (<op2_t>self.fns[i])(edge[w[0]], edge[w[1]], edge[self.wout[i]], self.params[i], states[i], scratch,
                                 self.metas[i], n)

    cdef inline void _run(self) noexcept nogil:
        """One tick of every row: on this thread, or split across two (set_threads)."""
        cdef int k
        if self.nthreads > 1:
            for k in range(self.nedges):
                self.edge_b[k] = <char *>self.edge[k] + self.n_a * self.edge_row[k]
            if rj_dispatch(self.pool, _run_part, <void *>self) == 0:
                return
        self._run_ptrs(self.edge, self.states, self.scratch, self.n, self.fired)

    cdef void _run_rows(self, int part) noexcept nogil:
        """One tick of the first (part 0) or second half of the rows: every row's kernels read and write that
        row's frames, state and scratch only, so the halves may run at once, and each row's numbers are the same
        sequence of operations as with every row on one thread."""
        if part == 0:
            self._run_ptrs(self.edge, self.states, self.scratch, self.n_a, self.fired)
        else:
            self._run_ptrs(self.edge_b, self.states_b, self.scratch_b, self.n - self.n_a, self.fired_b)

    cdef void _run_ptrs(self, void **edge, void **states, void *scratch, int64_t n, char *fired) noexcept nogil:
        """One tick of n rows whose frames, states and scratch start at these pointers. In a model whose timed
        nodes emit on some ticks only, a node runs when the node it waits for emitted on this tick; a timed node
        emits when its phase (the first row's: the rows step in lock-step) is 0."""
        cdef int i, g
        cdef int64_t off
        if not self.clocked:
            for i in range(self.nops):
                self._node(i, edge, states, scratch, n)
            return
        for i in range(self.nops):
            g = self.gate[i]
            if g >= 0 and not fired[g]:
                fired[i] = 0
                continue
            off = self.phase_off[i]
            if off < 0:
                fired[i] = 1
            elif self.itemsize == 4:
                fired[i] = (<float *>states[i])[off] == 0
            else:
                fired[i] = (<double *>states[i])[off] == 0
            self._node(i, edge, states, scratch, n)

    def set_threads(self, int threads):
        """Step the rows on ``threads`` threads (1 or 2): with 2, the caller's thread steps the first half of the
        rows and a worker thread of this object's own the second, in every call, without the GIL. Each row's
        result is bit for bit what one thread gives."""
        cdef int64_t i, k, rows_b
        cdef cnp.ndarray a
        if threads not in (1, 2):
            raise ValueError(f"threads must be 1 or 2, got {threads}")
        if self.busy:
            raise RuntimeError("this stream is in use by another thread")
        if threads == 1 or self.n < 2:
            self.nthreads = 1
            return
        if self.pool == NULL:
            self.pool = <rj_pool *>calloc(1, sizeof(rj_pool))
            self.edge_b = <void **>calloc(self.nedges, sizeof(void *))
            self.states_b = <void **>calloc(self.nops, sizeof(void *))
            self.fired_b = <char *>calloc(self.nops, sizeof(char))
            self.edge_row = <int64_t *>calloc(self.nedges, sizeof(int64_t))
            if self.pool == NULL or self.edge_b == NULL or self.states_b == NULL or self.fired_b == NULL \
                    or self.edge_row == NULL:
                raise MemoryError()
        self.n_a = (self.n + 1) // 2
        for k, (off, size) in enumerate(self._edges):
            self.edge_row[k] = size * self.itemsize
        for k in range(self.nin):
            self.edge_row[self.in_edge[k]] = self.in_bytes[k]
        for k in range(self.nout):
            self.edge_row[self.out_edge[k]] = self.out_bytes[k]
        for i in range(self.nops):
            a = self._keep[2][i]
            self.states_b[i] = <char *>self.states[i] + self.n_a * (cnp.PyArray_SIZE(a) // self.n) * self.itemsize
        a = self._keep[3]
        self.scratch_b = <char *>self.scratch + self.n_a * (cnp.PyArray_SIZE(a) // self.n) * self.itemsize
        self.nthreads = threads

    @property
    def threads(self):
        """Threads a call steps the rows on (set_threads)."""
        return self.nthreads

    cdef inline bint _due(self, int k) noexcept nogil:
        """Whether output k was written on the last tick."""
        return self.out_gate[k] < 0 or self.fired[self.out_gate[k]]

    cdef inline void _run_steps(self, char **xs, char **ys, int64_t T) noexcept nogil:
        """T timesteps of one stream: input k's frame t at xs[k] + t * in_bytes[k]; output k's frames one after
        another from ys[k] (one per tick, or, for an output that is not due on every tick, one per tick it is)."""
        cdef int64_t t
        cdef int k
        cdef int64_t written[MAX_IO]
        for k in range(self.nout):
            written[k] = 0
        for t in range(T):
            for k in range(self.nin):
                self.edge[self.in_edge[k]] = xs[k] + t * self.in_bytes[k]
            for k in range(self.nout):
                self.edge[self.out_edge[k]] = ys[k] + written[k] * self.out_bytes[k]
            self._run()
            if self.clocked:
                for k in range(self.nout):
                    written[k] += self._due(k)
            else:
                for k in range(self.nout):
                    written[k] += 1

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

    cdef object _call(self, list xs, list outs, int64_t T):
        """Run T timesteps (0: one step) on checked arrays: inputs ``xs`` and outputs ``outs`` in graph order."""
        cdef char *xp[MAX_IO]
        cdef char *yp[MAX_IO]
        cdef int k
        for k in range(self.nin):
            xp[k] = <char *>cnp.PyArray_DATA(<cnp.ndarray>xs[k])
        for k in range(self.nout):
            yp[k] = <char *>cnp.PyArray_DATA(<cnp.ndarray>outs[k])
        self._call_ptrs(xp, yp, T)

    cdef int _call_ptrs(self, char **xp, char **yp, int64_t T) except -1:
        self._enter()
        try:
            self._held_steps(xp, yp, T if T > 0 else 1)
        finally:
            self.busy = False
        return 0

    cdef inline void _held_steps(self, char **xp, char **yp, int64_t T):
        """_run_steps for a caller holding the stream, without the GIL when the work pays for its release."""
        if self.work * T >= _GIL_WORK or self.nthreads > 1:
            with nogil:
                self._run_steps(xp, yp, T)
        else:
            self._run_steps(xp, yp, T)

    cdef inline bint _fits_frame(self, object a, int typenum, int lead, int fnd, cnp.npy_intp *fdims,
                                 bint writable) noexcept:
        """a is an exact C-contiguous ndarray of ``typenum`` with shape (n,) * lead + the frame shape (fnd axes
        ``fdims``), and writable if asked."""
        cdef cnp.ndarray arr
        cdef int d
        cdef cnp.npy_intp *dims
        if type(a) is not cnp.ndarray:
            return False
        arr = <cnp.ndarray>a
        if cnp.PyArray_TYPE(arr) != typenum or cnp.PyArray_NDIM(arr) != lead + fnd \
                or not cnp.PyArray_IS_C_CONTIGUOUS(arr) or (writable and not cnp.PyArray_ISWRITEABLE(arr)):
            return False
        dims = cnp.PyArray_DIMS(arr)
        if lead and dims[0] != self.n:
            return False
        for d in range(fnd):
            if dims[lead + d] != fdims[d]:
                return False
        return True

    cdef inline bint _fits_input(self, object a, int k, int lead) noexcept:
        return self._fits_frame(a, self.in_typenum[k], lead, self.in_fnd[k], &self.in_fdims[k * MAX_FRAME_NDIM],
                                False)

    cdef inline bint _fits_output(self, object a, int k, int lead) noexcept:
        return self._fits_frame(a, self.typenum, lead, self.out_fnd[k], &self.out_fdims[k * MAX_FRAME_NDIM], True)

    cdef object _step_graph(self, object x, object out):
        """``step`` of a model with several inputs or outputs, or frames that are not 1-D: exact arrays (and a
        Python int for a single stream's id) are checked here in C, ids against their tables included; anything
        else goes through the InputChecker, which converts it or raises the error that says what is wrong.
        Given a tuple of exact arrays (or a dict) and ``out`` (an array, or a tuple of arrays), nothing is
        allocated: ``out`` itself is returned."""
        cdef char *xp[MAX_IO]
        cdef char *yp[MAX_IO]
        cdef int64_t ival[MAX_IO]
        cdef int64_t ybytes[MAX_IO]
        cdef int k, d, nd, mode
        cdef int lead = 0 if self.single else 1
        cdef int64_t i, count, bound
        cdef int64_t *ids
        cdef cnp.npy_intp dims[MAX_FRAME_NDIM + 1]
        cdef bint ok = self.graph_fast
        cdef object a
        # where input k is: x itself (one input), x[k] (a tuple), x[name] (a dict)
        if self.nin == 1:
            mode = 0
        elif type(x) is tuple and len(<tuple>x) == self.nin:
            mode = 1
        elif type(x) is dict and len(<dict>x) == self.nin:
            mode = 2
        else:
            ok = False
        if ok:
            for k in range(self.nin):
                if mode == 0:
                    a = x
                elif mode == 1:
                    a = (<tuple>x)[k]
                else:
                    a = (<dict>x).get(self.in_names[k])
                if self._fits_input(a, k, lead):
                    xp[k] = <char *>cnp.PyArray_DATA(<cnp.ndarray>a)
                elif type(a) is int and self.single and self.in_fnd[k] == 0 \
                        and self.in_typenum[k] == cnp.NPY_INT64 and -(1 << 62) < a < (1 << 62):
                    ival[k] = a
                    xp[k] = <char *>&ival[k]
                else:
                    ok = False
                    break
        if ok:
            for k in range(self.nin):
                bound = self.in_bound[k]
                if bound >= 0:
                    ids = <int64_t *>xp[k]
                    count = self.in_count[k] * (1 if self.single else self.n)
                    for i in range(count):
                        if ids[i] < 0 or ids[i] >= bound:
                            ok = False
                            break
        if not ok:
            xs = self.checker.coerce_inputs(x, None)   # converts, or raises naming what is wrong
            for k in range(self.nin):
                xp[k] = <char *>cnp.PyArray_DATA(<cnp.ndarray>xs[k])
        if out is None:
            outs = []
            for k in range(self.nout):
                nd = lead + self.out_fnd[k]
                if lead:
                    dims[0] = self.n
                for d in range(self.out_fnd[k]):
                    dims[lead + d] = self.out_fdims[k * MAX_FRAME_NDIM + d]
                outs.append(cnp.PyArray_EMPTY(nd, dims, self.typenum, 0))
                yp[k] = <char *>cnp.PyArray_DATA(<cnp.ndarray>outs[k])
            result = tuple(outs) if self.nout > 1 else outs[0]
        else:
            ok = self.nout == 1 or (type(out) is tuple and len(<tuple>out) == self.nout)
            if ok:
                for k in range(self.nout):
                    a = out if self.nout == 1 else (<tuple>out)[k]
                    if not self._fits_output(a, k, lead):
                        ok = False
                        break
                    yp[k] = <char *>cnp.PyArray_DATA(<cnp.ndarray>a)
                    ybytes[k] = cnp.PyArray_NBYTES(<cnp.ndarray>a)
                # no output may overlap another output or an input (a later node may still read that input)
                for k in range(self.nout):
                    if not ok:
                        break
                    for d in range(k):
                        if yp[d] < yp[k] + ybytes[k] and yp[k] < yp[d] + ybytes[d]:
                            ok = False
                    for d in range(self.nin):
                        if xp[d] < yp[k] + ybytes[k] \
                                and yp[k] < xp[d] + self.in_bytes[d] * (self.n if lead else 1):
                            ok = False
            if ok:
                result = out
            else:
                outs = self.checker.outputs(out, None, x)   # raises naming what is wrong
                for k in range(self.nout):
                    yp[k] = <char *>cnp.PyArray_DATA(<cnp.ndarray>outs[k])
                result = tuple(outs) if self.nout > 1 else outs[0]
        self._call_ptrs(xp, yp, 0)
        if self.clocked:   # an output with no frame due on this tick is None
            if self.nout == 1:
                return result if self._due(0) else None
            return tuple(r if self._due(k) else None for k, r in enumerate(result))
        return result

    def step(self, x, out=None):
        """Advance one timestep. x: (input_size,) for a stream, (n, input_size) for n streams.

        Returns the output, (output_size,) or (n, output_size): a new array, or ``out`` when given
        (then nothing is allocated). A model with several inputs takes them as a tuple in graph order or a
        dict by name; a model with several outputs returns a tuple in graph order (``out``: a tuple of
        arrays).
        """
        cdef int ndim = 1 if self.single else 2
        cdef int64_t d0 = self.in_size if self.single else self.n
        cdef cnp.npy_intp dims[2]
        cdef void *xp
        cdef void *yp
        if not self.simple:
            return self._step_graph(x, out)
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
            self.edge[self.in_edge[0]] = xp
            self.edge[self.out_edge[0]] = yp
            if self.work >= _GIL_WORK or self.nthreads > 1:
                with nogil:
                    self._run()
            else:
                self._run()
        finally:
            self.busy = False
        return out

    def step_n(self, X, out=None):
        """Advance T timesteps in one call: X (T, input_size) -> (T, output_size) (single stream); a model
        with several inputs takes a tuple (or dict) of (T, ...) arrays and returns a tuple."""
        cdef cnp.ndarray xa, ya
        cdef int64_t T
        cdef char *xp[1]
        cdef char *yp[1]
        cdef cnp.npy_intp dims[2]
        if not self.single:
            raise TypeError("step_n steps one stream; for many streams call step once per timestep")
        if self.clocked:
            return self._step_n_clocked(X, out)
        if not self.simple:
            xs = self.checker.coerce_inputs(X, True)
            T = xs[0].shape[0]
            outs = self.checker.outputs(out, T, X)
            if T:
                self._call(xs, outs, T)
            return tuple(outs) if len(outs) > 1 else outs[0]
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
        xp[0] = <char *>cnp.PyArray_DATA(xa)
        yp[0] = <char *>cnp.PyArray_DATA(ya)
        if T:
            self._call_ptrs(xp, yp, T)
        return out

    cdef object _step_n_clocked(self, object X, object out):
        """step_n of a model whose outputs are not due on every tick: each output gets the frames that come due
        in these T ticks, counted from the phases with the stream held (so no other call moves them)."""
        cdef char *xp[MAX_IO]
        cdef char *yp[MAX_IO]
        cdef int k
        cdef int64_t T
        xs = self.checker.coerce_inputs(X, True)
        T = xs[0].shape[0]
        self._enter()
        try:
            outs = self.checker.outputs(out, self.counter(T), X)
            for k in range(self.nin):
                xp[k] = <char *>cnp.PyArray_DATA(<cnp.ndarray>xs[k])
            for k in range(self.nout):
                yp[k] = <char *>cnp.PyArray_DATA(<cnp.ndarray>outs[k])
            self._held_steps(xp, yp, T)
        finally:
            self.busy = False
        return tuple(outs) if self.nout > 1 else outs[0]

    @property
    def releases_gil(self):
        """Whether ``step`` runs the kernels without the GIL (False for models too small for it to pay;
        ``step_n`` releases it when its timesteps together are large enough)."""
        return self.work >= _GIL_WORK
