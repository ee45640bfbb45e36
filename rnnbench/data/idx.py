"""The IDX format of LeCun's MNIST files (and Fashion-MNIST's, KMNIST's, ...), read with numpy from its header.

An IDX file is a 4-byte magic number, two zero bytes, a type code (``0x08``: unsigned bytes) and the number of
dimensions D, then D big-endian uint32 sizes, then the values in C order, big-endian. A name ending in ``.gz`` is
read through gzip. Problems are raised as :class:`IdxError`, whose text says what was found, for the caller to
name the setting that gave the file.
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# type code -> numpy dtype (big-endian), as the format defines them
TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
         0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class IdxError(ValueError):
    """A file that is not the IDX file expected; the text says what was found."""


@dataclass(frozen=True)
class IdxHeader:
    """The header of an IDX file: ``magic`` (``0x00000803`` for MNIST's images), the values' dtype and the shape."""

    magic: int
    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def offset(self) -> int:
        """Bytes before the first value."""
        return 4 + 4 * len(self.shape)

    @property
    def data_bytes(self) -> int:
        """Bytes the values take, by the header."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def magic_number(dtype: np.dtype, dimensions: int) -> int:
    """The magic number of an IDX file of ``dtype`` values in ``dimensions`` dimensions (``0x00000803``: bytes, 3)."""
    big = np.dtype(dtype).newbyteorder(">")
    codes = [code for code, known in TYPES.items() if known == big]
    if not codes:
        raise ValueError(f"IDX holds none of {np.dtype(dtype)}: only {', '.join(map(str, TYPES.values()))}")
    return codes[0] << 8 | dimensions


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _stored_bytes(path: Path) -> int:
    """The size of the file's content: its size, or for a ``.gz`` the uncompressed size its gzip trailer records
    (modulo 2**32: exact below 4 GiB)."""
    if not path.name.endswith(".gz"):
        return path.stat().st_size
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        return struct.unpack("<I", f.read(4))[0]


def read_header(path: Path) -> IdxHeader:
    """The header of the IDX file at ``path``, checked against the file's size (a truncated file is refused
    without reading it all)."""
    try:
        with _open(path) as f:
            start = f.read(4)
            if len(start) < 4:
                raise IdxError(f"{len(start)} bytes, too short for an IDX header")
            zeros, code, dimensions = start[:2], start[2], start[3]
            magic = int.from_bytes(start, "big")
            if zeros != b"\0\0" or code not in TYPES or dimensions == 0:
                raise IdxError(f"magic number 0x{magic:08x}, not an IDX file's")
            sizes = f.read(4 * dimensions)
            if len(sizes) < 4 * dimensions:
                raise IdxError(f"a header cut short (magic number 0x{magic:08x}, {dimensions} dimensions)")
        header = IdxHeader(magic, TYPES[code], struct.unpack(f">{dimensions}I", sizes))
        stored = _stored_bytes(path)
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise IdxError(f"unreadable ({type(error).__name__}: {error})") from None
    expected = header.offset + header.data_bytes
    if stored != (expected % 2**32 if path.name.endswith(".gz") else expected):
        raise IdxError(f"{stored} bytes, while its header (shape {header.shape}) announces {expected}")
    return header


def read_idx(path: Path) -> np.ndarray:
    """The values of the IDX file at ``path``, of its header's shape and dtype (read-only; native byte order for
    bytes, big-endian otherwise)."""
    path = Path(path)
    return _read(str(path.resolve()), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read(path: str, modified: int) -> np.ndarray:
    """``modified`` keys the cache: a file rewritten in place is read again."""
    header = read_header(Path(path))
    try:
        with _open(Path(path)) as f:
            content = f.read()
    except (OSError, EOFError, zlib.error) as error:
        raise IdxError(f"unreadable ({type(error).__name__}: {error})") from None
    if len(content) != header.offset + header.data_bytes:
        raise IdxError(f"{len(content)} bytes, while its header (shape {header.shape}) announces "
                       f"{header.offset + header.data_bytes}")
    return np.frombuffer(content, dtype=header.dtype, offset=header.offset).reshape(header.shape)


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed if ``path`` ends in ``.gz``): tests, and one's own sets."""
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    content = struct.pack(">I", magic_number(array.dtype, array.ndim)) \
        + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(dtype).tobytes()
    Path(path).write_bytes(gzip.compress(content) if str(path).endswith(".gz") else content)
    return Path(path)
