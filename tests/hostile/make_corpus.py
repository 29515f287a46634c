"""Write the hostile-file corpus: one crafted file per trick, for every format rnnjit loads.

    python tests/hostile/make_corpus.py [OUTDIR]     (default: tests/hostile/corpus)

Needs the test extras (torch for valid checkpoint templates, keras for .keras/.h5 templates, onnx). Each file
comes with its expected outcome in MANIFEST.json: the engine's exception class and a message fragment.
Payloads that would run code all try to create the marker file named by MARKER (in the system's temp
directory); tests/test_hostile_files.py proves it never appears. Nothing here is downloaded.
"""

import io
import json
import os
import pickle
import struct
import sys
import tempfile
import zipfile

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

MARKER = os.path.join(tempfile.gettempdir(), "rnnjit-hostile-marker")
HERE = os.path.dirname(os.path.abspath(__file__))

CORPUS = {}  # name -> (bytes, expected exception class name, message fragment)


def add(name, data, error, match):
    CORPUS[name] = (data, error, match)


# ------------------------------------------------------------------------------------------- pickles
def _s(text):  # SHORT_BINUNICODE
    b = text.encode()
    return b"\x8c" + bytes([len(b)]) + b


TOUCH = f"touch {MARKER}"
PY_TOUCH = f"open({MARKER!r}, 'w').write('ran')"
PAYLOADS = {
    # GLOBAL + REDUCE: os.system("touch ...")
    "global_reduce": b"\x80\x02cos\nsystem\n" + _s(TOUCH) + b"\x85R.",
    # STACK_GLOBAL (protocol 4) + REDUCE: builtins.exec(...)
    "stack_global": b"\x80\x04" + _s("builtins") + _s("exec") + b"\x93" + _s(PY_TOUCH) + b"\x85R.",
    # INST: posix.system
    "inst": b"(" + _s(TOUCH) + b"iposix\nsystem\n.",
    # OBJ: subprocess.Popen(["touch", marker])
    "obj": b"\x80\x02(csubprocess\nPopen\n]" + _s("touch") + b"a" + _s(MARKER) + b"ao.",
    # NEWOBJ: cls.__new__(cls, *args) on a class with side effects in its constructor chain
    "newobj": b"\x80\x02csubprocess\nPopen\n]" + _s("touch") + b"a" + _s(MARKER) + b"a\x85\x81.",
    # BUILD with a __setstate__ smuggled into the state of an allowed type
    "build_setstate": (b"\x80\x02ccollections\nOrderedDict\n)R}(" + _s("__setstate__") + b"cbuiltins\neval\nub"
                       + _s(PY_TOUCH) + b"b."),
    # EXT1: the copyreg extension registry (code 1 -> whatever the process registered)
    "ext1": b"\x80\x02\x82\x01" + _s(TOUCH) + b"\x85R.",
    # getattr(importlib.import_module("os"), "system")("touch ...")
    "getattr_chain": (b"\x80\x02cbuiltins\ngetattr\ncimportlib\nimport_module\n" + _s("os") + b"\x85R"
                      + _s("system") + b"\x86R" + _s(TOUCH) + b"\x85R."),
    # the payload nested inside a list inside a tuple inside a dict (a state_dict's shape)
    "nested_container": b"\x80\x02}" + _s("w") + b"](K\x01cos\nsystem\n" + _s(TOUCH) + b"\x85R\x85es.",
    # as the value of an OrderedDict (what torch.save(state_dict) writes)
    "ordereddict_value": (b"\x80\x02ccollections\nOrderedDict\n)R" + _s("weight") + b"cbuiltins\nexec\n"
                          + _s(PY_TOUCH) + b"\x85Rs."),
}

# what the refusal names: the first global the payload reaches
PAYLOAD_GLOBAL = {"global_reduce": "os.system", "stack_global": "builtins.exec", "inst": "posix.system",
                  "obj": "subprocess.Popen", "newobj": "subprocess.Popen", "build_setstate": "builtins.eval",
                  "getattr_chain": "builtins.getattr", "nested_container": "os.system",
                  "ordereddict_value": "builtins.exec"}


