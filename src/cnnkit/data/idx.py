"""Read and write the IDX format used by MNIST-style datasets.

The format (http://yann.lecun.com/exdb/mnist/): a big-endian header of a magic number
whose third byte is the element type and fourth the number of dimensions, then one
uint32 per dimension, then the raw data. Files may be gzip-compressed.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
from pathlib import Path

import numpy as np

from cnnkit.errors import DataError

_UBYTE = 0x08


def _open(path: Path) -> gzip.GzipFile | io.BufferedReader:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | os.PathLike[str], *, ndim: int | None = None) -> np.ndarray:
    """Read an unsigned-byte IDX file (optionally gzip'd) into a uint8 array.

    Raises DataError naming the file when the header or size is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with _open(path) as f:
            header = f.read(4)
            if len(header) != 4 or header[0] != 0 or header[1] != 0:
                raise DataError(f"{path}: not an IDX file (bad magic number {header.hex() or 'empty'})")
            dtype, nd = header[2], header[3]
            if dtype != _UBYTE:
                raise DataError(
                    f"{path}: IDX element type 0x{dtype:02x} is not supported (expected unsigned byte 0x08)"
                )
            if ndim is not None and nd != ndim:
                raise DataError(
                    f"{path}: expected {ndim} dimensions (magic {2048 + ndim}), found {nd} (magic {2048 + nd})"
                )
            dims_raw = f.read(4 * nd)
            if len(dims_raw) != 4 * nd:
                raise DataError(f"{path}: truncated IDX header")
            dims = struct.unpack(f">{nd}I", dims_raw)
            expected = int(np.prod(dims, dtype=np.int64))
            data = f.read(expected + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot be read ({e}); delete it and re-download, or fix the data root") from e
    if len(data) != expected:
        raise DataError(
            f"{path}: size mismatch: header promises {expected} bytes for shape {tuple(dims)}, "
            f"file holds {len(data) if len(data) <= expected else 'more'}; the file is truncated or corrupt"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(dims).copy()


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzip'd when the name ends in .gz)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = (lambda p: gzip.GzipFile(p, "wb", mtime=0)) if path.suffix == ".gz" else (lambda p: open(p, "wb"))  # noqa: SIM115 - opened by the `with` below
    with opener(path) as f:
        f.write(header)
        f.write(array.tobytes())
