"""Hostile and broken PyTorch checkpoints: each raises the engine's own error and runs nothing.

Every code-running case points its payload at a marker file; the test proves the marker was not created.
Payloads are put into otherwise valid checkpoints (zip and legacy), so the reader gets past the container
and meets the pickle.
"""

import importlib
import io
import os
import pickle
import subprocess
import sys
import zipfile

import pytest
import torch

import converters
import engine
from converters.pytorch.reader import load_checkpoint
from tests.hostile.make_corpus import _legacy, _valid_torch_zip, _zip_replace


class _Reduce:
    """Pickles as ``func(*args)``: what a malicious checkpoint does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _payloads(marker):
    touch = f"open({str(marker)!r}, 'w').write('ran')"
    return {
        "os.system": _Reduce(os.system, f"touch {marker}"),
        "builtins.eval": _Reduce(eval, touch),
        "builtins.exec": _Reduce(exec, touch),
        "subprocess.Popen": _Reduce(subprocess.Popen, ["touch", str(marker)]),
        "subprocess.check_call": _Reduce(subprocess.check_call, ["touch", str(marker)]),
        "importlib.import_module": _Reduce(importlib.import_module, "antigravity"),
        "builtins.getattr chain": _Reduce(getattr, _Reduce(importlib.import_module, "os"), "system"),
        "nested in a list in a tuple": ([1, (2, _Reduce(eval, touch))], "x"),
        "inside an OrderedDict value": __import__("collections").OrderedDict(w=_Reduce(exec, touch)),
        "as a dict key": {_Reduce(eval, touch): 1},
    }


def _zip_with(pkl_bytes, extra=None, template=None):
    """A valid torch zip checkpoint whose data.pkl is replaced (and entries added)."""
    return _zip_replace(_valid_torch_zip(template), {"data.pkl": pkl_bytes} if pkl_bytes is not None else None,
                        extra)


@pytest.mark.parametrize("name", sorted(_payloads("m")))
@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_pickled_callables_are_refused_and_never_run(tmp_path, name, container):
    marker = tmp_path / "ran"
    blob = pickle.dumps(_payloads(marker)[name], protocol=2)
    data = _zip_with(blob) if container == "zip" else _legacy(blob)
    path = tmp_path / "evil.pt"
    path.write_bytes(data)
    with pytest.raises(engine.UnsafeFileError,
                       match=r"this file pickles `[\w.]+`; rnnjit loads state_dicts and pickled torch.nn modules"):
        engine.load(path)
    with pytest.raises(engine.UnsafeFileError):
        converters.from_torch(path)
    assert not marker.exists()


@pytest.mark.parametrize("opcodes", [
    pytest.param(b"(S'touch {m}'\nios\nsystem\n.", id="INST"),
    pytest.param(b"\x80\x02(cos\nsystem\nS'touch {m}'\no.", id="OBJ"),
    pytest.param(b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x8c\x06system\x93\x8c\x0ctouch {m}"
                 b"\x85R.", id="STACK_GLOBAL-posix"),
    pytest.param(b"\x80\x02ccollections\nOrderedDict\n)R}(X\x0b\x00\x00\x00__setstate__cbuiltins\neval\nubX\x01\x00"
                 b"\x00\x00xb.", id="BUILD-setstate"),
])
def test_raw_opcode_tricks_are_refused(tmp_path, opcodes):
    marker = tmp_path / "ran"
    blob = opcodes.replace(b"{m}", str(marker).encode())
    path = tmp_path / "evil.pt"
    path.write_bytes(_zip_with(blob))
    with pytest.raises(engine.FormatError):  # UnsafeFileError is a FormatError
        load_checkpoint(path)
    assert not marker.exists()


def test_a_storage_shorter_than_its_tensor_is_refused_before_reading(tmp_path):
    src = io.BytesIO()
    torch.save({"w": torch.ones(1000, 1000)}, src)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(src.getvalue())) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            zout.writestr(item.filename, data[:100] if item.filename.endswith("/data/0") else data)
    (tmp_path / "short.pt").write_bytes(out.getvalue())
    with pytest.raises(engine.FormatError, match=r"storage 0 holds 100 bytes but declares 1000000 elements"):
        load_checkpoint(tmp_path / "short.pt")


def _patched(tmp_path, old, new):
    """torch.save({"w": torch.ones(4)}) with one byte sequence of its pickle replaced."""
    src = io.BytesIO()
    torch.save({"w": torch.ones(4)}, src)
    with zipfile.ZipFile(io.BytesIO(src.getvalue())) as z:
        pkl = z.read([n for n in z.namelist() if n.endswith("data.pkl")][0])
    assert pkl.count(old) == 1, pkl
    path = tmp_path / "patched.pt"
    path.write_bytes(_zip_with(pkl.replace(old, new), template={"w": torch.ones(4)}))
    return path


# in torch's pickle: offset 0, size (4,), stride (1,)  and  the storage id (..., 'cpu', numel 4)
VIEW = b"K\x00K\x04\x85q\x08K\x01\x85"
STORAGE_TAIL = b"X\x03\x00\x00\x00cpuq\x06K\x04t"


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    path = _patched(tmp_path, VIEW, b"K\x00J\x40\x42\x0f\x00\x85q\x08K\x01\x85")   # size (1000000,)
    with pytest.raises(engine.FormatError, match=r"reaches element 999999 of storage 0, which has 4"):
        load_checkpoint(path)


@pytest.mark.parametrize("numel,match", [
    (b"\x8a\x06\x00\x00\x00\x00\x00\x01", r"storage 0 declares 1099511627776 elements"),   # 2**40: over the cap
    (b"J\x00\x00\x00\x40", r"storage 0 holds 16 bytes but declares 1073741824 elements"),    # 2**30: 4 GiB
])
def test_absurd_declared_sizes_are_refused_without_allocating(tmp_path, numel, match):
    # a storage declaring terabytes (or gigabytes) in a file of a few hundred bytes
    path = _patched(tmp_path, STORAGE_TAIL, STORAGE_TAIL[:-3] + numel + b"t")
    with pytest.raises(engine.FormatError, match=match):
        load_checkpoint(path)


def test_a_storage_key_that_is_a_path_is_refused(tmp_path):
    path = _patched(tmp_path, b"X\x01\x00\x00\x000q\x05", b"X\x0d\x00\x00\x00../../etc/pwdq\x05")
    with pytest.raises(engine.UnsafeFileError, match="is not a plain name"):
        load_checkpoint(path)


@pytest.mark.parametrize("entry", ["../evil", "/etc/evil", "archive/../../evil", "C:/evil"])
def test_zip_entries_outside_the_archive_are_refused(tmp_path, entry):
    path = tmp_path / "m.pt"
    path.write_bytes(_zip_with(None, extra={entry: b"x"}))
    with pytest.raises(engine.UnsafeFileError, match="points outside the archive"):
        load_checkpoint(path)
    assert not (tmp_path.parent / "evil").exists()


@pytest.mark.parametrize("cut", [10, 200, -50])
def test_truncated_checkpoints_are_refused(tmp_path, cut):
    buf = io.BytesIO()
    torch.save(torch.nn.LSTM(3, 4).state_dict(), buf, _use_new_zipfile_serialization=cut != -50)
    data = buf.getvalue()
    (tmp_path / "cut.pt").write_bytes(data[:cut])
    with pytest.raises(engine.FormatError):
        load_checkpoint(tmp_path / "cut.pt")


def test_a_file_that_is_no_checkpoint_is_refused(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"hello world, not a model")
    with pytest.raises(engine.FormatError, match="not a torch checkpoint"):
        engine.load(tmp_path / "x.pt")


@pytest.mark.parametrize("opcode", [b"r" + (300_000_000).to_bytes(4, "little"),   # LONG_BINPUT
                                    b"p300000000\n",                               # PUT (protocol 0)
                                    b"r" + (2**32 - 1).to_bytes(4, "little")])
@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_a_memo_index_past_the_pickle_is_refused_before_the_unpickler_grows_its_memo(opcode, container):
    """Python's unpickler grows its memo to the index a PUT names and clears every new slot: this ten-byte
    pickle alone makes it touch 4.6 GB (2**32 - 1: 34 GB). Fuzzing found such files; they are refused by a scan
    of the opcodes before anything is unpickled, in a child process allowed 1 GiB more than it has mapped."""
    pkl = b"\x80\x02N" + opcode + b"."
    data = _zip_with(pkl) if container == "zip" else _legacy(pkl)
    script = ("import resource, sys\n"
              "import engine\n"
              "from converters.pytorch.reader import load_checkpoint\n"
              "data = sys.stdin.buffer.read()\n"
              "mapped = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
              "resource.setrlimit(resource.RLIMIT_AS, (mapped + (1 << 30),) * 2)   # 1 GiB more than now\n"
              "try:\n    load_checkpoint(data)\n"
              "except engine.FormatError as exc:\n    print('REFUSED', exc)\n")
    r = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True, timeout=120)
    assert b"REFUSED" in r.stdout and b"memo index" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
