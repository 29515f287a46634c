"""Read ``torch.save`` checkpoints (zip and legacy formats) without importing torch and without running code.

Design: a pickle can call any importable callable (``REDUCE`` on a ``GLOBAL``), so a checkpoint from
someone else is a program. ``_SafeUnpickler.find_class`` maps the handful of globals a tensor state_dict
needs onto our OWN stand-ins (a tensor rebuild that returns a numpy array, storage types that name a
dtype, OrderedDict) and refuses every other name, so no callable from the file's choosing ever runs.
Storages become numpy arrays only after their sizes are checked: a tensor's extent against its storage's
element count, and that count against the bytes actually in the file, before anything is allocated.

Formats (torch/serialization.py):

* zip (torch >= 1.6): ``<root>/data.pkl`` pickles the object; a tensor is
  ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])``
  whose storage is a persistent id ``("storage", torch.<T>Storage, key, location, numel)``; its bytes are
  the entry ``<root>/data/<key>``, little-endian unless ``<root>/byteorder`` says "big".
* legacy: five pickles in a row (magic number, protocol version, sys info, the object, the sorted
  storage keys), then each storage as int64 element count + raw bytes, in key order.
"""

import _compat_pickle
import collections
import io
import pickle
import pickletools
import re
import struct
import sys
import zipfile

import numpy as np

from engine.errors import FormatError, UnsafeFileError

from ..limits import MAX_ELEMENTS

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage type name -> numpy dtype of its bytes ("bfloat16" is read as uint16 and widened)
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
TORCH_DTYPES = {"float32": np.float32, "float": np.float32, "float64": np.float64, "double": np.float64,
                "float16": np.float16, "half": np.float16, "bfloat16": "bfloat16", "int64": np.int64,
                "long": np.int64, "int32": np.int32, "int": np.int32, "int16": np.int16, "int8": np.int8,
                "uint8": np.uint8, "bool": np.bool_}
_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]

    @property
    def itemsize(self):
        return 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize


class _StorageRef:
    """A storage named by the pickle; its bytes are fetched (and checked) after unpickling."""

    def __init__(self, stype, key, numel):
        self.stype, self.key, self.numel = stype, key, numel


class _LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _int_tuple(value, what):
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                       for v in value):
        raise FormatError(f"tensor {what} must be a tuple of integers, got {value!r:.80}")
    return tuple(value)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    """Our stand-in for torch._utils._rebuild_tensor_v2: records the view; checked and built later."""
    if not isinstance(storage, _StorageRef):
        raise FormatError(f"a tensor's storage must be a persistent storage reference, got {type(storage).__name__}")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise FormatError(f"tensor storage offset must be a non-negative integer, got {storage_offset!r:.80}")
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise FormatError(f"tensor size {size} and stride {stride} do not describe a tensor")
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    if not isinstance(data, _LazyTensor):
        raise FormatError(f"a Parameter must wrap a tensor, got {type(data).__name__}")
    return data


def _ordered_dict(*args):
    if args not in ((), ([],)):
        raise FormatError("OrderedDict arguments in a checkpoint must be empty")
    return collections.OrderedDict()


def _set(*args):
    """builtins.set, for the string sets a module keeps (``_non_persistent_buffers_set``)."""
    if args == ():
        return set()
    if len(args) != 1 or not isinstance(args[0], (list, tuple)) or not all(isinstance(v, str) for v in args[0]):
        raise FormatError("a set in a checkpoint may hold names (strings) only")
    return set(args[0])


def _device(*args):
    """torch.device: only its name matters (``"cuda:0"``); weights load onto the CPU whatever it says."""
    if not 1 <= len(args) <= 2 or not isinstance(args[0], str) or len(args[0]) > 64:
        raise FormatError(f"torch.device arguments must be a name, got {args!r:.80}")
    return ("device", args[0])


