"""Tests of nn/idx.py: reading IDX files, plain or gzip, and rejecting bad ones."""

from __future__ import annotations

import gzip
import hashlib
import struct
import time
import tracemalloc

import numpy as np
import pytest

from nn.data.idx import IdxFormatError, parse_idx, read_idx, read_idx_bytes

CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(arr: np.ndarray, code: int | None = None) -> bytes:
    """An IDX encoding of ``arr`` written by hand (independent of nn.data.idx)."""
    kind = arr.dtype.str[1:]
    header = struct.pack(">HBB", 0, code or CODES[kind], arr.ndim)
    header += struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(tmp_path, name: str, data: bytes, compress: bool):
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("kind", sorted(CODES))
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (1, 1, 1, 7)])
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_every_type(tmp_path, kind, shape, compress):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal(shape) * 50).astype(kind)
    path = write(tmp_path, "a.idx", idx_bytes(arr), compress)
    out = read_idx(path)
    assert out.shape == shape
    assert out.dtype == np.dtype(kind)  # native byte order
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("name, compress", [("x.gz", False), ("x.idx", True)])
def test_gzip_is_detected_by_content_not_name(tmp_path, name, compress):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = write(tmp_path, name, idx_bytes(arr), compress)
    np.testing.assert_array_equal(read_idx(path), arr)


def test_real_mnist_test_files(shared_data):
    folder = shared_data / "mnist"
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    raw = gzip.decompress((folder / "t10k-images-idx3-ubyte.gz").read_bytes())
    # Published md5 of the decompressed canonical test images.
    assert hashlib.md5(raw).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    assert read_idx_bytes(folder / "t10k-images-idx3-ubyte.gz") == raw
    np.testing.assert_array_equal(
        images.reshape(-1), np.frombuffer(raw, np.uint8, offset=16)
    )
    # Published class counts of the MNIST test set.
    assert np.bincount(labels).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009
    ]  # fmt: skip


GOOD = idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
BAD_FILES = {
    "wrong magic": (b"\x12\x34" + GOOD[2:], "wrong magic number"),
    "html page": (b"<html>404 Not Found</html>", "wrong magic number"),
    "unsupported type": (GOOD[:2] + b"\x0a" + GOOD[3:], "unsupported IDX element type"),
    "zero dims": (b"\x00\x00\x08\x00", "0 dimensions"),
    "truncated header": (GOOD[:10], "truncated IDX header"),
    "tiny header": (b"\x00\x00", "truncated IDX header"),
    "truncated payload": (GOOD[:-1], "truncated data"),
    "trailing garbage": (GOOD + b"junk", "trailing garbage"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("compress", [False, True])
def test_bad_file_names_file_and_problem(tmp_path, case, compress):
    data, problem = BAD_FILES[case]
    path = write(tmp_path, "bad-file.idx", data, compress)
    with pytest.raises(IdxFormatError, match=problem) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_empty_file(tmp_path):
    path = write(tmp_path, "empty.gz", b"", False)
    with pytest.raises(IdxFormatError, match="empty file") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda z: z[: len(z) // 2],  # stream cut short
        lambda z: z[:20] + bytes(b ^ 0xFF for b in z[20:40]) + z[40:],  # bad deflate
        lambda z: z[:-8] + b"\0\0\0\0" + z[-4:],  # CRC mismatch
    ],
    ids=["cut", "flipped", "crc"],
)
def test_corrupt_gzip(tmp_path, mangle):
    rng = np.random.default_rng(1)
    data = idx_bytes(rng.integers(0, 255, (50, 28, 28), dtype=np.uint8))
    path = tmp_path / "c.gz"
    path.write_bytes(mangle(gzip.compress(data)))
    with pytest.raises(IdxFormatError, match="corrupt gzip|truncated") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_gzip_followed_by_garbage_is_rejected(tmp_path):
    path = tmp_path / "g.gz"
    path.write_bytes(gzip.compress(GOOD) + b"garbage!")
    with pytest.raises(IdxFormatError, match=str(path)):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_absurd_declared_size_fails_fast_without_allocating(tmp_path, compress):
    # Header claims 2**32-1 x 2**32-1 x 2**32-1 float64 (about 6e29 bytes).
    head = struct.pack(">HBB3I", 0, 0x0E, 3, 2**32 - 1, 2**32 - 1, 2**32 - 1)
    path = write(tmp_path, "huge.idx", head + b"\0" * 64, compress)
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(IdxFormatError, match="truncated|more than"):
        read_idx(path)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 5_000_000


def test_large_but_truncated_gzip_does_not_allocate_declared_size(tmp_path):
    # Plausible for the compression ratio (a 1 MB gzip may hold 200 MB) but the
    # stream ends early: the reader must only hold what really arrived.
    head = struct.pack(">HBB3I", 0, 0x08, 3, 250_000, 28, 28)
    path = tmp_path / "t.gz"
    noise = np.random.default_rng(2).bytes(1_000_000)  # incompressible
    path.write_bytes(gzip.compress(head + noise))
    tracemalloc.start()
    with pytest.raises(IdxFormatError, match="truncated data"):
        read_idx(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 30_000_000  # declared payload is 196 MB


def test_parse_idx_rejects_short_buffer():
    with pytest.raises(IdxFormatError, match="mem: truncated data"):
        parse_idx(GOOD[:-3], "mem")


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")
