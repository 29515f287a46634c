"""``rnnjit bench MODEL``: this model's per-step latency against onnxruntime and torch, when installed.

The other contenders run the same weights: a torch module rebuilt from the ModelSpec
(``converters.pytorch.export.torch_equivalent``)
stepped with its state carried, and that module exported with explicit state inputs/outputs
(``torch.onnx.export``) and run by onnxruntime one step per call. Every contender's outputs are checked
against rnnjit's before it is timed; a contender that cannot express the model (peepholes, clip, custom gate
activations, ...) is left out with the reason. Thread pools are pinned to one thread, calls interleaved.
The full suite, with more contenders and sizes, is ``python -m benchmarks`` in a source checkout.
"""

import io
import time
import warnings

import numpy as np

from converters.pytorch.export import Unsupported, torch_equivalent

from ..latency import summarize

def _contenders(model, log):
    """name -> (reset, step(x) -> y); rnnjit first."""
    out = {}
    s = model.stream()
    y = np.empty(model.output_size, model.dtype)
    out["rnnjit step(out=)"] = (s.reset, lambda x: s.step(x, out=y))
    out["rnnjit step"] = (s.reset, s.step)
    try:
        import torch
    except ImportError:
        log("torch: not installed, left out")
        return out
    torch.set_num_threads(1)
    try:
        step_mod, zero_states = torch_equivalent(model.spec)
    except Unsupported as exc:
        log(f"torch / onnxruntime: left out, the model has no torch equivalent ({exc})")
        return out
    st = {"s": zero_states()}

    def t_reset():
        st["s"] = zero_states()

    def t_step(x):
        with torch.inference_mode():
            res = step_mod(torch.from_numpy(np.asarray(x, np.float32)).reshape(1, 1, -1), *st["s"])
        st["s"] = list(res[1:])
        return res[0].numpy().reshape(-1)

    out["torch (module, step)"] = (t_reset, t_step)
    try:
        import onnxruntime as ort
    except ImportError:
        log("onnxruntime: not installed, left out")
        return out
    states = zero_states()
    names = [f"s{i}" for i in range(len(states))]
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(step_mod, (torch.zeros(1, 1, model.input_size), *states), buf, dynamo=False,
                          input_names=["x", *names], output_names=["y", *[n + "_out" for n in names]])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    ost = {"s": [s.numpy() for s in states]}

    def o_reset():
        ost["s"] = [s.numpy() for s in zero_states()]

    def o_step(x):
        feeds = {"x": np.asarray(x, np.float32).reshape(1, 1, -1)}
        feeds.update(zip(names, ost["s"]))
        res = sess.run(None, feeds)
        ost["s"] = res[1:]
        return res[0].reshape(-1)

    out[f"onnxruntime {ort.__version__} (run, step)"] = (o_reset, o_step)
    return out


def main(model, path, steps=3000, out=None):
    import sys

    out = out or sys.stdout

    def log(msg):
        print(msg, file=out)

    if not model.streamable:
        log(f"{path}: sequence-only model (reverse/bidirectional); per-step latency does not apply")
        return 5
    log(f"rnnjit bench {path}: {model.describe_short()}, batch 1, state carried, one thread, {steps} steps each")
    cont = _contenders(model, log)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((steps + 300, model.input_size)).astype(np.float32)
    # correctness before timing: every contender against rnnjit over 20 steps from zero state
    ref = model.stream()
    want = np.stack([ref.step(x.astype(model.dtype)) for x in X[:20]])
    tol = 1e-4 if model.dtype == np.float32 else 1e-6
    for name, (reset, step) in list(cont.items()):
        reset()
        got = np.stack([np.array(step(x.astype(model.dtype) if name.startswith("rnnjit") else x)) for x in X[:20]])
        err = float(np.max(np.abs(got - want)))
        if not np.isfinite(err) or err > tol * max(1.0, float(np.max(np.abs(want)))):
            log(f"{name}: outputs differ from rnnjit by {err:.2e}; left out")
            del cont[name]
    Xs = {name: (X.astype(model.dtype) if name.startswith("rnnjit") else X) for name in cont}
    ns = {name: np.empty(steps, np.int64) for name in cont}
    clock = time.perf_counter_ns
    for name, (reset, step) in cont.items():
        reset()
        for x in Xs[name][:300]:
            step(x)
    chunk = 100
    names = list(cont)
    for c0 in range(0, steps, chunk):  # interleave contenders chunk by chunk, order shuffled each round
        rng.shuffle(names)
        for name in names:
            step = cont[name][1]
            Xn, tn = Xs[name], ns[name]
            for i in range(c0, min(c0 + chunk, steps)):
                a = clock()
                step(Xn[300 + i])
                tn[i] = clock() - a
    stats = {name: summarize(ns[name]) for name in cont}
    base = stats["rnnjit step(out=)"]["p50_us"]
    log(f"{'contender':<36s} {'p50 µs':>9s} {'p99 µs':>9s} {'p50 / rnnjit':>13s}")
    for name, st in stats.items():
        log(f"{name:<36s} {st['p50_us']:9.2f} {st['p99_us']:9.2f} {st['p50_us'] / base:12.1f}x")
    return 0
