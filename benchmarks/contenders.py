"""The contenders of the step, sequence and streams suites, each built from one torch module's weights.

Every contender has ``reset()`` and ``step(x) -> y`` (batch 1, state carried from call to call) and is
checked against PyTorch on fresh state before it is timed (``verify``). The model under test is
``torch.nn.LSTM/GRU/RNN`` (``layers`` stacked) with random weights; rnnjit gets it through the live-module
converter, onnxruntime through ``torch.onnx.export`` of a one-step model with explicit state I/O.
"""

import io
import warnings

import numpy as np

import converters
import engine
from engine._ext import twin
from engine.session import _SingleStream

TORCH_CLASSES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
PARITY = 1e-5


class TwinStream(_SingleStream, twin.StepCore):
    """A stream on the pure-Python call layer, side by side with the compiled one in this process."""


def torch_module(cell, I, H, layers=1, seed=0):
    import torch

    torch.manual_seed(seed)
    module = getattr(torch.nn, TORCH_CLASSES[cell])(I, H, num_layers=layers)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-1.0 / H ** 0.5, 1.0 / H ** 0.5)
    return module.eval()


def torch_reference(module, X):
    """Outputs of the torch module over X (T, I), from zero state."""
    import torch

    with torch.inference_mode():
        return module(torch.from_numpy(X[:, None, :]))[0][:, 0, :].numpy()


class Contender:
    name = "?"

    def reset(self):
        raise NotImplementedError

    def step(self, x):
        raise NotImplementedError


class RnnjitStep(Contender):
    def __init__(self, model, out=False, core="compiled"):
        self.model, self.use_out, self.core = model, out, core
        self.name = "rnnjit twin" if core == "twin" else ("rnnjit step(out=)" if out else "rnnjit step")
        self.buf = np.empty(model.output_size, np.float32)
        self.reset()

    def reset(self):
        self.s = TwinStream(self.model) if self.core == "twin" else self.model.stream()
        self.step = (lambda x: self.s.step(x, self.buf)) if self.use_out else self.s.step


class NumbaDirect(Contender):
    """The numba kernel called directly with its arrays, per layer, as a numba user would."""

    name = "numba direct"

    def __init__(self, model):
        self.packed = model._packed
        self.outs = [np.empty((1, p.out_size), np.float32) for p in self.packed]
        self.scratch = np.zeros(max(p.scratch_size for p in self.packed), np.float32)
        self.reset()

    def reset(self):
        self.states = [np.zeros((1, p.state_size), np.float32) for p in self.packed]

    def step(self, x):
        src = x.reshape(1, -1)
        for p, s, y in zip(self.packed, self.states, self.outs):
            p.kind.step(src, y, p.params, s, self.scratch, p.meta)
            src = y
        return src[0]


class OnnxRuntime(Contender):
    """One-step ONNX export with explicit state inputs/outputs; ``run`` or IO binding with state copied back."""

    def __init__(self, module, binding=False, batch=1, threads=1):
        import onnxruntime as ort
        import torch

        self.cell = type(module).__name__.lower()
        self.name = "onnxruntime io_binding" if binding else "onnxruntime run"
        L, H, I = module.num_layers, module.hidden_size, module.input_size

        class OneStep(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = module

            def forward(self, x, h, c=None):
                y, state = self.m(x, (h, c) if c is not None else h)
                return (y, *state) if isinstance(state, tuple) else (y, state)

        lstm = self.cell == "lstm"
        args = (torch.zeros(1, batch, I), torch.zeros(L, batch, H)) + ((torch.zeros(L, batch, H),) if lstm else ())
        names_in = ["x", "h", "c"][:len(args)]
        names_out = ["y", "hn", "cn"][:len(args)]
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(OneStep().eval(), args, buf, dynamo=False, input_names=names_in, output_names=names_out,
                              opset_version=17)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
        self.names_in, self.names_out, self.binding = names_in, names_out, binding
        self.shape = (L, batch, H)
        self.x = np.zeros((1, batch, I), np.float32)
        self.reset()

    def reset(self):
        self.states = [np.zeros(self.shape, np.float32) for _ in self.names_in[1:]]
        if self.binding:
            import onnxruntime as ort

            self.outs = [np.zeros((1, self.shape[1], self.shape[2]), np.float32)] + [np.zeros(self.shape, np.float32)
                                                                           for _ in self.names_out[1:]]
            b = self.sess.io_binding()
            for name, arr in zip(self.names_in, [self.x] + self.states):
                b.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr))
            for name, arr in zip(self.names_out, self.outs):
                b.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(arr))
            self.b = b
            self.step = self._step_binding
        else:
            self.step = self._step_run

    def _step_run(self, x):
        self.x[0, 0] = x
        outs = self.sess.run(None, dict(zip(self.names_in, [self.x] + self.states)))
        self.states = outs[1:]
        return outs[0].reshape(-1)

    def step_batch(self, X):
        """One timestep for every sequence of the batch: X (batch, I) (IO binding only)."""
        self.x[0] = X
        self.sess.run_with_iobinding(self.b)
        for s, o in zip(self.states, self.outs[1:]):
            s[...] = o
        return self.outs[0][0]

    def _step_binding(self, x):
        self.x[0, 0] = x
        self.sess.run_with_iobinding(self.b)
        for s, o in zip(self.states, self.outs[1:]):
            s[...] = o
        return self.outs[0].reshape(-1)


