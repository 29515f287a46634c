"""The ``rnnjit`` command line (also ``python -m engine``).

    rnnjit info MODEL                 layers, sizes, gate conventions, source format, µs per step here
    rnnjit convert MODEL -o OUT.npz   any supported file -> the native format
    rnnjit run MODEL INPUT            score a CSV / .npy / stdin ("-") row by row or as one sequence
    rnnjit bench MODEL                per-step latency against onnxruntime / torch when installed
    rnnjit demo                       the heartbeat demo (ships with the package)

Exit codes: 0 success; 2 bad command-line usage; 3 the model file (missing, unsupported format, malformed,
or an operator rnnjit cannot run); 4 the input data (missing file, bad CSV row, wrong width or shape);
5 the model cannot do what was asked (e.g. streaming a bidirectional model). Errors go to stderr as
``rnnjit: <what was expected, what came instead>``.
"""

import argparse
import os
import sys
import time

EXIT_USAGE, EXIT_MODEL, EXIT_INPUT, EXIT_CANNOT = 2, 3, 4, 5


class CliError(Exception):
    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------- loading
def _add_load_options(p):
    g = p.add_argument_group("model loading (what a file cannot say by itself)")
    g.add_argument("--layers", help="the model's steps, comma-separated, in order: parameter groups or module "
                                    "paths and functional steps, e.g. 'reshape(1, 272), conv1, relu, lstm, fc' "
                                    "(PyTorch state_dicts, pickled modules, safetensors)")
    g.add_argument("--activation", action="append", default=[], metavar="LAYER=ACT",
                   help="activation after a layer group, e.g. fc1=relu (repeatable)")
    g.add_argument("--head-activation", help="activation after the last layer (e.g. sigmoid, softmax)")
    g.add_argument("--rnn-nonlinearity", choices=["tanh", "relu"], help="nn.RNN's nonlinearity (default tanh)")
    g.add_argument("--key", help="where the state_dict sits inside a checkpoint dict")
    g.add_argument("--ignore", action="append", default=[], metavar="PREFIX",
                   help="parameter-name prefix that is not part of the model (repeatable)")
    g.add_argument("--dtype", choices=["float32", "float64"], help="compute dtype (default: the model's)")


def _split_steps(text):
    """'reshape(1, 272), conv1, relu' -> ['reshape(1, 272)', 'conv1', 'relu']: commas inside parentheses stay."""
    steps, depth, cur = [], 0, ""
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            steps.append(cur)
            cur = ""
        else:
            cur += ch
    return [s.strip() for s in steps + [cur] if s.strip()]


def _load_options(args):
    opts = {}
    if args.layers:
        opts["layers"] = _split_steps(args.layers)
    if args.activation:
        acts = {}
        for item in args.activation:
            name, sep, act = item.partition("=")
            if not sep or not name or not act:
                raise CliError(f"--activation expects LAYER=ACT (e.g. fc1=relu), got {item!r}", EXIT_USAGE)
            acts[name] = act
        opts["activations"] = acts
    for name in ("head_activation", "rnn_nonlinearity", "key"):
        if getattr(args, name):
            opts[name] = getattr(args, name)
    if args.ignore:
        opts["ignore"] = list(args.ignore)
    return opts