def _valid_torch_zip(obj=None):
    import torch

    buf = io.BytesIO()
    torch.save(obj if obj is not None else torch.nn.GRU(2, 3).state_dict(), buf)
    return buf.getvalue()


FIXED_DATE = (1980, 1, 1, 0, 0, 0)   # every zip entry's timestamp: the corpus is the same bytes on every run


def _zip_replace(data, replace=None, extra=None, transform=None):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            body = zin.read(item.filename)
            for suffix, new in (replace or {}).items():
                if item.filename.endswith(suffix):
                    body = new
            if transform:
                body = transform(item.filename, body)
            item.date_time = FIXED_DATE
            zout.writestr(item, body)
        for name, body in (extra or {}).items():
            zout.writestr(zipfile.ZipInfo(name, FIXED_DATE), body)
    return out.getvalue()


def _legacy(obj_pickle):
    head = b"".join(pickle.dumps(v, protocol=2) for v in
                    (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}))
    return head + obj_pickle + pickle.dumps([], protocol=2)


class _StorageSkipper(pickle.Unpickler):
    """Reads past a torch.save object pickle of our own making, building nothing from it."""

    class Anything(dict):
        """Whatever the pickle builds: a dict that takes items and attributes."""

    def find_class(self, module, name):
        return lambda *args, **kwargs: self.Anything()

    def persistent_load(self, pid):
        return None


def _renumber_legacy_keys(data):
    """torch's legacy writer names each storage by its memory address; renumber them 0, 1, ... (zero-padded to
    the same length, so the pickles stay valid) for a file that is the same bytes on every run."""
    stream = io.BytesIO(data)
    for _ in range(3):                                  # magic, protocol, sys info
        pickle.load(stream)
    _StorageSkipper(stream).load()                      # the object (its storages only referenced)
    keys = pickle.load(stream)                          # the sorted storage keys
    for i, key in enumerate(keys):
        data = data.replace(key.encode(), str(i).zfill(len(key)).encode())
    return data


def torch_files():
    import torch

    valid = _valid_torch_zip()
    for name, blob in PAYLOADS.items():
        # EXT1 names no global itself: with no extension registered it is refused as malformed
        error, match = (("FormatError", "unregistered extension code 1") if name == "ext1" else
                        ("UnsafeFileError", f"this file pickles `{PAYLOAD_GLOBAL[name]}`"))
        add(f"torch_zip_{name}.pt", _zip_replace(valid, {"data.pkl": blob}), error, match)
    for name in ("global_reduce", "stack_global", "nested_container"):
        add(f"torch_legacy_{name}.pt", _legacy(PAYLOADS[name]), "UnsafeFileError",
            f"this file pickles `{PAYLOAD_GLOBAL[name]}`")
    add("torch_zip_truncated.pt", valid[:200], "FormatError", "not a readable zip checkpoint")
    buf = io.BytesIO()
    # one storage: the legacy writer orders storages by memory address, which differs between runs
    torch.save({"weight": torch.arange(40.0)}, buf, _use_new_zipfile_serialization=False)
    add("torch_legacy_truncated.pt", _renumber_legacy_keys(buf.getvalue())[:-50], "FormatError", "bytes remain")
    big = _valid_torch_zip({"w": torch.ones(1000, 1000)})
    add("torch_storage_shorter_than_declared.pt",
        _zip_replace(big, transform=lambda n, b: b[:100] if n.endswith("/data/0") else b),
        "FormatError", "holds 100 bytes but declares 1000000 elements")
    small = _valid_torch_zip({"w": torch.ones(4)})
    with zipfile.ZipFile(io.BytesIO(small)) as z:
        pkl = z.read([n for n in z.namelist() if n.endswith("data.pkl")][0])
    tail = b"X\x03\x00\x00\x00cpuq\x06K\x04t"
    assert pkl.count(tail) == 1
    add("torch_absurd_numel_2e40.pt",
        _zip_replace(small, {"data.pkl": pkl.replace(tail, tail[:-3] + b"\x8a\x06\x00\x00\x00\x00\x00\x01t")}),
        "FormatError", "declares 1099511627776 elements")
    add("torch_zip_entry_dotdot.pt", _zip_replace(valid, extra={"../evil": b"x"}), "UnsafeFileError",
        "points outside the archive")
    add("torch_zip_entry_absolute.pt", _zip_replace(valid, extra={"/etc/evil": b"x"}), "UnsafeFileError",
        "points outside the archive")
    add("torch_storage_key_is_a_path.pt",
        _zip_replace(small, {"data.pkl": pkl.replace(b"X\x01\x00\x00\x000q\x05", b"X\x0d\x00\x00\x00../../etc/pwdq\x05")}),
        "UnsafeFileError", "is not a plain name")
    add("torch_not_a_checkpoint.pt", b"hello world, not a model", "FormatError", "not a torch checkpoint")
    module_files(valid)


