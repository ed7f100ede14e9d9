"""Property tests of ``read_idx``: every file loads exactly or raises IdxFormatError.

Hypothesis builds IDX files (every element type, 1-3 dimensions), then
damages them: truncated or padded payloads, wrong magic bytes, random header
bytes, absurd dimensions, corrupt or cut gzip streams, garbage after the gzip
member, and plain random bytes. An independent reference parser (the format
written out again here with ``struct`` and ``gzip.decompress``) says whether
each file is valid; ``read_idx`` must then return exactly the reference array
or raise its own one-line `IdxFormatError` naming the file.
"""

from __future__ import annotations

import gzip
import math
import struct
import time
import tracemalloc

import numpy as np
import pytest

pytest.importorskip("hypothesis")

from hypothesis import example, given, settings
from hypothesis import strategies as st
from reliability_support import FUZZ_SETTINGS, IDX_TYPES, reference_parse

from nn.data.idx import IdxFormatError, read_idx

#: Hypothesis examples of damaged / random IDX files (README table).
IDX_EXAMPLES = 400
#: Hypothesis examples of headers that declare absurd sizes (README table).
ABSURD_EXAMPLES = 100
#: Most bytes ``read_idx`` may allocate while refusing an absurd header.
ABSURD_PEAK_BYTES = 1 << 20
ABSURD_SECONDS = 1.0


@st.composite
def valid_idx(draw):
    """(raw IDX bytes, header length) of a small valid file of any element type."""
    code = draw(st.sampled_from(sorted(IDX_TYPES)))
    shape = draw(st.lists(st.integers(0, 5), min_size=1, max_size=3))
    size = np.dtype(IDX_TYPES[code]).itemsize * math.prod(shape)
    payload = draw(st.binary(min_size=size, max_size=size))
    head = struct.pack(">HBB", 0, code, len(shape)) + struct.pack(
        f">{len(shape)}I", *shape
    )
    return head + payload, len(head)


@st.composite
def damaged_idx(draw):
    """Raw file bytes: a valid IDX file, maybe damaged, maybe gzipped."""
    raw, hsize = draw(valid_idx())
    damage = draw(
        st.sampled_from(
            ["none", "truncate", "pad", "magic", "dim", "header", "ndim", "random"]
        )
    )
    if damage == "truncate":
        raw = raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
    elif damage == "pad":
        raw += draw(st.binary(min_size=1, max_size=16))
    elif damage == "magic":
        raw = bytearray(raw)
        raw[draw(st.integers(0, 3))] = draw(st.integers(0, 255))
        raw = bytes(raw)
    elif damage == "dim":
        i = draw(st.integers(0, (hsize - 4) // 4 - 1))
        dim = draw(st.integers(0, 2**32 - 1))
        raw = raw[: 4 + 4 * i] + struct.pack(">I", dim) + raw[8 + 4 * i :]
    elif damage == "header":
        raw = draw(st.binary(min_size=hsize, max_size=hsize)) + raw[hsize:]
    elif damage == "ndim":
        raw = raw[:3] + bytes([draw(st.integers(0, 255))]) + raw[4:]
    elif damage == "random":
        raw = draw(st.binary(max_size=64))
    compression = draw(
        st.sampled_from(["plain", "gzip", "gz-cut", "gz-flip", "gz+junk"])
    )
    if compression == "plain":
        return raw
    packed = gzip.compress(raw, mtime=0)
    if compression == "gz-cut":
        return packed[: draw(st.integers(2, len(packed) - 1))]
    if compression == "gz-flip":
        i = draw(st.integers(2, len(packed) - 1))
        flip = draw(st.integers(1, 255))
        return packed[:i] + bytes([packed[i] ^ flip]) + packed[i + 1 :]
    if compression == "gz+junk":
        return packed + draw(st.binary(min_size=1, max_size=16))
    return packed


def check_read(path, raw: bytes) -> None:
    """Assert that read_idx(path) agrees with the reference parser on ``raw``."""
    path.write_bytes(raw)
    expected = reference_parse(raw)
    if expected is None:
        with pytest.raises(IdxFormatError) as info:
            read_idx(path)
        message = str(info.value)
        assert message.startswith(str(path)), message
        assert "\n" not in message
    else:
        got = read_idx(path)
        assert got.shape == expected.shape
        assert got.dtype == expected.dtype.newbyteorder("=")
        assert got.tobytes() == expected.astype(got.dtype).tobytes()


@pytest.mark.timeout(120)
def test_damaged_idx_files_load_exactly_or_raise_idx_format_error(tmp_path):
    seen = {"valid": 0, "invalid": 0}

    @settings(max_examples=IDX_EXAMPLES, **FUZZ_SETTINGS)
    @given(raw=damaged_idx())
    @example(raw=b"")
    @example(raw=b"\x1f\x8b")
    @example(raw=b"\0\0\x08\x01")
    def case(raw):
        check_read(tmp_path / "f.idx", raw)
        seen["valid" if reference_parse(raw) is not None else "invalid"] += 1

    case()
    # Both outcomes must really be exercised, and every example must have run.
    assert seen["valid"] >= IDX_EXAMPLES // 10
    assert seen["invalid"] >= IDX_EXAMPLES // 2
    assert sum(seen.values()) >= IDX_EXAMPLES


@st.composite
def absurd_headers(draw):
    """A file whose header declares >= 2**31 bytes but which holds a few bytes."""
    code = draw(st.sampled_from(sorted(IDX_TYPES)))
    ndim = draw(st.integers(1, 4))
    dims = draw(st.lists(st.integers(1, 2**32 - 1), min_size=ndim, max_size=ndim))
    itemsize = np.dtype(IDX_TYPES[code]).itemsize
    if itemsize * math.prod(dims) < 2**31:
        dims[0] = 2**32 - 1
    head = struct.pack(">HBB", 0, code, ndim) + struct.pack(f">{ndim}I", *dims)
    raw = head + draw(st.binary(max_size=4096))
    return gzip.compress(raw, mtime=0) if draw(st.booleans()) else raw


@pytest.mark.timeout(120)
def test_absurd_declared_sizes_fail_fast_without_allocating(tmp_path):
    seen = []
    mnist_2_31 = struct.pack(">HBBIII", 0, 8, 3, 2**31, 28, 28) + bytes(784)

    @settings(max_examples=ABSURD_EXAMPLES, **FUZZ_SETTINGS)
    @given(raw=absurd_headers())
    @example(raw=mnist_2_31)
    @example(raw=gzip.compress(mnist_2_31))
    def case(raw):
        path = tmp_path / "absurd.idx"
        path.write_bytes(raw)
        tracemalloc.start()
        start = time.perf_counter()
        try:
            with pytest.raises(IdxFormatError, match="declares|truncated"):
                read_idx(path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert time.perf_counter() - start < ABSURD_SECONDS
        assert peak < ABSURD_PEAK_BYTES, f"allocated {peak} bytes"
        seen.append(len(raw))

    case()
    assert len(seen) >= ABSURD_EXAMPLES