class PickledObject:
    """An instance of a class the file names (a torch.nn module, the user's own model class) as inert data: the
    class's module and name, and the state BUILD gave it (``state``, a dict of plain values, arrays and other
    PickledObjects). Nothing of the real class is imported or run: the unpickler gets a subclass of this type
    made for the name (``_object_type``), which NEWOBJ can instantiate (with no arguments) and BUILD can fill;
    calling it (REDUCE) is refused, as is anything but a dict of named values for a state."""

    module = qualname = source = ""

    def __new__(cls, *args, **kwargs):
        if args or kwargs:
            raise UnsafeFileError(f"{cls.source}: the file builds `{cls.module}.{cls.qualname}` from arguments; "
                                  f"rnnjit reads a pickled object's state only")
        obj = object.__new__(cls)
        obj.state = {}
        return obj

    def __init__(self, *args, **kwargs):   # reached only by calling the class (REDUCE), never by NEWOBJ
        raise UnsafeFileError(f"{self.source}: the file calls `{self.module}.{self.qualname}`; rnnjit reads a "
                              f"pickled object's state and runs no code from a file")

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2 and (state[1] is None or isinstance(state[1], dict)):
            state = {**(state[0] or {}), **(state[1] or {})}   # (dict state, slot state)
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise FormatError(f"{self.source}: the state of a `{self.module}.{self.qualname}` must be a dict of "
                              f"named values, got {type(state).__name__}")
        self.state = dict(state)

    @property
    def class_name(self):
        return f"{self.module}.{self.qualname}"

    def __repr__(self):
        return f"<pickled {self.class_name}>"


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}(\.[A-Za-z_][A-Za-z0-9_]{0,99}){0,15}$")
# top-level modules whose classes are never stand-ins for data: the standard library (os, subprocess, builtins,
# pickle, ...) and the libraries whose callables a hostile file would name; torch itself only under torch.nn
_NEVER = frozenset(sys.stdlib_module_names) | {"__builtin__", "copy_reg", "numpy", "torch", "scipy", "pandas",
                                               "dill", "cloudpickle", "joblib", "sklearn", "tensorflow", "keras"}


def _object_type(module, name, source, cache):
    """The PickledObject subclass standing for class ``module.name``, or None if that name may not be one: a
    torch.nn module class, or a class of the user's own code (not the standard library's, numpy's, ...)."""
    if not (_NAME.match(module) and _NAME.match(name)):
        return None
    # protocol 2 writes Python 3 names as their Python 2 spelling (subprocess -> commands): check both
    py3 = _compat_pickle.NAME_MAPPING.get((module, name), (_compat_pickle.IMPORT_MAPPING.get(module, module),))[0]
    if {module.split(".")[0], py3.split(".")[0]} & _NEVER and not module.startswith("torch.nn.modules."):
        return None
    return stand_in(module, name, source, cache)


def stand_in(module, qualname, source, cache):
    """The PickledObject subclass for class ``module.qualname`` (one per name in ``cache``), no questions asked:
    ``_object_type`` decides which names a file may have one for."""
    key = (module, qualname)
    if key not in cache:
        cache[key] = type(qualname.split(".")[-1], (PickledObject,), {"module": module, "qualname": qualname,
                                                                      "source": source, "__slots__": ()})
    return cache[key]


# (module, name) -> our stand-in. Everything not listed is refused by name.
_ALLOWED = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("builtins", "set"): _set,
    ("__builtin__", "set"): _set,
    ("torch", "device"): _device,
}
_ALLOWED.update({("torch", name): _StorageType(name) for name in STORAGE_DTYPES})
_ALLOWED.update({("torch", name): ("dtype", name) for name in TORCH_DTYPES})


