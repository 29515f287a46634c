"""The native model format, and ``load`` which picks a reader by file content.

Native format: a numpy ``.npz`` (a zip of ``.npy`` arrays) holding

* ``__rnnjit__``: a uint8 array of UTF-8 JSON: ``{"magic": "rnnjit-model", "format_version": N,
  "spec": {...}, "arrays": [...]}``;
* one array per weight.

Version 1 is a chain: ``spec`` has ``input_size``, ``dtype``, ``name``, ``metadata`` and ``layers``, one config
per layer, and the arrays are named ``layers.<i>.<name>`` (e.g. ``layers.0.dir1.weight_hh``). Version 2 is a
graph: ``spec`` has ``dtype``, ``name``, ``metadata``, ``inputs`` (``{"name", "shape", "dtype"}`` each),
``nodes`` (``{"name", "inputs", "layer"}`` each, ``layer`` a layer config), ``outputs`` (edge names) and
``constants`` (names), and the arrays are named ``nodes.<i>.<name>`` by the node's position and
``constants.<i>``. A chain is still written as version 1, so a chain saved today opens in every rnnjit; version 2
is written only for what version 1 cannot say.

It is read with ``allow_pickle=False``: an object array in the file is an error, never code. A file whose
``format_version`` is newer than this reader's is refused with a message that says which rnnjit reads it.
"""

import io
import json
import os
import zipfile

import numpy as np

from .errors import FormatError, RnnjitError, SpecError
from .spec import Input, ModelSpec, Node, layer_from_config

MAGIC = "rnnjit-model"
FORMAT_VERSION = 2          # the newest this rnnjit reads and writes; chains are written as CHAIN_VERSION
CHAIN_VERSION = 1
HEADER_KEY = "__rnnjit__"
MAX_HEADER_BYTES = 16 << 20


def _write_native(spec, fh):
    arrays, configs = {}, []
    prefix = "layers" if spec.is_chain else "nodes"
    for i, node in enumerate(spec.nodes):
        config, layer_arrays = node.layer.to_config()
        configs.append(config if spec.is_chain else {"name": node.name, "inputs": list(node.inputs), "layer": config})
        for key, arr in layer_arrays.items():
            arrays[f"{prefix}.{i}.{key}"] = np.ascontiguousarray(arr)
    if spec.is_chain:
        version = CHAIN_VERSION
        body = {"input_size": spec.input_size, "dtype": spec.dtype, "name": spec.name, "metadata": spec.metadata,
                "layers": configs}
    else:
        version = FORMAT_VERSION
        body = {"dtype": spec.dtype, "name": spec.name, "metadata": spec.metadata,
                "inputs": [i.to_config() for i in spec.inputs], "nodes": configs, "outputs": list(spec.outputs),
                "constants": list(spec.constants)}
        for i, value in enumerate(spec.constants.values()):
            arrays[f"constants.{i}"] = np.ascontiguousarray(value)
    header = {"magic": MAGIC, "format_version": version, "spec": body, "arrays": sorted(arrays)}
    blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    np.savez(fh, **{HEADER_KEY: blob}, **arrays)


