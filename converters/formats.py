"""What a model file is, in one table: each format's name, how its content gives it away, its extensions,
its reader and the loading options that reader takes.

Design: a file is recognized **by content first**, from its first bytes and, for zip archives, the names of
its entries; the extension is consulted only when the content says nothing (a truncated or foreign file),
so a checkpoint named ``.pkl``, ``.model``, ``.ckpt`` or with no extension loads when its bytes say what it
is, and a wrong extension never sends a file to the wrong reader. Nothing here imports onnx, h5py or torch:
a reader imports what it needs when it runs. ``engine.load``, ``rnnjit info`` and ``rnnjit convert`` all
ask this module (``identify``), so the answer cannot differ between them.

Options are checked against the reader's real signature before the file is read: a wrong option is the
caller's mistake (``TypeError``; the CLI's usage error, exit 2), never the file's.
"""

import inspect
import os
import struct
import zipfile
from dataclasses import dataclass

from engine.errors import FormatError

# ---------------------------------------------------------------------------------------------- signatures
ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# HDF5 allows a user block before the superblock: the signature then sits at 512, 1024, 2048, ... bytes
HDF5_OFFSETS = (0, 512, 1024, 2048, 4096)
# torch.save's legacy format starts with a pickled int: PROTO 2, LONG1 of 10 bytes, the magic number
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
# ONNX ModelProto: field 1 (ir_version, varint) comes first in every exporter's output; the next field
# is one of ModelProto's (producer_name 2, producer_version 3, domain 4, model_version 5, doc_string 6,
# graph 7, opset_import 8, metadata_props 14, training_info 20, functions 25)
_ONNX_NEXT_TAGS = {(2 << 3) | 2, (3 << 3) | 2, (4 << 3) | 2, (5 << 3) | 0, (6 << 3) | 2, (7 << 3) | 2,
                   (8 << 3) | 2, (14 << 3) | 2, (20 << 3) | 2, (25 << 3) | 2}
HEAD_BYTES = 4096 + 8


def _zip_names(path):
    """The entry names of a zip archive, or None when its directory cannot be read (a truncated file: the
    extension then picks the reader, which says what is wrong)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - zipfile raises BadZipFile, NotImplementedError, struct.error, ...
        return None


def _is_native(head, names, size):
    from engine.io import HEADER_KEY

    return names is not None and f"{HEADER_KEY}.npy" in names


def _is_torch_zip(head, names, size):
    # torch.save's zip: "<root>/data.pkl" (the root folder is the file's stem, or "archive")
    return names is not None and any(n == "data.pkl" or n.endswith("/data.pkl") for n in names)


def _is_keras_zip(head, names, size):
    return names is not None and "config.json" in names and "model.weights.h5" in names


def _is_npz_arrays(head, names, size):
    return names is not None and bool(names) and all(n.endswith(".npy") for n in names)


def _is_torch_legacy(head, names, size):
    return head.startswith(TORCH_LEGACY_MAGIC)


def _is_hdf5(head, names, size):
    return any(head[o:o + len(HDF5_MAGIC)] == HDF5_MAGIC for o in HDF5_OFFSETS)


def _is_safetensors(head, names, size):
    # an 8-byte little-endian header length, then the JSON header itself
    if len(head) < 9:
        return False
    (n,) = struct.unpack_from("<Q", head)
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _is_onnx(head, names, size):
    if len(head) < 3 or head[0] != 0x08:           # field 1, varint: ir_version
        return False
    i, version = 1, 0
    while i < len(head) and i < 5:
        version |= (head[i] & 0x7F) << (7 * (i - 1))
        if not head[i] & 0x80:
            break
        i += 1
    if not 1 <= version <= 64 or i + 1 >= len(head):
        return False
    tag, j = 0, i + 1
    for shift in (0, 7):
        tag |= (head[j] & 0x7F) << shift
        if not head[j] & 0x80:
            break
        j += 1
    return tag in _ONNX_NEXT_TAGS


# ---------------------------------------------------------------------------------------------- readers
# Each takes the path and its options as keyword arguments with their real defaults: the signature IS the
# list of options a format accepts.

def read_native(path):
    from engine.io import load_spec

    return load_spec(path)


def _torch_reader(load_arrays, order):
    def read(path, *, key=None, layers=None, activations=None, head_activation=None, rnn_nonlinearity="tanh",
             ignore=(), dtype=None):
        from .pytorch import spec_from_arrays

        return spec_from_arrays(load_arrays(path), key=key, source=path, order=order, layers=layers,
                                activations=activations, head_activation=head_activation,
                                rnn_nonlinearity=rnn_nonlinearity, ignore=ignore, dtype=dtype)
    return read


def _checkpoint_arrays(path):
    from .pytorch.reader import load_checkpoint

    return load_checkpoint(path)


def _safetensors_arrays(path):
    from .safetensors_reader import load_safetensors

    return load_safetensors(path)


def _npz_arrays(path):
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise FormatError(f"{path}: unreadable .npz ({exc})") from None


read_torch_checkpoint = _torch_reader(_checkpoint_arrays, "module")
# safetensors keeps tensors sorted by name, not in module order: layers are chained by their sizes
read_safetensors = _torch_reader(_safetensors_arrays, "chain")
read_npz_arrays = _torch_reader(_npz_arrays, "module")


def read_onnx(path, *, dtype=None, time_axis=None, batch_axis=None, fixed_inputs=None, frame_shape=None,
              frame_context=None, state_pairs=None):
    from .onnx import from_onnx

    return from_onnx(path, dtype=dtype, time_axis=time_axis, batch_axis=batch_axis, fixed_inputs=fixed_inputs,
                     frame_shape=frame_shape, frame_context=frame_context, state_pairs=state_pairs)


def read_keras(path, *, dtype=None, custom_layers=None):
    from .keras import from_keras

    return from_keras(path, dtype=dtype, custom_layers=custom_layers)


# ---------------------------------------------------------------------------------------------- descriptions
def _describe_native(path):
    from engine.io import native_format_version

    return f"rnnjit native (.npz, format version {native_format_version(path)})"


def _describe_onnx(path):
    try:
        import onnx

        m = onnx.load(path, load_external_data=False)
        opset = max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default="?")
        producer = f", from {m.producer_name} {m.producer_version}".rstrip() if m.producer_name else ""
        return f"ONNX (opset {opset}{producer})"
    except Exception:  # noqa: BLE001 - description only; reading the model is the reader's business
        return "ONNX"


# ---------------------------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Format:
    """One kind of model file. ``sniff(head, zip_names, size)`` says whether content is of this kind: the
    first HEAD_BYTES bytes, the entry names of a zip archive (None for anything else) and the file size."""

    name: str
    title: str
    extensions: tuple
    sniff: object
    reader: object
    describe: object = None

    @property
    def options(self):
        """The loading options this format takes, name -> default."""
        params = list(inspect.signature(self.reader).parameters.values())[1:]
        return {p.name: p.default for p in params}

    def check_options(self, options):
        """Raise TypeError naming the options this format does not take (before anything is read)."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            takes = f"the loading options {', '.join(sorted(self.options))}" if self.options else "no loading options"
            raise TypeError(f"{self.title} files take {takes}; got unexpected {', '.join(unknown)}")

    def description(self, path):
        return self.describe(path) if self.describe else self.title

    def read(self, path, **options):
        self.check_options(options)
        return self.reader(path, **options)


