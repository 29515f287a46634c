"""The C roofline: benchmarks/roofline.c built with the system compiler at run time, run on the same packed
weights as rnnjit, timed inside C (no Python in the loop). Returns per-step nanoseconds and outputs."""

import ctypes
import os
import shutil
import subprocess
import tempfile

import numpy as np

from engine.kernels import layout as L

HERE = os.path.dirname(os.path.abspath(__file__))
_LIB = None


def library():
    """The compiled roofline (cached per process); None when no C compiler is found."""
    global _LIB
    if _LIB is None:
        cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
        if cc is None:
            return None
        out = os.path.join(tempfile.mkdtemp(prefix="rnnjit-roofline-"), "roofline.so")
        subprocess.run([cc, "-O3", "-march=native", "-ffast-math", "-fPIC", "-shared",
                        os.path.join(HERE, "roofline.c"), "-o", out, "-lm"], check=True, capture_output=True)
        _LIB = ctypes.CDLL(out)
        _LIB.run.restype = None
    return _LIB


def _ptr(a, ctype=ctypes.c_float):
    return a.ctypes.data_as(ctypes.POINTER(ctype))


def run(model, X):
    """(ns per step, outputs) of the C loop for a one-layer LSTM / GRU / RNN(tanh) engine model on X (T, I)."""
    lib = library()
    if lib is None:
        raise RuntimeError("no C compiler found for the roofline (set CC)")
    if len(model._packed) != 1:
        raise ValueError("the roofline runs one recurrent layer")
    p = model._packed[0]
    kind = {"lstm": 0, "gru": 1, "rnn": 2}[p.kind.name]    # the C loop's cell switch
    I, H = p.in_size, int(p.meta[L.M_H])
    G = {0: 4, 1: 2, 2: 1}[kind]
    M = np.ascontiguousarray(p.matrix(0, L.D_M, I + H, G * H))
    b = np.ascontiguousarray(p.view(0, L.D_B, (G * H,)))
    empty = np.zeros(1, np.float32)
    if kind == 1:
        Wn, Rn = p.matrix(0, L.D_WXN, I, H), p.matrix(0, L.D_RHN, H, H)
        bxn, bhn = p.view(0, L.D_BXN, (H,)), p.view(0, L.D_BHN, (H,))
    else:
        Wn = Rn = bxn = bhn = empty
    Wn, Rn, bxn, bhn = (np.ascontiguousarray(a, np.float32) for a in (Wn, Rn, bxn, bhn))
    X = np.ascontiguousarray(X, np.float32)
    T = X.shape[0]
    Y = np.zeros((T, H), np.float32)
    scratch = np.zeros(I + 10 * H, np.float32)  # roofline.c: xh (I+H), g (4H), c, h, gn, hn (H each)
    ns = np.zeros(T, np.float64)
    lib.run(kind, I, H, T, _ptr(X), _ptr(Y), _ptr(M), _ptr(b), _ptr(Wn), _ptr(Rn), _ptr(bxn), _ptr(bhn),
            _ptr(scratch), _ptr(ns, ctypes.c_double))
    return ns, Y
