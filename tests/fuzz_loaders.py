"""Fuzz every model loader with mutated valid files (hypothesis): only rnnjit's own exceptions may come out.

    python -m tests.fuzz_loaders FORMAT [N]      FORMAT: native onnx torch_zip torch_legacy torch_module
                                                 safetensors keras_zip keras_h5
                                                 N: inputs (default 10000)

Each input is a valid seed file of that format with 1-6 mutations: byte flips, overwrites, insertions,
deletions and truncations of the raw bytes, or, for zip-based formats, the same inside one member with the
archive rebuilt (valid CRCs, so the member's own parser is reached). Every load runs under a 10 s alarm: a
hang fails the run. Anything but ``engine.RnnjitError`` fails the run, including ``MemoryError``. A segfault
kills the process, which the caller (tests/test_fuzz_loaders.py) reports. Derandomized: the same N gives the
same inputs. Prints the number of inputs tried and how many loaded (mutations that left a valid model).
"""

import io
import os
import signal
import sys
import tempfile
import zipfile


os.environ.setdefault("KERAS_BACKEND", "torch")

FORMATS = ("native", "onnx", "torch_zip", "torch_legacy", "torch_module", "safetensors", "keras_zip", "keras_h5")
EXT = {"native": ".npz", "onnx": ".onnx", "torch_zip": ".pt", "torch_legacy": ".pt", "torch_module": ".pt",
       "safetensors": ".safetensors", "keras_zip": ".keras", "keras_h5": ".h5"}


def _net_class():
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(3, 4, batch_first=True)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(self.rnn(x)[0])

    Net.__qualname__ = "Net"   # picklable by name (torch.save(net) of a whole module names its class)
    globals()["Net"] = Net
    return Net


def seed_file(fmt, tmp):
    """A small valid model file of this format, as bytes."""
    import torch

    torch.manual_seed(0)

    net = _net_class()().eval()
    path = os.path.join(tmp, "seed" + EXT[fmt])
    if fmt == "native":
        import converters

        converters.from_torch(net.state_dict()).save(path)
    elif fmt == "onnx":
        torch.onnx.export(net, torch.zeros(1, 5, 3), path, dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "b", 1: "t"}})
    elif fmt == "torch_module":   # the whole module pickled: the user class, torch.nn classes, their attributes
        torch.save(net, path)
    elif fmt.startswith("torch"):
        torch.save(net.state_dict(), path, _use_new_zipfile_serialization=fmt == "torch_zip")
    elif fmt == "safetensors":
        from safetensors.numpy import save_file

        save_file({k: v.numpy() for k, v in net.state_dict().items()}, path)
    else:
        import keras

        model = keras.Sequential([keras.Input((None, 3)), keras.layers.GRU(4, return_sequences=True),
                                  keras.layers.Dense(2)])
        model.save(path)
    with open(path, "rb") as fh:
        return fh.read()


def mutate(data, ops):
    b = bytearray(data)
    for op, pos, val in ops:
        if not b:
            break
        pos %= len(b)
        if op == "flip":
            b[pos] ^= val[0] or 1
        elif op == "set":
            b[pos:pos + len(val)] = val
        elif op == "insert":
            b[pos:pos] = val
        elif op == "delete":
            del b[pos:pos + len(val)]
        elif op == "truncate":
            del b[pos:]
    return bytes(b)


def mutate_member(data, member_index, ops):
    zin = zipfile.ZipFile(io.BytesIO(data))
    items = zin.infolist()
    target = items[member_index % len(items)].filename
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zout:
        for item in items:
            body = zin.read(item.filename)
            zout.writestr(item, mutate(body, ops) if item.filename == target else body)
    return out.getvalue()


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang("a load took more than 10 s")


def fuzz(fmt, n):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    import engine
    from engine.io import load_spec_any

    tmp = tempfile.mkdtemp(prefix=f"rnnjit-fuzz-{fmt}-")
    seed = seed_file(fmt, tmp)
    load_spec_any(os.path.join(tmp, "seed" + EXT[fmt]))  # the seed itself loads
    path = os.path.join(tmp, "fuzz" + EXT[fmt])
    zipped = seed[:2] == b"PK"
    ops = st.lists(st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
                             st.integers(0, len(seed) - 1), st.binary(min_size=1, max_size=8)),
                   min_size=1, max_size=6)
    counts = {"tried": 0, "loaded": 0}
    signal.signal(signal.SIGALRM, _alarm)

    @settings(max_examples=n, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(mutations=ops, inside=st.booleans(), member=st.integers(0, 64))
    def one(mutations, inside, member):
        data = mutate_member(seed, member, mutations) if (zipped and inside) else mutate(seed, mutations)
        with open(path, "wb") as fh:
            fh.write(data)
        counts["tried"] += 1
        signal.alarm(10)
        try:
            load_spec_any(path)
            counts["loaded"] += 1
        except engine.RnnjitError:
            pass
        finally:
            signal.alarm(0)

    one()
    print(f"{fmt}: {counts['tried']} inputs, {counts['loaded']} still loaded, only rnnjit errors otherwise")
    return counts


if __name__ == "__main__":
    fmt = sys.argv[1]
    if fmt not in FORMATS:
        raise SystemExit(f"format must be one of {FORMATS}, got {fmt!r}")
    fuzz(fmt, int(sys.argv[2]) if len(sys.argv) > 2 else 10_000)
