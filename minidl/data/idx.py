"""Read and write IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a tiny header followed by raw array bytes, all big-endian:

    bytes 0-1   zero
    byte  2     element type: 0x08 = uint8 (the only one MNIST uses)
    byte  3     number of dimensions d (1 for labels, 3 for images)
    then        d sizes, each a big-endian uint32
    then        prod(sizes) elements, row-major

So a label file starts with the magic number 0x00000801 and an image file
with 0x00000803. The published files are gzip-compressed; `read_idx`
accepts both, recognising gzip by its first two bytes (0x1f 0x8b).
"""
import gzip
import math
import os
import struct

import numpy as np

# type byte -> (NumPy big-endian dtype, name); MNIST uses only 0x08
_IDX_TYPES = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_TYPE_CODES = {dtype.newbyteorder("="): code for code, dtype in _IDX_TYPES.items()}


def _read_bytes(path):
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            raise ValueError(f"read_idx: {path}: corrupt or truncated gzip stream ({err})") from None
    return raw


def read_idx(path):
    """Return the array stored in the IDX file at `path` (gzip'd or plain).

    Raises ValueError, naming the file and the problem, when the magic number,
    the dimension count or the data length does not match the header.
    """
    path = os.fspath(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"read_idx: {path}: file is {len(data)} bytes, too short for the 4-byte IDX magic number")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or type_code not in _IDX_TYPES:
        raise ValueError(
            f"read_idx: {path}: bad magic number 0x{data[:4].hex()}; expected 0x000008NN "
            "(0x00000801 for labels, 0x00000803 for images)")
    if ndim == 0:
        raise ValueError(f"read_idx: {path}: header says 0 dimensions; expected at least 1")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(
            f"read_idx: {path}: header declares {ndim} dimensions ({header_len} header bytes) "
            f"but the file holds only {len(data)} bytes")
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = _IDX_TYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize      # Python ints: four sizes of 2**16 overflow int64
    actual = len(data) - header_len
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise ValueError(
            f"read_idx: {path}: data {what}: header shape {shape} needs {expected} bytes "
            f"after the {header_len}-byte header, found {actual}")
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return array.astype(dtype.newbyteorder("="))    # native byte order, writable copy


def write_idx(path, array, compress=None):
    """Write `array` to `path` in IDX format (gzip'd if `compress`, which
    defaults to whether the path ends in '.gz'). Used by tests and tools."""
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder("=")
    if dtype not in _TYPE_CODES:
        raise TypeError(f"write_idx: dtype {array.dtype} has no IDX type code (use uint8, int8, int16, int32, float32, float64)")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: array must have 1..255 dimensions, got shape {array.shape}")
    header = struct.pack(f">HBB{array.ndim}I", 0, _TYPE_CODES[dtype], array.ndim, *array.shape)
    payload = header + array.astype(_IDX_TYPES[_TYPE_CODES[dtype]]).tobytes()
    path = os.fspath(path)
    if compress is None:
        compress = path.endswith(".gz")
    if compress:
        payload = gzip.compress(payload, mtime=0)
    with open(path, "wb") as fh:
        fh.write(payload)