class TorchModule(Contender):
    """nn.LSTM/GRU/RNN called with one timestep per call, state carried, under inference_mode."""

    def __init__(self, module):
        import torch

        self.torch, self.m = torch, module
        self.name = f"torch nn.{type(module).__name__}"
        self.lstm = type(module).__name__ == "LSTM"
        self.reset()

    def reset(self):
        L, H = self.m.num_layers, self.m.hidden_size
        z = self.torch.zeros(L, 1, H)
        self.state = (z, z.clone()) if self.lstm else z

    def step(self, x):
        with self.torch.inference_mode():
            y, self.state = self.m(self.torch.from_numpy(x).view(1, 1, -1), self.state)
        return y.view(-1)


class TorchCell(Contender):
    """nn.LSTMCell/GRUCell/RNNCell per layer, sharing the module's weights."""

    def __init__(self, module):
        import torch

        self.torch = torch
        kind = type(module).__name__
        self.name = f"torch nn.{kind}Cell"
        self.lstm = kind == "LSTM"
        self.cells = []
        for k in range(module.num_layers):
            cell = getattr(torch.nn, kind + "Cell")(module.input_size if k == 0 else module.hidden_size,
                                                     module.hidden_size)
            with torch.no_grad():
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(cell, name).copy_(getattr(module, f"{name}_l{k}"))
            self.cells.append(cell.eval())
        self.H = module.hidden_size
        self.reset()

    def reset(self):
        z = lambda: self.torch.zeros(1, self.H)  # noqa: E731
        self.state = [(z(), z()) if self.lstm else z() for _ in self.cells]

    def step(self, x):
        with self.torch.inference_mode():
            h = self.torch.from_numpy(x).view(1, -1)
            for k, cell in enumerate(self.cells):
                self.state[k] = cell(h, self.state[k])
                h = self.state[k][0] if self.lstm else self.state[k]
        return h.view(-1)


class NumpyStep(Contender):
    """A careful NumPy step: stacked weights, preallocated buffers, ufuncs with out=."""

    name = "numpy"

    def __init__(self, module):
        self.kind = type(module).__name__
        self.layers = []
        for k in range(module.num_layers):
            W = getattr(module, f"weight_ih_l{k}").detach().numpy()
            R = getattr(module, f"weight_hh_l{k}").detach().numpy()
            b = (getattr(module, f"bias_ih_l{k}") + getattr(module, f"bias_hh_l{k}")).detach().numpy()
            bih = getattr(module, f"bias_ih_l{k}").detach().numpy()
            bhh = getattr(module, f"bias_hh_l{k}").detach().numpy()
            self.layers.append((np.ascontiguousarray(np.concatenate([W, R], 1)), b, W, R, bih, bhh))
        self.H = module.hidden_size
        self.reset()

    def reset(self):
        H = self.H
        self.h = [np.zeros(H, np.float32) for _ in self.layers]
        self.c = [np.zeros(H, np.float32) for _ in self.layers]
        self.g = np.empty(4 * H, np.float32)
        self.t = np.empty(H, np.float32)

    def step(self, x):
        H, inp = self.H, x
        for k, (M, b, W, R, bih, bhh) in enumerate(self.layers):
            h, c = self.h[k], self.c[k]
            if self.kind == "LSTM":
                g = self.g
                np.dot(M, np.concatenate((inp, h)), out=g)
                g += b
                sig = g[:2 * H]
                np.negative(sig, out=sig); np.exp(sig, out=sig); sig += 1; np.reciprocal(sig, out=sig)  # noqa: E702
                o = g[3 * H:]
                np.negative(o, out=o); np.exp(o, out=o); o += 1; np.reciprocal(o, out=o)  # noqa: E702
                np.tanh(g[2 * H:3 * H], out=g[2 * H:3 * H])
                c *= g[H:2 * H]
                np.multiply(g[:H], g[2 * H:3 * H], out=self.t)
                c += self.t
                np.tanh(c, out=h)
                h *= o
            elif self.kind == "GRU":
                gi = W @ inp + bih
                gh = R @ h + bhh
                r = 1 / (1 + np.exp(-(gi[:H] + gh[:H])))
                z = 1 / (1 + np.exp(-(gi[H:2 * H] + gh[H:2 * H])))
                n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
                h[...] = n + z * (h - n)
            else:
                np.tanh(M @ np.concatenate((inp, h)) + b, out=h)
            inp = h
        return inp


def step_contenders(cell, I, H, layers=1, seed=0, include=None):
    """(torch module, [contenders]) for one configuration. ``include`` limits them by name prefix."""
    module = torch_module(cell, I, H, layers, seed)
    model = engine.Model(converters.from_torch(module))
    makers = [
        lambda: RnnjitStep(model), lambda: RnnjitStep(model, out=True), lambda: RnnjitStep(model, core="twin"),
        lambda: NumbaDirect(model), lambda: OnnxRuntime(module), lambda: OnnxRuntime(module, binding=True),
        lambda: TorchModule(module), lambda: TorchCell(module), lambda: NumpyStep(module),
    ]
    out = []
    for make in makers:
        c = make()
        if include is None or any(c.name.startswith(p) for p in include):
            out.append(c)
    return module, model, out


def verify(module, contenders, I, steps=6, seed=1):
    """Every contender's first ``steps`` outputs from fresh state equal PyTorch's (float32 parity bar)."""
    X = np.random.default_rng(seed).uniform(-1, 1, (steps, I)).astype(np.float32)
    ref = torch_reference(module, X)
    for c in contenders:
        c.reset()
        got = np.stack([np.asarray(c.step(x)).copy() for x in X])
        err = float(np.abs(got - ref).max())
        if not err <= PARITY:
            raise AssertionError(f"{c.name} differs from PyTorch by {err:.3g} (> {PARITY}); not timing it")
        c.reset()