def _module_zip(obj):
    """A torch zip checkpoint of ``obj`` (a module) saved by torch, storages named 0, 1, ... as torch names them."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def module_files(valid):
    """Pickled modules (torch.save(model)) made hostile: calls of torch.nn and user classes, a hook function,
    crafted attributes, a module inside itself, a pickle whose shared lists make 2**80 paths."""
    import torch.nn as nn

    add("torch_module_reduce_torch_nn.pt",
        _zip_replace(valid, {"data.pkl": b"\x80\x02ctorch.nn.modules.linear\nLinear\nK\x03K\x04\x86R."}),
        "UnsafeFileError", "builds `torch.nn.modules.linear.Linear` from arguments")
    add("torch_module_user_class_called.pt",
        _zip_replace(valid, {"data.pkl": b"\x80\x02cevilpkg.models\nNet\n)R."}),
        "UnsafeFileError", "the file calls `evilpkg.models.Net`")
    # a Linear whose _forward_hooks hold a function (what register_forward_hook(print) pickles; written by hand:
    # torch's own pickle of it varies from run to run in which strings it memoizes)
    hook = (b"\x80\x02ctorch.nn.modules.linear\nLinear\n)\x81}X\x0e\x00\x00\x00_forward_hooks"
            b"ccollections\nOrderedDict\n)RK\x00c__builtin__\nprint\nssb.")
    add("torch_module_forward_hook.pt", _zip_replace(valid, {"data.pkl": hook}), "UnsafeFileError",
        "this file pickles `__builtin__.print`")
    conv = nn.Conv1d(4, 4, 3)
    conv.kernel_size = (10 ** 12,)
    # (no recurrent modules in these: torch pickles their weight names differently from run to run)
    add("torch_module_huge_kernel_size.pt", _module_zip(nn.Sequential(nn.Linear(4, 4), conv)), "FormatError",
        "kernel_size = (1000000000000,) is not a tuple of integers")
    conv = nn.Conv1d(4, 4, 3)
    conv.dilation = (-5,)
    add("torch_module_negative_dilation.pt", _module_zip(nn.Sequential(nn.Linear(4, 4), conv)), "FormatError",
        "dilation must be")
    loop = nn.Sequential(nn.Linear(4, 3))
    loop._modules["me"] = loop
    add("torch_module_contains_itself.pt", _module_zip(loop), "FormatError", "contains itself")
    shared = []
    for _ in range(80):
        shared = [shared, shared]
    add("torch_pickle_shared_lists_2e80_paths.pt",
        _zip_replace(valid, {"data.pkl": pickle.dumps({"w": shared}, protocol=2)}), "FormatError",
        "say which holds the model's state_dict")


# ------------------------------------------------------------------------------------------- native .npz
def _native(header, arrays):
    buf = io.BytesIO()
    np.savez(buf, __rnnjit__=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    return buf.getvalue()


def native_files():
    import engine
    from engine.io import spec_to_bytes

    rng = np.random.default_rng(0)
    spec = engine.ModelSpec([engine.GRU(2, 3, {"weight_ih": rng.standard_normal((9, 2)),
                                               "weight_hh": rng.standard_normal((9, 3))})])
    valid = spec_to_bytes(spec)
    with np.load(io.BytesIO(valid), allow_pickle=False) as z:
        header = json.loads(z["__rnnjit__"].tobytes())
        arrays = {k: z[k] for k in z.files if k != "__rnnjit__"}
    add("native_wrong_magic.npz", _native(dict(header, magic="not-rnnjit"), arrays), "FormatError",
        "header magic is 'not-rnnjit'")
    add("native_newer_version.npz", _native(dict(header, format_version=99), arrays), "FormatError",
        "format version 99")
    add("native_truncated.npz", valid[: len(valid) // 2], "FormatError", "not a readable .npz archive")
    buf = io.BytesIO()
    np.savez(buf, __rnnjit__=np.frombuffer(json.dumps(header).encode(), np.uint8),
             **dict(arrays, **{"layers.0.dir0.weight_ih": np.array([object()] * 18, dtype=object).reshape(9, 2)}))
    add("native_object_array_pickle.npz", buf.getvalue(), "FormatError", "Object arrays cannot be loaded")
    nan = dict(arrays)
    w = nan["layers.0.dir0.weight_hh"].copy()
    w[1, 1] = np.nan
    nan["layers.0.dir0.weight_hh"] = w
    add("native_nan_weights.npz", _native(header, nan), "FormatError", "NaN or infinite")
    absurd = json.loads(json.dumps(header))
    absurd["spec"]["layers"][0]["hidden_size"] = 1 << 31
    add("native_absurd_hidden_size.npz", _native(absurd, arrays), "FormatError", "hidden 2147483648")
    add("native_header_not_json.npz", _raw_header(b"\xff\xfe{not json", arrays), "FormatError",
        "unreadable rnnjit header")


def _raw_header(blob, arrays):
    buf = io.BytesIO()
    np.savez(buf, __rnnjit__=np.frombuffer(blob, np.uint8), **arrays)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------- safetensors
def _st(header, data=b""):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def safetensors_files():
    w = np.ones((9, 2), np.float32).tobytes()
    ok = {"rnn.weight_ih_l0": {"dtype": "F32", "shape": [9, 2], "data_offsets": [0, len(w)]}}
    add("st_header_length_huge.safetensors", struct.pack("<Q", 1 << 60) + b"{}", "FormatError",
        "header length 1152921504606846976 does not fit")
    add("st_offsets_past_end.safetensors",
        _st({"w": {"dtype": "F32", "shape": [9, 2], "data_offsets": [0, 10_000]}}, w), "FormatError",
        "do not match its size or the file")
    add("st_shape_overflows_int64.safetensors",
        _st({"w": {"dtype": "F32", "shape": [1 << 32, 1 << 32], "data_offsets": [0, 0]}}), "FormatError",
        "do not match its size")
    add("st_truncated.safetensors", _st(ok, w)[:-20], "FormatError", "do not match its size or the file")
    add("st_header_not_json.safetensors", struct.pack("<Q", 5) + b"{nope", "FormatError", "unreadable safetensors header")
    nan = np.ones((9, 2), np.float32)
    nan[3, 1] = np.inf
    add("st_inf_weights.safetensors", _st({"rnn.weight_ih_l0": ok["rnn.weight_ih_l0"],
                                           "rnn.weight_hh_l0": {"dtype": "F32", "shape": [9, 3],
                                                                "data_offsets": [len(w), len(w) + 108]}},
                                          nan.tobytes() + np.ones(27, np.float32).tobytes()),
        "FormatError", "NaN or infinite")
    add("st_unknown_dtype.safetensors", _st({"w": {"dtype": "F8_E4M3X", "shape": [1], "data_offsets": [0, 1]}}, b"\x00"),
        "FormatError", "which rnnjit does not read")


# ------------------------------------------------------------------------------------------- ONNX
def onnx_files():
    import onnx
    from onnx import TensorProto, helper

    def lstm_model(W=None, extra_inits=(), nodes=None):
        H, I = 3, 2
        rng = np.random.default_rng(0)
        W = rng.standard_normal((1, 4 * H, I)).astype(np.float32) if W is None else W
        R = rng.standard_normal((1, 4 * H, H)).astype(np.float32)
        inits = [helper.make_tensor("W", TensorProto.FLOAT, W.shape, W.ravel()),
                 helper.make_tensor("R", TensorProto.FLOAT, R.shape, R.ravel()), *extra_inits]
        nodes = nodes or [helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=H)]
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", 1, I])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])

    def external(location):
        t = TensorProto()
        t.name, t.data_type = "R", TensorProto.FLOAT
        t.dims.extend([1, 12, 3])
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", "0"), ("length", "144")):
            e = t.external_data.add()
            e.key, e.value = k, v
        m = lstm_model()
        del m.graph.initializer[1]
        m.graph.initializer.append(t)
        return m.SerializeToString()

    add("onnx_external_data_dotdot.onnx", external("../../../../etc/passwd"), "UnsafeFileError",
        "outside the model's directory")
    add("onnx_external_data_absolute.onnx", external("/etc/passwd"), "UnsafeFileError",
        "outside the model's directory")
    valid = lstm_model().SerializeToString()
    add("onnx_truncated.onnx", valid[: len(valid) // 3], "FormatError", "not an ONNX model")
    add("onnx_garbage.onnx", b"\x08\x07\x12\xff\xff\xff\xff\x0f garbage", "FormatError", "not an ONNX model")
    W = np.ones((1, 12, 2), np.float32)
    W[0, 5, 1] = np.nan
    add("onnx_nan_weights.onnx", lstm_model(W=W).SerializeToString(), "RnnjitError", "NaN or infinite")
    cyc = [helper.make_node("Add", ["X", "b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
           helper.make_node("LSTM", ["b", "W", "R"], ["Y"], hidden_size=3)]
    add("onnx_cyclic_graph.onnx", lstm_model(nodes=cyc).SerializeToString(), "RnnjitError",
        "input 'b' is produced by no node")
    huge = TensorProto()
    huge.name, huge.data_type = "big", TensorProto.FLOAT
    huge.dims.extend([1 << 20, 1 << 20])
    huge.raw_data = b"\x00" * 16
    add("onnx_absurd_initializer_dims.onnx",
        lstm_model(extra_inits=[huge], nodes=[helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=3),
                                              helper.make_node("Add", ["Y", "big"], ["Z"])]).SerializeToString(),
        "FormatError", "declares dims [1048576, 1048576]")
    # a state loop that closes on itself: the cache concatenation reads the convolution it feeds
    loop = helper.make_graph(
        [helper.make_node("Concat", ["cache", "y"], ["cat"], axis=-1),
         helper.make_node("Conv", ["cat", "k"], ["y"], name="conv"),
         helper.make_node("Slice", ["cat", "m2", "big"], ["next_cache"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, "time"]),
         helper.make_tensor_value_info("cache", TensorProto.FLOAT, ["batch", 4, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("next_cache", TensorProto.FLOAT, None)],
        [helper.make_tensor("k", TensorProto.FLOAT, [4, 4, 3], np.ones(48, np.float32)),
         helper.make_tensor("m2", TensorProto.INT64, [1], [-2]), helper.make_tensor("big", TensorProto.INT64, [1],
                                                                                     [2 ** 62])])
    add("onnx_state_loop_cycle.onnx", helper.make_model(loop, opset_imports=[helper.make_opsetid("", 17)])
        .SerializeToString(), "RnnjitError", "is produced by no node")
    # If branches nested far deeper than any exporter writes, each on a constant condition
    inner = helper.make_graph([helper.make_node("Relu", ["x"], ["r0"])], "b0", [],
                              [helper.make_tensor_value_info("r0", TensorProto.FLOAT, None)])
    for depth in range(1, 24):      # (the else branches stay one node: the file stays small)
        other = helper.make_graph([helper.make_node("Neg", ["x"], [f"n{depth}"])], f"e{depth}", [],
                                  [helper.make_tensor_value_info(f"n{depth}", TensorProto.FLOAT, None)])
        branch = helper.make_node("If", ["yes"], [f"r{depth}"], then_branch=inner, else_branch=other)
        inner = helper.make_graph([branch], f"b{depth}", [],
                                  [helper.make_tensor_value_info(f"r{depth}", TensorProto.FLOAT, None)])
    nested = helper.make_graph(
        [helper.make_node("If", ["yes"], ["out"], then_branch=inner, else_branch=other)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [helper.make_tensor("yes", TensorProto.BOOL, [], [True])])
    add("onnx_nested_if_bomb.onnx", helper.make_model(nested, opset_imports=[helper.make_opsetid("", 17)])
        .SerializeToString(), "FormatError", "If branches nested more than 16 deep")
    # an If that branches on the data: nothing to choose when loading
    on_data = helper.make_graph(
        [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0), helper.make_node("Greater", ["m", "zero"], ["c"]),
         helper.make_node("If", ["c"], ["out"],
                          then_branch=helper.make_graph([helper.make_node("Relu", ["x"], ["a"])], "t", [],
                                                        [helper.make_tensor_value_info("a", TensorProto.FLOAT, None)]),
                          else_branch=helper.make_graph([helper.make_node("Neg", ["x"], ["b"])], "e", [],
                                                        [helper.make_tensor_value_info("b", TensorProto.FLOAT,
                                                                                       None)]))], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    add("onnx_if_on_the_data.onnx", helper.make_model(on_data, opset_imports=[helper.make_opsetid("", 17)])
        .SerializeToString(), "RnnjitError", "cannot be converted")
    del onnx


# ------------------------------------------------------------------------------------------- Keras
def _stable_keras_entry(name, body):
    """Keras writes the save time into metadata.json and memory addresses as config.json's shared_object_id
    (they only link shared objects): fix the one, renumber the others by first appearance."""
    if name == "metadata.json":
        meta = json.loads(body)
        meta["date_saved"] = "2000-01-01@00:00:00"
        return json.dumps(meta).encode()
    if name == "config.json":
        ids = {}

        def renumber(obj):
            if isinstance(obj, dict):
                return {k: (ids.setdefault(v, len(ids)) if k == "shared_object_id" else renumber(v))
                        for k, v in obj.items()}
            return [renumber(v) for v in obj] if isinstance(obj, list) else obj
        return json.dumps(renumber(json.loads(body))).encode()
    return body


def keras_files(tmp):
    import h5py
    import keras

    model = keras.Sequential([keras.Input((None, 2)), keras.layers.LSTM(3, return_sequences=True)])
    kpath, hpath = os.path.join(tmp, "k.keras"), os.path.join(tmp, "k.h5")
    model.save(kpath)
    model.save(hpath)
    valid = _zip_replace(open(kpath, "rb").read(), transform=_stable_keras_entry)

    def with_config(transform):
        def t(name, body):
            return transform(body) if name == "config.json" else body
        return _zip_replace(valid, transform=t)

    def add_lambda(body):
        cfg = json.loads(body)
        layers = cfg["config"]["layers"]
        layers.append({"module": "keras.layers", "class_name": "Lambda", "config": {
            "name": "evil", "function": {"class_name": "__lambda__", "config": {
                "code": "4wEAAAAAAAAA", "defaults": None, "closure": None}}}})
        return json.dumps(cfg).encode()

    add("keras_lambda_layer.keras", with_config(add_lambda), "FormatError", "layers rnnjit cannot run: evil (Lambda)")
    keras_graph_files(tmp)
    add("keras_config_not_json.keras", with_config(lambda b: b"{not json"), "FormatError", "unreadable .keras archive")
    add("keras_truncated.keras", valid[: len(valid) // 2], "FormatError", "neither a .keras archive nor an HDF5")
    add("keras_garbage.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 40, "FormatError", "neither a .keras archive nor")
    with h5py.File(hpath, "r+") as f:
        names = []
        f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) and f[n].ndim == 2 else None)
        ds = f[names[0]]
        arr = ds[()]
        arr[0, 0] = np.nan
        ds[...] = arr
    add("keras_nan_weights.h5", open(hpath, "rb").read(), "RnnjitError", "NaN or infinite")


def keras_graph_files(tmp):
    """Functional graphs made hostile: a cycle through two layers, one layer called from two places, a Lambda
    on a branch. Each is refused by name in one pass over the layers; nothing is looked up or run."""
    import keras

    inp = keras.Input((None, 2), name="x")
    a = keras.layers.Dense(3, name="a")(inp)
    b = keras.layers.Dense(3, name="b")(a)
    model = keras.Model(inp, keras.layers.Add(name="sum")([a, b]))
    path = os.path.join(tmp, "g.keras")
    model.save(path)
    valid = _zip_replace(open(path, "rb").read(), transform=_stable_keras_entry)

    def with_config(transform):
        def t(name, body):
            return transform(json.loads(body)) if name == "config.json" else body
        return _zip_replace(valid, transform=t)

    def layer(cfg, name):
        return next(x for x in cfg["config"]["layers"] if x["config"]["name"] == name)

    def cycle(cfg):   # a reads b, which reads a
        json_a = json.dumps(layer(cfg, "a")["inbound_nodes"]).replace('"x"', '"b"')
        layer(cfg, "a")["inbound_nodes"] = json.loads(json_a)
        return json.dumps(cfg).encode()

    def shared(cfg):   # b called twice
        layer(cfg, "b")["inbound_nodes"] = layer(cfg, "b")["inbound_nodes"] * 2
        return json.dumps(cfg).encode()

    def lambda_branch(cfg):
        evil = layer(cfg, "b")
        evil["class_name"] = "Lambda"
        evil["config"] = {"name": "b", "function": {"class_name": "__lambda__", "config": {
            "code": "4wEAAAAAAAAA", "defaults": None, "closure": None}}}
        return json.dumps(cfg).encode()

    add("keras_graph_cycle.keras", with_config(cycle), "FormatError", "a (Dense: reads ['b'], which could not be")
    add("keras_graph_shared_layer.keras", with_config(shared), "FormatError", "b (Dense shared by 2 calls")
    add("keras_graph_lambda_branch.keras", with_config(lambda_branch), "FormatError",
        "layers rnnjit cannot run: b (Lambda)")


def main(out=None):
    out = out or os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    import keras
    import torch

    torch.manual_seed(0)            # the templates' weights, so that the corpus is the same bytes every time
    keras.utils.set_random_seed(0)
    torch_files()
    native_files()
    safetensors_files()
    onnx_files()
    with tempfile.TemporaryDirectory() as tmp:
        keras_files(tmp)
    manifest = {}
    for name, (data, error, match) in sorted(CORPUS.items()):
        with open(os.path.join(out, name), "wb") as fh:
            fh.write(data)
        manifest[name] = {"error": error, "match": match}
    with open(os.path.join(out, "MANIFEST.json"), "w") as fh:
        json.dump({"marker": "rnnjit-hostile-marker (in the temp directory)", "files": manifest}, fh, indent=1)
        fh.write("\n")
    print(f"wrote {len(manifest)} files to {out}")
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