_TORCH_EXTS = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".model", ".tar")

FORMATS = (
    Format("native", "rnnjit native", (".npz",), _is_native, read_native, _describe_native),
    Format("keras", "Keras 3 (.keras)", (".keras",), _is_keras_zip, read_keras),
    Format("torch-zip", "PyTorch checkpoint (zip, read without torch)", _TORCH_EXTS, _is_torch_zip,
           read_torch_checkpoint),
    Format("npz-arrays", "named arrays (.npz, e.g. a PyTorch state_dict)", (".npz",), _is_npz_arrays,
           read_npz_arrays),
    Format("torch-legacy", "PyTorch checkpoint (legacy pickle, read without torch)", _TORCH_EXTS,
           _is_torch_legacy, read_torch_checkpoint),
    Format("keras-h5", "Keras HDF5 (.h5)", (".h5", ".hdf5"), _is_hdf5, read_keras),
    Format("safetensors", "safetensors", (".safetensors",), _is_safetensors, read_safetensors),
    Format("onnx", "ONNX", (".onnx",), _is_onnx, read_onnx, _describe_onnx),
)
BY_NAME = {f.name: f for f in FORMATS}
# the formats converters.from_torch reads: those whose reader is one of the torch readers above
TORCH_FORMATS = tuple(f.name for f in FORMATS
                      if f.reader in (read_torch_checkpoint, read_safetensors, read_npz_arrays))


def sniff(path):
    """The Format the content of ``path`` shows, or None when its bytes match none."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    names = _zip_names(path) if head.startswith(ZIP_MAGIC) else None
    for fmt in FORMATS:
        if fmt.name == "safetensors":
            if _is_safetensors(head, names, size):
                return fmt
        elif fmt.sniff(head, names, size):
            return fmt
    return None


def identify(path):
    """The Format of ``path``: by content, else by extension; a FormatError that lists them when neither."""
    path = os.fspath(path)
    fmt = sniff(path)
    if fmt is not None:
        return fmt
    ext = os.path.splitext(path)[1].lower()
    by_ext = [f for f in FORMATS if ext in f.extensions]
    if by_ext:
        # content says nothing (truncated, damaged): the extension's reader will say what is wrong with it
        return by_ext[0]
    known = sorted({e for f in FORMATS for e in f.extensions})
    raise FormatError(f"{path}: unrecognized model format {ext or '(no extension)'!r}: its content is none of "
                      f"{', '.join(f.title for f in FORMATS)}, and its extension none of {', '.join(known)}")