_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def _check_memo_indices(stream, source):
    """Refuse a pickle whose memo indices exceed its own length, before unpickling it.

    Python's unpickler grows its memo table to the index a PUT names and clears the new slots: a ten-byte pickle
    with ``LONG_BINPUT 300000000`` makes it allocate and touch 4.6 GB (fuzzing found files that reach 19 GB). A
    pickler numbers its memo entries from 0, one per PUT, so an index can never exceed the pickle's size. The
    scan reads opcodes only (pickletools), runs nothing, and leaves ``stream`` where it was."""
    start = stream.tell()
    try:
        for opcode, arg, pos in pickletools.genops(stream):
            if opcode.name in _MEMO_PUTS and isinstance(arg, int) and arg > pos:
                raise FormatError(f"{source}: malformed checkpoint pickle (memo index {arg} at byte {pos} "
                                  f"exceeds anything a pickler writes there)")
    except FormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to read opcodes means a malformed pickle
        raise FormatError(f"{source}: malformed checkpoint pickle ({type(exc).__name__}: {exc})") from None
    finally:
        stream.seek(start)


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, data, source, allow_storages=True):
        stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
        _check_memo_indices(stream, source)
        super().__init__(stream)
        self.source = source
        self.allow_storages = allow_storages
        self.types = {}

    def find_class(self, module, name):
        target = _ALLOWED.get((module, name))
        if target is None and self.allow_storages:
            target = _object_type(module, name, self.source, self.types)
        if target is None or (not self.allow_storages and isinstance(target, _StorageType)):
            raise UnsafeFileError(f"{self.source}: this file pickles `{module}.{name}`; rnnjit loads state_dicts "
                                  f"and pickled torch.nn modules as data (tensors, names, numbers) and runs no "
                                  f"code from a file")
        return target

    def persistent_load(self, pid):
        if not self.allow_storages:
            raise UnsafeFileError(f"{self.source}: unexpected persistent reference in a header pickle")
        if isinstance(pid, tuple) and len(pid) == 4 and pid[0] == "module":
            # the legacy format records each module class's source code to warn when it changed; the class is all
            # the unpickler needs back (our inert stand-in, from find_class)
            if not (isinstance(pid[1], type) and issubclass(pid[1], PickledObject)):
                raise FormatError(f"{self.source}: a module reference must name a module class, got {pid[1]!r:.80}")
            return pid[1]
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise FormatError(f"{self.source}: unsupported persistent reference {pid!r:.80} (expected a "
                              f"('storage', type, key, location, numel) tuple)")
        stype, key, _location, numel = pid[1:5]
        if len(pid) > 5 and pid[5] is not None:
            raise FormatError(f"{self.source}: storage views (legacy view_metadata) are not supported")
        if not isinstance(stype, _StorageType):
            raise FormatError(f"{self.source}: storage type must be a torch storage class, got {stype!r:.80}")
        if not isinstance(key, str) or not _KEY.match(key):
            raise UnsafeFileError(f"{self.source}: storage key {key!r:.80} is not a plain name")
        if not isinstance(numel, int) or not 0 <= numel <= MAX_ELEMENTS:
            raise FormatError(f"{self.source}: storage {key} declares {numel!r:.40} elements")
        return _StorageRef(stype, key, numel)


def _unpickle(data, source):
    try:
        return _SafeUnpickler(data, source).load()
    except (FormatError, UnsafeFileError):
        raise
    except RecursionError:
        raise FormatError(f"{source}: pickle nests too deeply") from None
    except Exception as exc:  # noqa: BLE001 - any other failure means a malformed pickle
        raise FormatError(f"{source}: malformed checkpoint pickle ({type(exc).__name__}: {exc})") from None


def _children(obj):
    if isinstance(obj, PickledObject):
        return obj.state.values()
    if isinstance(obj, dict):
        return obj.values()
    if isinstance(obj, (list, tuple)):
        return obj
    return ()


def _collect(obj, found, depth=0, seen=None):
    """The tensors in ``obj``, each container visited once (a pickle's memo lets a 100-byte file nest one list in
    itself twice per level, 2**100 paths deep)."""
    seen = set() if seen is None else seen
    if depth > 100:
        raise FormatError("checkpoint object nests more than 100 levels deep")
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, _LazyTensor):
        found.append(obj)
    for v in _children(obj):
        _collect(v, found, depth + 1, seen)