def _load_spec(args):
    import engine
    from engine.io import load_spec_any

    path = args.model
    try:
        return load_spec_any(path, **_load_options(args))
    except FileNotFoundError:
        raise CliError(f"no such model file: {path}", EXIT_MODEL) from None
    except engine.RnnjitError as exc:  # a directory, a bad file, an unsupported operator
        raise CliError(str(exc), EXIT_MODEL) from None
    except TypeError as exc:  # options a format does not take
        raise CliError(f"{path}: {exc}", EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read the model file ({exc.strerror or exc})", EXIT_MODEL) from None


def _load_model(args):
    import engine

    return engine.Model(_load_spec(args), dtype=args.dtype)


def source_format(path):
    """What kind of file ``path`` is, in words (converters/formats.py: by content first)."""
    from converters.formats import identify

    return identify(path).description(path)


# ---------------------------------------------------------------------------------------------- info
def _random_inputs(model, lead, rng):
    """Random frames for every input of ``model``, with leading axes ``lead``: an array, or a tuple in graph order."""
    import numpy as np

    xs = [rng.standard_normal(lead + shape).astype(dtype) if np.dtype(dtype).kind == "f"
          else np.zeros(lead + shape, dtype) for shape, dtype in model.inputs.values()]
    return xs[0] if len(xs) == 1 else tuple(xs)


def estimate_step_us(model, steps=2000):
    """Measured p50 µs per step (stream) or per timestep of run() for sequence-only models."""
    import numpy as np

    rng = np.random.default_rng(0)
    if model.streamable:
        s = model.stream()
        X = _random_inputs(model, (steps,), rng)
        frames = list(X) if isinstance(X, np.ndarray) else list(zip(*X))
        outs = [np.empty(shape, model.dtype) for shape in model.outputs.values()]
        out = outs[0] if len(outs) == 1 else tuple(outs)
        for x in frames[:200]:
            s.step(x, out=out)
        ns = np.empty(steps, np.int64)
        clock = time.perf_counter_ns
        for i, x in enumerate(frames):
            a = clock()
            s.step(x, out=out)
            ns[i] = clock() - a
        from .latency import summarize

        return summarize(ns)["p50_us"], "per step (stream, batch 1, p50)"
    X = _random_inputs(model, (1000,), rng)
    model.run(X[:10] if isinstance(X, np.ndarray) else tuple(x[:10] for x in X))
    a = time.perf_counter()
    for _ in range(3):
        model.run(X)
    return (time.perf_counter() - a) / 3 / 1000 * 1e6, "per timestep (run over T=1000)"


def cmd_info(args):
    model = _load_model(args)
    print(f"file: {args.model}")
    print(f"format: {source_format(args.model)}")
    print(model.summary())
    from engine.layers import kind_of

    kinds = []
    for node in model.spec.nodes:
        kind = kind_of(node.layer)
        if kind.convention and kind not in kinds:
            kinds.append(kind)
            print(f"{type(node.layer).__name__}: {kind.convention}")
    if model.spec.is_chain:
        sizes = f"input size {model.input_size}, output size {model.output_size}"
    else:
        sizes = (f"inputs {', '.join(f'{k} {shape} {dt}' for k, (shape, dt) in model.inputs.items())}; outputs "
                 f"{', '.join(f'{k} {shape}' for k, shape in model.outputs.items())}")
    print(f"{sizes}, dtype {model.dtype.name}, {model.num_parameters} parameters")
    print("streaming: " + ("yes (stream / streams)" if model.streamable else
                           "no: " + "; ".join(model.spec.streaming_problems()) + " (use run)"))
    for name, (stride, delay) in model.timing.items():
        if (stride, delay) != (1, 0):
            print(f"timing: output {name!r} gives frame j after input frame j * {stride} + {delay}")
    state = [f"{step.name}.{slot.name} ({slot.size})" for step in model._plan.steps
             for slot in step.packed.kind.slots(step.packed)]
    if state:
        print("state per stream: " + ", ".join(state))
    plan = model._plan
    if plan.folded or plan.fused:
        print("planned: " + "; ".join([f"{b} folded into {a}" for a, b in plan.folded.items()]
                                      + [f"{b} run inside {a}'s kernel" for a, b in plan.fused.items()]))
    for key, value in sorted(model.spec.metadata.items()):
        if key != "source":   # (what the converter could not express, or assumed)
            print(f"note: {key} = {value}")
    if not args.no_timing:
        us, what = estimate_step_us(model)
        print(f"speed on this machine: {us:.2f} µs {what}, measured now")
    return 0


# ---------------------------------------------------------------------------------------------- convert
def cmd_convert(args):
    spec = _load_spec(args)
    if args.dtype:
        spec = spec.with_dtype(args.dtype)
    out = args.output
    if not out.endswith(".npz"):
        raise CliError(f"the native format is an .npz file; got -o {out!r}", EXIT_USAGE)
    try:
        spec.save(out)
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}", EXIT_INPUT) from None
    import engine

    print(f"wrote {out}: {engine.Model(spec).describe_short()}")
    return 0


