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
        _LIB.conv_run.restype = None
        _LIB.frame_conv_run.restype = None
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


def conv_run(model, X):
    """(ns per step, outputs) of the C loop of a one-node causal TemporalConv1d model on X (T, C_in)."""
    lib = library()
    p = model._packed[0]
    layer = p.layer
    cout, cin_g, K = layer.weight.shape
    G, cin = layer.groups, layer.in_channels
    # the C loop's layout, (G, K, C_in/G, C_out/G), whichever the engine packed
    W = np.ascontiguousarray(np.asarray(layer.weight).reshape(G, cout // G, cin_g, K).transpose(0, 3, 2, 1),
                             np.float32)
    bias = np.ascontiguousarray(layer.bias if layer.bias is not None else np.zeros(cout), np.float32)
    X = np.ascontiguousarray(X, np.float32)
    T = X.shape[0]
    Y = np.zeros((T, cout), np.float32)
    state = np.zeros(max(1, (K - 1) * layer.dilation * cin), np.float32)
    ns = np.zeros(T, np.float64)
    lib.conv_run(cin, cout, K, layer.dilation, G, T, _ptr(X), _ptr(Y), _ptr(W), _ptr(bias), _ptr(state),
                 _ptr(ns, ctypes.c_double))
    return ns, Y


def frame_conv_run(model, X):
    """(ns per step, outputs) of the C loop of a one-node FrameConv model (1-D kernel, stride 1, groups 1,
    symmetric padding) on X (T, C_in, F)."""
    lib = library()
    layer = model._packed[0].layer
    cout, cin, K = layer.weight.shape
    W = np.ascontiguousarray(layer.weight, np.float32)
    bias = np.ascontiguousarray(layer.bias if layer.bias is not None else np.zeros(cout), np.float32)
    X = np.ascontiguousarray(X, np.float32)
    T, _, F = X.shape
    (stride,), ((pad, _),), (dil,) = layer.stride, layer.padding, layer.dilation
    P = (F + 2 * pad - dil * (K - 1) - 1) // stride + 1
    if stride != 1 or layer.groups != 1 or layer.padding[0][0] != layer.padding[0][1]:
        raise ValueError("the C loop runs stride-1, groups-1, symmetrically padded frame convolutions")
    Y = np.zeros((T, cout, P), np.float32)
    xp = np.zeros(cin * (F + 2 * pad), np.float32)
    ns = np.zeros(T, np.float64)
    lib.frame_conv_run(cin, cout, F, K, stride, pad, dil, T, _ptr(X), _ptr(Y), _ptr(W), _ptr(bias), _ptr(xp),
                       _ptr(ns, ctypes.c_double))
    return ns, Y