def _materialize(obj, arrays, done=None):
    """``obj`` with each tensor as its array (shared containers stay shared; a container holding itself is an
    error: plain data does not)."""
    done = {} if done is None else done
    if isinstance(obj, _LazyTensor):
        return arrays[id(obj)]
    if id(obj) in done:
        if done[id(obj)] is None:
            raise FormatError("the checkpoint holds a container that contains itself")
        return done[id(obj)]
    if isinstance(obj, (dict, list, tuple, PickledObject)):
        done[id(obj)] = None
    if isinstance(obj, PickledObject):
        obj.state = _materialize(obj.state, arrays, done)
        out = obj
    elif isinstance(obj, dict):
        out = collections.OrderedDict() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _materialize(v, arrays, done)
    elif isinstance(obj, (list, tuple)):
        out = type(obj)(_materialize(v, arrays, done) for v in obj)
    else:
        return obj
    done[id(obj)] = out
    return out


def _storage_array(ref, raw, byteorder, source):
    """numpy view of a storage's bytes, after checking the byte count."""
    need = ref.numel * ref.stype.itemsize
    if len(raw) < need:
        raise FormatError(f"{source}: storage {ref.key} holds {len(raw)} bytes but declares {ref.numel} "
                          f"elements of {ref.stype.itemsize} bytes ({need})")
    order = "<" if byteorder == "little" else ">"
    if ref.stype.dtype == "bfloat16":
        return np.frombuffer(raw, dtype=order + "u2", count=ref.numel)
    return np.frombuffer(raw, dtype=np.dtype(ref.stype.dtype).newbyteorder(order), count=ref.numel)


def _tensor_array(t, storage, source):
    """The tensor view (offset, size, stride) of its storage as a new native-endian array, bounds checked."""
    numel = 1
    for s in t.size:
        numel *= s
    if numel:
        last = t.offset + sum((s - 1) * st for s, st in zip(t.size, t.stride))
        if last >= t.storage.numel:
            raise FormatError(f"{source}: a tensor of size {t.size} (stride {t.stride}, offset {t.offset}) "
                              f"reaches element {last} of storage {t.storage.key}, which has {t.storage.numel}")
    if numel > MAX_ELEMENTS:
        raise FormatError(f"{source}: a tensor of size {t.size} is too large")
    item = storage.itemsize
    if numel:
        view = np.lib.stride_tricks.as_strided(storage[t.offset:], shape=t.size,
                                               strides=tuple(st * item for st in t.stride), writeable=False)
    else:
        view = np.zeros(t.size, storage.dtype)
    arr = np.array(view, dtype=storage.dtype.newbyteorder("="))
    if t.storage.stype.dtype == "bfloat16":  # bfloat16 = the high half of a float32
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr


def _build(obj, fetch, source):
    tensors = []
    _collect(obj, tensors)
    storages, arrays = {}, {}
    for t in tensors:
        key = t.storage.key
        if key not in storages:
            storages[key] = fetch(t.storage)
        elif storages[key].size != t.storage.numel:
            raise FormatError(f"{source}: storage {key} is declared with two different sizes")
        arrays[id(t)] = _tensor_array(t, storages[key], source)
    return _materialize(obj, arrays)


def _safe_member(name, source):
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or (parts and re.match(r"^[A-Za-z]:$", parts[0])):
        raise UnsafeFileError(f"{source}: archive entry {name!r} points outside the archive")


