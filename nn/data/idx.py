"""Reading IDX files, the format of MNIST and Fashion-MNIST (host side, NumPy).

An IDX file is a 4-byte magic number ``00 00 <type code> <ndim>``, then
``ndim`` big-endian uint32 dimensions, then the elements in C order, big-endian.
Files may be gzip-compressed; compression is recognised by content (the gzip
magic ``1f 8b``), never by the file name.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IdxFormatError", "parse_idx", "read_idx", "read_idx_bytes"]

#: IDX type code -> big-endian element dtype.
TYPE_CODES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
# Deflate cannot expand data by more than about 1032:1, so a gzip file of n
# bytes never holds more than this many times n bytes of content.
MAX_DEFLATE_RATIO = 1100
_CHUNK = 1 << 20


class IdxFormatError(ValueError):
    """A file is not a well-formed IDX file (the message names file and problem)."""


def _header(head: bytes, name: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """Parse the magic and dimensions: -> (dtype, shape, header length in bytes)."""
    if len(head) < 4:
        raise IdxFormatError(
            f"{name}: truncated IDX header ({len(head)} bytes, at least 4 needed)"
        )
    zero, code, ndim = struct.unpack(">HBB", head[:4])
    if zero != 0:
        raise IdxFormatError(
            f"{name}: wrong magic number 0x{head[:4].hex()}: not an IDX file "
            "(IDX files start with two zero bytes, a type code and the number of "
            "dimensions, e.g. 0x00000803 for MNIST images)"
        )
    if code not in TYPE_CODES:
        known = ", ".join(f"0x{c:02X}" for c in TYPE_CODES)
        raise IdxFormatError(
            f"{name}: unsupported IDX element type 0x{code:02X} (known: {known})"
        )
    if ndim == 0:
        raise IdxFormatError(f"{name}: IDX header declares 0 dimensions")
    size = 4 + 4 * ndim
    if len(head) < size:
        raise IdxFormatError(
            f"{name}: truncated IDX header: {ndim} dimensions need {size} bytes, "
            f"the file has {len(head)}"
        )
    shape = struct.unpack(f">{ndim}I", head[4:size])
    return TYPE_CODES[code], tuple(shape), size


def _payload_size(dtype: np.dtype, shape: tuple[int, ...]) -> int:
    return dtype.itemsize * int(np.prod(shape, dtype=object))


def _read_plain(f, name: str, file_size: int) -> bytes:
    head = f.read(4 + 4 * 255)
    dtype, shape, hsize = _header(head, name)
    total = hsize + _payload_size(dtype, shape)
    # Compare with the real size before allocating anything of the declared size.
    if total > file_size:
        raise IdxFormatError(
            f"{name}: truncated data: the header declares {shape} x {dtype.itemsize} "
            f"bytes ({total} bytes with the header) but the file has {file_size}"
        )
    if total < file_size:
        raise IdxFormatError(
            f"{name}: {file_size - total} bytes of trailing garbage after the "
            f"{total} bytes that the header {shape} declares"
        )
    f.seek(0)
    return f.read()


def _read_exact(stream, n: int) -> bytearray:
    """Up to ``n`` bytes, growing the buffer only as data really arrives."""
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def _read_gzip(f, name: str, file_size: int) -> bytes:
    try:
        with gzip.GzipFile(fileobj=f, mode="rb") as z:
            head = bytes(_read_exact(z, 4))
            if len(head) == 4 and head[:2] == b"\0\0":
                head += bytes(_read_exact(z, 4 * head[3]))
            dtype, shape, hsize = _header(head, name)
            need = _payload_size(dtype, shape)
            if need > MAX_DEFLATE_RATIO * file_size:
                raise IdxFormatError(
                    f"{name}: the header declares {shape} ({need} bytes), more than "
                    f"a {file_size}-byte gzip file can hold: truncated or corrupt file"
                )
            data = _read_exact(z, need)
            if len(data) < need:
                raise IdxFormatError(
                    f"{name}: truncated data: the header declares {shape} "
                    f"({need} bytes) but the content ends after {len(data)}"
                )
            extra = z.read(_CHUNK)  # also reads to the end, checking the CRC
            if extra:
                raise IdxFormatError(
                    f"{name}: trailing garbage after the {hsize + need} bytes that "
                    f"the header {shape} declares"
                )
    except (OSError, EOFError, zlib.error) as exc:
        raise IdxFormatError(f"{name}: corrupt gzip stream ({exc})") from exc
    return head[:hsize] + bytes(data)


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """The whole (decompressed) content of the IDX file at ``path``, validated.

    Raises `IdxFormatError` for an empty file, a wrong magic number, an
    unsupported element type, truncated data, trailing garbage or a corrupt
    gzip stream; ``FileNotFoundError`` when ``path`` does not exist.
    """
    name = str(path)
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        if file_size == 0:
            raise IdxFormatError(f"{name}: empty file (0 bytes)")
        compressed = f.read(2) == GZIP_MAGIC
        f.seek(0)
        if compressed:
            return _read_gzip(f, name, file_size)
        return _read_plain(f, name, file_size)


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """The array of an uncompressed IDX buffer, in native byte order.

    Shape and dtype are the header's: MNIST images -> (N, 28, 28) uint8,
    labels -> (N,) uint8.
    """
    dtype, shape, hsize = _header(bytes(data[: 4 + 4 * 255]), name)
    need = _payload_size(dtype, shape)
    if len(data) - hsize != need:
        problem = "truncated data" if len(data) - hsize < need else "trailing garbage"
        raise IdxFormatError(
            f"{name}: {problem}: the header declares {shape} ({need} bytes), "
            f"the content has {len(data) - hsize}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=hsize).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not (decided by content).

    Returns a NumPy array with the header's shape and dtype (native byte
    order): MNIST images -> (N, 28, 28) uint8, labels -> (N,) uint8. Never a
    silently short array: see `read_idx_bytes` for the errors raised.
    """
    return parse_idx(read_idx_bytes(Path(path)), str(path))
