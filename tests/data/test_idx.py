import gzip

import numpy as np
import pytest

from cnnkit.data.idx import read_idx, write_idx
from cnnkit.errors import DataError


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_round_trip(tmp_path, name):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / name, arr)
    np.testing.assert_array_equal(read_idx(tmp_path / name, ndim=3), arr)


def test_header_is_canonical(tmp_path):
    write_idx(tmp_path / "x", np.zeros((5, 28, 28), np.uint8))
    raw = (tmp_path / "x").read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3])  # magic 2051
    assert int.from_bytes(raw[4:8], "big") == 5


def test_bad_magic_names_the_file(tmp_path):
    p = tmp_path / "junk.gz"
    with gzip.open(p, "wb") as f:
        f.write(b"\x89PNG not idx")
    with pytest.raises(DataError, match=r"junk.gz: not an IDX file"):
        read_idx(p)


def test_truncated_file_names_the_file(tmp_path):
    p = tmp_path / "t-idx3-ubyte"
    write_idx(p, np.ones((4, 28, 28), np.uint8))
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t-idx3-ubyte: size mismatch.*truncated"):
        read_idx(p)


def test_wrong_dimensions(tmp_path):
    p = tmp_path / "labels"
    write_idx(p, np.ones(7, np.uint8))
    with pytest.raises(DataError, match=r"expected 3 dimensions \(magic 2051\), found 1 \(magic 2049\)"):
        read_idx(p, ndim=3)


def test_corrupt_gzip(tmp_path):
    p = tmp_path / "c.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match=r"c.gz"):
        read_idx(p)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match=r"nope-idx3-ubyte: file not found"):
        read_idx(tmp_path / "nope-idx3-ubyte")


def test_unsupported_element_type_names_it(tmp_path):
    p = tmp_path / "floats-idx1"
    p.write_bytes(bytes([0, 0, 0x0D, 1]) + (2).to_bytes(4, "big") + b"\0" * 8)  # 0x0D: float32
    with pytest.raises(
        DataError, match=r"floats-idx1: IDX element type 0x0d is not supported \(expected unsigned byte 0x08\)"
    ):
        read_idx(p)


def test_truncated_header_names_the_file(tmp_path):
    p = tmp_path / "h-idx3-ubyte"
    p.write_bytes(bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big"))  # 3 dimensions promised, 1 given
    with pytest.raises(DataError, match=r"h-idx3-ubyte: truncated IDX header"):
        read_idx(p)