# ---------------------------------------------------------------------------------------------- run
def _parse_row(line, lineno, width, source):
    import numpy as np

    parts = [p.strip() for p in line.split(",")]
    if len(parts) != width:
        raise CliError(f"{source}:{lineno}: expected {width} comma-separated number{'s' * (width != 1)} "
                       f"(the model's input size), got {len(parts)}: {line.strip()[:80]!r}", EXIT_INPUT)
    try:
        return np.array([float(p) for p in parts])
    except ValueError:
        bad = next(p for p in parts if not _is_float(p))
        raise CliError(f"{source}:{lineno}: {bad!r} is not a number (row {line.strip()[:80]!r})",
                       EXIT_INPUT) from None


def _is_float(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def _csv_rows(lines, width, source):
    """(line number, row) for each data row of CSV ``lines`` read one at a time: blank lines are skipped and
    the first non-blank line may be a header."""
    first = True
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if first:
            first = False
            if _is_header(line):
                continue
        yield lineno, _parse_row(line, lineno, width, source)


def _read_csv(lines, width, source):
    import numpy as np

    rows = [row for _, row in _csv_rows(lines, width, source)]
    if not rows:
        raise CliError(f"{source}: no data rows (expected rows of {width} numbers)", EXIT_INPUT)
    return np.vstack(rows)


def _is_header(line):
    return any(not _is_float(p.strip()) for p in line.split(",") if p.strip())


def read_input(path, width):
    """(T, width) float64 from a .npy or a CSV file (header optional)."""
    import numpy as np

    if not os.path.exists(path):
        raise CliError(f"no such input file: {path}", EXIT_INPUT)
    if path.endswith(".npy"):
        try:
            X = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise CliError(f"{path}: not a readable .npy array ({exc})", EXIT_INPUT) from None
        if X.dtype.kind not in "fiub":
            raise CliError(f"{path}: expected a numeric array, got dtype {X.dtype}", EXIT_INPUT)
        if X.ndim == 1 and width == 1:
            X = X[:, None]
        if X.ndim != 2 or X.shape[1] != width:
            raise CliError(f"{path}: expected shape (T, {width}) (the model's input size), got {X.shape}",
                           EXIT_INPUT)
        return np.asarray(X, dtype=np.float64)
    with open(path, encoding="utf-8", errors="replace") as fh:
        return _read_csv(fh, width, path)


class _Writer:
    """Outputs row by row to CSV (stdout or a file), or collected into a .npy at the end."""

    def __init__(self, path, dtype, ncols):
        import numpy as np

        self.path = path
        self.npy = bool(path) and path.endswith(".npy")
        self.fmt = "%.9g" if dtype == np.float32 else "%.17g"
        self.rows = []
        self.fh = None
        if not self.npy:
            try:
                self.fh = open(path, "w", encoding="utf-8") if path else sys.stdout
            except OSError as exc:
                raise CliError(f"cannot write {path}: {exc.strerror or exc}", EXIT_INPUT) from None
            if path:
                self.fh.write(",".join(f"y{i}" for i in range(ncols)) + "\n")

    def row(self, y, flush=False):
        if self.npy:
            self.rows.append(y.copy())
            return
        self.fh.write(",".join(self.fmt % v for v in y) + "\n")
        if flush:
            self.fh.flush()

    def block(self, Y):
        if self.npy:
            self.rows.extend(Y)
            return
        for y in Y:
            self.fh.write(",".join(self.fmt % v for v in y) + "\n")

    def close(self):
        import numpy as np

        if self.npy:
            np.save(self.path, np.array(self.rows).reshape(len(self.rows), -1))
        elif self.fh is not sys.stdout:
            self.fh.close()
        else:
            self.fh.flush()


class _Progress:
    def __init__(self, total, enabled):
        self.total, self.enabled, self.shown = total, enabled, -1

    def update(self, i):
        if not self.enabled:
            return
        pct = (100 * (i + 1)) // self.total
        if pct != self.shown:
            self.shown = pct
            bar = "#" * (pct // 4)
            sys.stderr.write(f"\r[{bar:<25s}] {pct:3d}% {i + 1}/{self.total} rows")
            if pct == 100:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _stream_rows(model, rows, writer, flush=False, progress=None):
    """Step one stream through ``rows`` (an iterable of input rows), writing each output as it comes; then the
    per-step latency on stderr."""
    import numpy as np

    from .latency import describe

    s = model.stream()
    x = np.empty(model.input_size, model.dtype)
    y = np.empty(model.output_size, model.dtype)
    ns = []
    clock = time.perf_counter_ns
    for i, row in enumerate(rows):
        x[:] = row
        a = clock()
        due = s.step(x, out=y)
        ns.append(clock() - a)
        if due is not None:   # (a model with a stride along time has no output on some steps)
            writer.row(y, flush=flush)
        if progress is not None:
            progress.update(i)
    if ns:
        print(f"rnnjit: {len(ns)} steps (stream), µs per step {describe(ns)}", file=sys.stderr)


def _one_input_one_output(model, command):
    """``rnnjit run`` reads rows of one input and writes rows of one output; say so for a graph that has more."""
    if not model.spec.is_chain:
        ins = ", ".join(f"{k} {shape} {dt}" for k, (shape, dt) in model.inputs.items())
        outs = ", ".join(f"{k} {shape}" for k, shape in model.outputs.items())
        raise CliError(f"{command} takes models of one input and one output of feature vectors (a chain of "
                       f"layers); this model is a graph with inputs {ins} and outputs {outs}: use the Python API "
                       f"(model.stream().step, model.run)", EXIT_CANNOT)


def cmd_run(args):
    model = _load_model(args)
    _one_input_one_output(model, "run")
    width = model.input_size
    if args.mode == "stream" and not model.streamable:
        raise CliError("this model cannot stream (" + "; ".join(model.spec.streaming_problems())
                       + "); use --mode sequence", EXIT_CANNOT)
    live = args.input == "-" and args.mode == "stream"
    if live:
        # a live pipe: each row's output is written (and flushed) before the next row is read; readline, not
        # iteration over sys.stdin, so that a row is handled as soon as it arrives
        X = None
        rows = (row for _, row in _csv_rows(iter(sys.stdin.readline, ""), width, "<stdin>"))
    else:
        X = _read_csv(sys.stdin, width, "<stdin>") if args.input == "-" else read_input(args.input, width)
        X = X.astype(model.dtype)
        rows = X
    writer = _Writer(args.output, model.dtype, model.output_size)
    try:
        if args.mode == "sequence":
            a = time.perf_counter_ns()
            Y = model.run(X)
            total = time.perf_counter_ns() - a
            writer.block(Y)
            print(f"rnnjit: {len(X)} steps (sequence, one run call), {total / 1e3 / len(X):.3f} µs per step, "
                  f"{total / 1e6:.2f} ms in all", file=sys.stderr)
        else:
            progress = None
            if not live and args.output and len(X) >= 10_000 and not args.no_progress:
                progress = _Progress(len(X), True)
            _stream_rows(model, rows, writer, flush=live, progress=progress)
    finally:
        writer.close()
    return 0


# ---------------------------------------------------------------------------------------------- bench / demo
def cmd_bench(args):
    from .tools import bench

    model = _load_model(args)
    _one_input_one_output(model, "bench")
    return bench.main(model, args.model, steps=args.steps)


def cmd_demo(args):
    from . import demo

    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise CliError("--plot needs matplotlib: pip install 'rnnjit[plot]' (or pip install matplotlib)",
                           EXIT_USAGE) from None
    if args.seconds is not None and args.seconds <= 0:
        raise CliError(f"--seconds must be positive, got {args.seconds}", EXIT_USAGE)
    demo.main(realtime=args.realtime, plot_path=args.plot, quiet=args.quiet, seconds=args.seconds)
    return 0


def cmd_warmup(args):
    """Compile every kernel the given models use (or, with none given, the recurrent cells' and the usual
    heads') into numba's cache, for a container image or a machine's first start."""
    import engine
    from engine.warmup import cache_dir, default_specs

    targets = [(path, [path]) for path in args.models] or [("every recurrent cell kind", default_specs())]
    for what, models in targets:
        opts = {"dtype": args.dtype} if args.dtype else {}
        try:
            report = engine.warmup(*models, **opts)
        except (OSError, engine.RnnjitError) as exc:
            raise CliError(f"{what}: {exc}", EXIT_MODEL) from None
        compiled = report["kernels compiled"]
        print(f"{what}: {report['functions compiled']} numba functions compiled"
              + (f" (step kernels: {', '.join(compiled)})" if compiled else " (the step kernels were cached)")
              + f" in {report['seconds']:.1f} s")
    print(f"numba cache: {cache_dir()}")
    return 0


# ---------------------------------------------------------------------------------------------- main
def build_parser():
    parser = argparse.ArgumentParser(
        prog="rnnjit", description="CPU inference engine for recurrent networks (LSTM, GRU, RNN)",
        epilog="exit codes: 0 ok, 2 usage, 3 model file, 4 input data, 5 model cannot do this (see --help of "
               "each command)")
    parser.add_argument("--version", action="store_true", help="print the version and call layer, then exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="describe a model file and time one step")
    p.add_argument("model", help="model file: .onnx .pt .pth .bin .safetensors .keras .h5 .npz")
    p.add_argument("--no-timing", action="store_true", help="skip the µs-per-step measurement")
    _add_load_options(p)

    p = sub.add_parser("convert", help="convert any supported model file to the native .npz format")
    p.add_argument("model")
    p.add_argument("-o", "--output", required=True, help="output path (.npz)")
    _add_load_options(p)

    p = sub.add_parser("run", help="score an input: CSV, .npy or '-' (stdin rows, streamed as they arrive)")
    p.add_argument("model")
    p.add_argument("input", help="a CSV of (T, input_size) numbers (header optional), a .npy (T, input_size), "
                                 "or - for CSV rows on stdin")
    p.add_argument("--mode", choices=["stream", "sequence"], default="stream",
                   help="stream: one step per row, state carried (default); sequence: one run() over all rows")
    p.add_argument("-o", "--output", help="write outputs here (.npy or CSV); default: CSV on stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar when writing to a file")
    _add_load_options(p)

    p = sub.add_parser("bench", help="per-step latency of this model against onnxruntime / torch if installed")
    p.add_argument("model")
    p.add_argument("--steps", type=int, default=3000, help="timed steps per contender (default 3000)")
    _add_load_options(p)

    p = sub.add_parser("demo", help="stream a shipped ECG recording through a trained network, flag anomalies")
    p.add_argument("--realtime", action="store_true", help="play the recording at its real rate (250 Hz)")
    p.add_argument("--plot", metavar="PNG", help="write a figure of the signal, scores and flags (matplotlib)")
    p.add_argument("--quiet", action="store_true", help="print only flagged events and the summary")
    p.add_argument("--seconds", type=float, help="play only the first SECONDS of the recording")

    p = sub.add_parser("warmup", help="compile the kernels of these models (or of every recurrent cell) into "
                                      "numba's cache ahead of their first use, e.g. in a container image")
    p.add_argument("models", nargs="*", metavar="FILE", help="model files (none: LSTM, GRU and RNN models)")
    p.add_argument("--dtype", choices=["float32", "float64"], help="compute dtype (default: each model's)")
    return parser


COMMANDS = {"info": cmd_info, "convert": cmd_convert, "run": cmd_run, "bench": cmd_bench, "demo": cmd_demo,
            "warmup": cmd_warmup}


def _say_what_compiles():
    """The library logs on the "rnnjit" logger when it compiles a kernel (seconds on a first run); the command
    line shows those lines on stderr."""
    import logging

    logger = logging.getLogger("rnnjit")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("rnnjit: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        import engine

        layer = "compiled (Cython)" if engine.COMPILED else "pure-Python twin"
        print(f"rnnjit {engine.__version__}, call layer: {layer}")
        return 0
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    _say_what_compiles()
    try:
        return COMMANDS[args.command](args)
    except CliError as exc:
        print(f"rnnjit: {exc}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): not an error of ours; silence the flush at exit
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        print("rnnjit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