def load_zip(path_or_bytes, source):
    try:
        zf = zipfile.ZipFile(path_or_bytes if not isinstance(path_or_bytes, (bytes, bytearray))
                             else io.BytesIO(path_or_bytes))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FormatError(f"{source}: not a readable zip checkpoint ({exc})") from None
    with zf:
        infos = {info.filename: info for info in zf.infolist()}
        for name in infos:
            _safe_member(name, source)
        pkls = [n for n in infos if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise FormatError(f"{source}: expected one <root>/data.pkl in a torch zip checkpoint, "
                              f"found {pkls or 'none'}")
        root = pkls[0][: -len("data.pkl")]
        byteorder = "little"
        if root + "byteorder" in infos:
            byteorder = zf.read(root + "byteorder").decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise FormatError(f"{source}: byteorder must be 'little' or 'big', got {byteorder!r:.20}")
        obj = _unpickle(zf.read(pkls[0]), source)

        def fetch(ref):
            name = f"{root}data/{ref.key}"
            info = infos.get(name)
            if info is None:
                raise FormatError(f"{source}: storage {ref.key} is missing from the archive ({name})")
            need = ref.numel * ref.stype.itemsize
            if info.file_size < need:  # checked from the directory, before reading or allocating
                raise FormatError(f"{source}: storage {ref.key} holds {info.file_size} bytes but declares "
                                  f"{ref.numel} elements of {ref.stype.itemsize} bytes ({need})")
            try:
                raw = zf.read(name)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise FormatError(f"{source}: cannot read storage {ref.key} ({exc})") from None
            return _storage_array(ref, raw, byteorder, source)

        return _build(obj, fetch, source)


def load_legacy(data, source):
    f = io.BytesIO(data)

    def header():
        try:
            return _SafeUnpickler(f, source, allow_storages=False).load()
        except (FormatError, UnsafeFileError):
            raise
        except Exception as exc:  # noqa: BLE001
            raise FormatError(f"{source}: not a torch checkpoint ({type(exc).__name__}: {exc})") from None

    if header() != LEGACY_MAGIC:
        raise FormatError(f"{source}: not a torch checkpoint (bad legacy magic number)")
    version = header()
    if version != LEGACY_PROTOCOL:
        raise FormatError(f"{source}: legacy torch protocol version {version!r:.20} is not supported")
    sys_info = header()
    little = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
    obj = _unpickle(f, source)
    keys = header()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise FormatError(f"{source}: malformed storage key list")
    tensors = []
    _collect(obj, tensors)
    itemsize = {t.storage.key: t.storage.stype.itemsize for t in tensors}
    blobs = {}
    for key in keys:  # each: int64 element count, then count * itemsize bytes
        if key not in itemsize:
            raise FormatError(f"{source}: storage {key!r:.40} is listed but no tensor uses it")
        head = f.read(8)
        if len(head) != 8:
            raise FormatError(f"{source}: file ends before storage {key}")
        (count,) = struct.unpack("<q" if little else ">q", head)
        start = f.tell()
        if count < 0 or count * itemsize[key] > len(data) - start:
            raise FormatError(f"{source}: storage {key} declares {count} elements of {itemsize[key]} bytes but "
                              f"{len(data) - start} bytes remain")
        blobs[key] = (count, start)
        f.seek(start + count * itemsize[key])

    def fetch(ref):
        if ref.key not in blobs:
            raise FormatError(f"{source}: storage {ref.key} is missing from the file")
        count, start = blobs[ref.key]
        if count != ref.numel:
            raise FormatError(f"{source}: storage {ref.key} holds {count} elements but the pickle says {ref.numel}")
        return _storage_array(ref, data[start:start + count * ref.stype.itemsize],
                              "little" if little else "big", source)

    return _build(obj, fetch, source)


def load_checkpoint(path_or_bytes):
    """The object a ``torch.save`` file holds, with tensors as numpy arrays (float16/bfloat16 widened)."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        data, source = bytes(path_or_bytes), "<bytes>"
    else:
        source = str(path_or_bytes)
        with open(path_or_bytes, "rb") as fh:
            data = fh.read()
    if data[:4] == b"PK\x03\x04":
        return load_zip(data, source)
    if data[:1] == b"\x80":
        return load_legacy(data, source)
    raise FormatError(f"{source}: not a torch checkpoint (neither a zip archive nor a pickle)")
