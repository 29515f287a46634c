"""``.safetensors`` files -> {name: numpy array}, through the safetensors package's numpy API (no torch).

numpy has no bfloat16, and the package's numpy API refuses BF16 tensors; those are read here from the
file's own header (validated: offsets inside the data section, byte counts matching shapes) and widened
to float32 (bfloat16 is the high half of a float32). The header is JSON behind an 8-byte length.

safetensors stores tensors sorted, not in module order; converters/pytorch orders layers by how their
sizes chain instead.
"""

import json
import math
import os
import struct

import numpy as np

from engine.errors import FormatError

MAX_HEADER = 100 << 20
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def read_header(path):
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise FormatError(f"{path}: too short for a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise FormatError(f"{path}: safetensors header length {n} does not fit the file ({size} bytes)")
        try:
            header = json.loads(fh.read(n))
        except (ValueError, UnicodeDecodeError) as exc:
            raise FormatError(f"{path}: unreadable safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: safetensors header is not a JSON object")
    data_size = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
                raise ValueError(f"shape must be a list of non-negative integers, got {shape!r}")
            if not (isinstance(begin, int) and isinstance(end, int)):
                raise ValueError(f"data_offsets must be two integers, got {info['data_offsets']!r}")
            count = math.prod(shape)  # exact: numpy's int64 product would wrap around for absurd shapes
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{path}: malformed header entry {name!r} ({exc})") from None
        if not isinstance(dtype, str) or dtype not in _ITEMSIZE:
            raise FormatError(f"{path}: tensor {name!r} has dtype {dtype}, which rnnjit does not read")
        if not (0 <= begin <= end <= data_size) or end - begin != count * _ITEMSIZE[dtype]:
            raise FormatError(f"{path}: tensor {name!r} ({dtype} {shape}) has data offsets [{begin}, {end}) that do "
                              f"not match its size or the file ({data_size} data bytes)")
    return header, 8 + n


def load_safetensors(path):
    path = os.fspath(path)
    header, data_start = read_header(path)
    try:
        from safetensors import safe_open
    except ImportError:
        raise FormatError(f"{path}: reading .safetensors needs the 'safetensors' package "
                          f"(pip install safetensors)") from None
    out = {}
    try:
        with safe_open(path, framework="np") as f:
            for name in f.keys():
                info = header[name]
                if info["dtype"] == "BF16":
                    begin, end = info["data_offsets"]
                    with open(path, "rb") as fh:
                        fh.seek(data_start + begin)
                        raw = np.frombuffer(fh.read(end - begin), dtype="<u2")
                    out[name] = (raw.astype(np.uint32) << 16).view(np.float32).reshape(info["shape"])
                else:
                    out[name] = f.get_tensor(name)
    except FormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - the package's own errors for a broken file
        raise FormatError(f"{path}: unreadable safetensors file ({type(exc).__name__}: {exc})") from None
    return out
