"""IDX reader: round trips on files the test writes, and clear errors on bad files."""
import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minidl.data.idx import read_idx, write_idx


def _raw_idx(shape, type_code=0x08, data=None):
    header = struct.pack(f">HBB{len(shape)}I", 0, type_code, len(shape), *shape)
    if data is None:
        data = bytes(range(256)) * (int(np.prod(shape)) // 256 + 1)
        data = data[:int(np.prod(shape))]
    return header + data


def test_read_hand_made_label_file_plain_and_gzip(tmp_path):
    # magic 0x00000801, one dimension of size 5, then 5 uint8 labels
    payload = bytes([0, 0, 8, 1, 0, 0, 0, 5, 3, 1, 4, 1, 5])
    (tmp_path / "l").write_bytes(payload)
    (tmp_path / "l.gz").write_bytes(gzip.compress(payload))
    for name in ("l", "l.gz"):
        labels = read_idx(tmp_path / name)
        assert labels.dtype == np.uint8
        assert labels.tolist() == [3, 1, 4, 1, 5]


def test_read_hand_made_image_file(tmp_path):
    # magic 0x00000803: 2 images of 2x3, row-major
    payload = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(12))
    (tmp_path / "i").write_bytes(payload)
    images = read_idx(tmp_path / "i")
    assert images.shape == (2, 2, 3)
    np.testing.assert_array_equal(images[1], [[6, 7, 8], [9, 10, 11]])


@given(shape=st.lists(st.integers(0, 6), min_size=1, max_size=4),
       dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]),
       compress=st.booleans(), seed=st.integers(0, 2**16))
def test_write_read_round_trip(tmp_path_factory, shape, dtype, compress, seed):
    rng = np.random.default_rng(seed)
    array = (rng.standard_normal(shape) * 100).astype(dtype)
    path = tmp_path_factory.mktemp("idx") / ("a.gz" if compress else "a")
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    raw = gzip.decompress(path.read_bytes()) if compress else path.read_bytes()
    assert len(raw) == 4 + 4 * len(shape) + array.nbytes   # header, then the data and nothing more
    assert raw[2] == {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
                      np.float32: 0x0D, np.float64: 0x0E}[dtype]
    assert raw[3] == len(shape)


def test_a_file_with_no_items_reads_as_an_empty_array(tmp_path):
    # A header and no data is a valid file when a dimension is 0.
    write_idx(tmp_path / "empty", np.zeros((0, 28, 28), np.uint8))
    back = read_idx(tmp_path / "empty")
    assert back.shape == (0, 28, 28) and back.dtype == np.uint8
    write_idx(tmp_path / "no-labels", np.zeros((0,), np.uint8))
    assert read_idx(tmp_path / "no-labels").shape == (0,)


def test_big_endian_sizes_are_read_correctly(tmp_path):
    # 300 labels: size bytes 00 00 01 2c; little-endian reading would give a huge number
    (tmp_path / "l").write_bytes(_raw_idx((300,)))
    assert read_idx(tmp_path / "l").shape == (300,)


@pytest.mark.parametrize("payload, message", [
    (b"\x00\x00", "too short"),
    (b"\x12\x34\x08\x01" + b"\x00\x00\x00\x01" + b"\x07", "bad magic number 0x12340801"),
    (b"\x00\x00\x07\x01" + b"\x00\x00\x00\x01" + b"\x07", "bad magic number 0x00000701"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02", "header declares 3 dimensions"),
])
def test_corrupt_header_raises_with_path_and_reason(tmp_path, payload, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(payload)
    with pytest.raises(ValueError) as info:
        read_idx(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data_raises(tmp_path, gz):
    payload = _raw_idx((4, 5, 5))[:-7]                # 7 pixels missing
    path = tmp_path / ("t.gz" if gz else "t")
    path.write_bytes(gzip.compress(payload) if gz else payload)
    with pytest.raises(ValueError, match=r"truncated: header shape \(4, 5, 5\) needs 100 bytes .* found 93"):
        read_idx(path)


@pytest.mark.parametrize("shape, needs", [((65536,) * 4, 2**64), ((2**32 - 1,) * 3, (2**32 - 1) ** 3)])
def test_a_header_too_large_for_int64_is_reported_as_truncated_with_its_true_size(tmp_path, shape, needs):
    """The sizes were multiplied in int64: 65536**4 wrapped to 0 and the file was
    said to need "0 bytes" and to have "trailing bytes"."""
    (tmp_path / "x").write_bytes(struct.pack(f">HBB{len(shape)}I", 0, 8, len(shape), *shape) + b"\x00" * 10)
    with pytest.raises(ValueError, match=f"data truncated: header shape .* needs {needs} bytes .* found 10"):
        read_idx(tmp_path / "x")


def test_trailing_bytes_raise(tmp_path):
    (tmp_path / "x").write_bytes(_raw_idx((3,)) + b"\x00")
    with pytest.raises(ValueError, match="trailing bytes"):
        read_idx(tmp_path / "x")


def test_truncated_gzip_stream_raises(tmp_path):
    blob = gzip.compress(_raw_idx((50, 8, 8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_write_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError, match="write_idx: dtype"):
        write_idx(tmp_path / "c", np.zeros(3, dtype=np.complex64))