def save_spec(spec, path):
    """Write ``spec`` to ``path`` in the native format (the ``.npz`` suffix is added if missing)."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:  # write then rename: a crash never leaves half a model under the real name
        _write_native(spec, fh)
    os.replace(tmp, path)
    return path


def spec_to_bytes(spec):
    """The native format as bytes (what ``save_spec`` writes), e.g. to ship a model to another process."""
    buf = io.BytesIO()
    _write_native(spec, buf)
    return buf.getvalue()


def load_spec(path):
    """Read a native ``.npz`` model (a path, or the bytes ``spec_to_bytes`` made) and return its ModelSpec."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        source, path = io.BytesIO(bytes(path)), "<bytes>"
    else:
        path = os.fspath(path)
        source = path
    try:
        archive = np.load(source, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FormatError(f"{path}: not a readable .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise FormatError(f"{path}: expected an .npz archive holding an rnnjit model, got a single .npy array")
    with archive:
        if HEADER_KEY not in archive.files:
            raise FormatError(f"{path}: no {HEADER_KEY!r} header; this .npz was not written by rnnjit "
                              f"(arrays found: {', '.join(archive.files[:8]) or 'none'})")
        try:
            blob = archive[HEADER_KEY]
            if blob.dtype != np.uint8 or blob.ndim != 1 or blob.size > MAX_HEADER_BYTES:
                raise ValueError(f"header must be a 1-D uint8 array under {MAX_HEADER_BYTES} bytes, "
                                 f"got {blob.dtype} {blob.shape}")
            header = json.loads(blob.tobytes().decode("utf-8"))
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise FormatError(f"{path}: unreadable rnnjit header ({exc})") from None
        if not isinstance(header, dict) or header.get("magic") != MAGIC:
            raise FormatError(f"{path}: header magic is {header.get('magic') if isinstance(header, dict) else None!r}, "
                              f"expected {MAGIC!r}")
        version = header.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise FormatError(f"{path}: format_version must be a positive integer, got {version!r}")
        if version > FORMAT_VERSION:
            raise FormatError(f"{path}: written in rnnjit model format version {version}; this rnnjit reads "
                              f"versions up to {FORMAT_VERSION}. Upgrade rnnjit to load it.")
        try:
            spec_cfg = header["spec"]
            arrays = {}
            for key in header["arrays"]:
                if key not in archive.files:
                    raise FormatError(f"{path}: header lists array {key!r} but the archive lacks it")
                arrays[key] = archive[key]
            if version == 1:
                layers = [layer_from_config(cfg, _arrays_of(arrays, f"layers.{i}."))
                          for i, cfg in enumerate(spec_cfg["layers"])]
                return ModelSpec(layers, input_size=spec_cfg["input_size"], dtype=spec_cfg["dtype"],
                                 name=spec_cfg.get("name"), metadata=spec_cfg.get("metadata"))
            inputs = [Input(cfg["name"], tuple(cfg["shape"]), cfg["dtype"]) for cfg in spec_cfg["inputs"]]
            nodes = [Node(cfg["name"], layer_from_config(cfg["layer"], _arrays_of(arrays, f"nodes.{i}.")),
                          cfg["inputs"]) for i, cfg in enumerate(spec_cfg["nodes"])]
            constants = {name: arrays[f"constants.{i}"] for i, name in enumerate(spec_cfg.get("constants", []))}
            return ModelSpec.graph(inputs, nodes, spec_cfg["outputs"], dtype=spec_cfg["dtype"],
                                   name=spec_cfg.get("name"), metadata=spec_cfg.get("metadata"), constants=constants)
        except FormatError:
            raise
        except SpecError as exc:
            raise FormatError(f"{path}: the model inside is inconsistent: {exc}") from None
        except (KeyError, TypeError, AttributeError, ValueError, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise FormatError(f"{path}: malformed rnnjit model ({type(exc).__name__}: {exc})") from None


def _arrays_of(arrays, prefix):
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def load(path, **options):
    """Load a model file into an ``engine.Model``.

    The native ``.npz`` format loads with numpy alone. Other formats are read by the converters package
    (imported only when such a file is given); ``options`` go to that converter.
    """
    from .model import Model

    return Model(load_spec_any(path, **options))


def load_spec_any(path, **options):
    """A ModelSpec from any supported file, whatever its name: the format is recognized by content first
    (converters/formats.py, the one table of formats), and ``options`` are checked against that format's
    reader before the file is read (a wrong option is a TypeError, the caller's mistake).

    Whatever goes wrong inside a parser on a malformed file comes out as ``FormatError`` (the engine's own
    errors pass through as they are); ``MemoryError`` is not caught: no loader may attempt an allocation its
    file cannot justify, and the fuzzing (tests/fuzz_loaders.py) would show one that did.
    """
    path_str = os.fspath(path)
    if not os.path.exists(path_str):
        raise FileNotFoundError(f"no such model file: {path_str}")
    if os.path.isdir(path_str):
        raise FormatError(f"{path_str}: expected a model file, got a directory")
    try:
        from converters.formats import identify
    except ImportError:
        raise FormatError(f"{path_str}: the converters package (installed with rnnjit) is missing; it is what "
                          f"tells model formats apart") from None
    fmt = _guarded(path_str, identify, path_str)
    fmt.check_options(options)
    return _guarded(path_str, fmt.reader, path_str, **options)


def native_format_version(path):
    """The format_version a native file's header states (for descriptions; load_spec checks it)."""
    with np.load(path, allow_pickle=False) as archive:
        return json.loads(archive[HEADER_KEY].tobytes().decode("utf-8")).get("format_version")


def _guarded(path, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (RnnjitError, MemoryError, FileNotFoundError):
        raise
    except RecursionError:
        raise FormatError(f"{path}: malformed model file (nested too deeply)") from None
    except Exception as exc:  # noqa: BLE001 - parsers (zipfile, numpy, h5py, protobuf) raise many types
        raise FormatError(f"{path}: malformed model file ({type(exc).__name__}: {exc})") from None
