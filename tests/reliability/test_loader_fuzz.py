"""Property tests of ``load_mnist_split`` on folders of generated and damaged files.

Each Hypothesis example writes an images file and a labels file into a fresh
``data_dir``: right or wrong counts, labels in or out of 0..9, images of other
shapes or element types, files swapped, truncated, padded or with corrupt
gzip. The reference decides validity independently; the loader must return
exactly the reference arrays, or raise the project's own one-line error
(`IdxFormatError` or `DatasetError`), and must never leave a
parsed cache of data it refused.
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

pytest.importorskip("hypothesis")

from hypothesis import given, settings
from hypothesis import strategies as st
from reliability_support import FUZZ_SETTINGS, idx_bytes, reference_parse

from nn.data.idx import IdxFormatError
from nn.data.mnist import DatasetError, cache_root, load_mnist_split

#: Hypothesis examples of (images, labels) folders given to the loader (README).
LOADER_EXAMPLES = 150
IMAGES, LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


@st.composite
def dataset_files(draw):
    """{file name: raw bytes} of a test split, valid or damaged in one way."""
    n = draw(st.integers(0, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    damage = draw(
        st.sampled_from(
            [
                "none",
                "count",
                "label-range",
                "image-shape",
                "image-dtype",
                "labels-2d",
                "swap",
                "truncate",
                "pad",
                "gzip-flip",
            ]
        )
    )
    if damage == "count":
        labels = rng.integers(0, 10, draw(st.integers(0, 5).filter(lambda m: m != n)))
        labels = labels.astype(np.uint8)
    elif damage == "label-range" and n:
        labels[draw(st.integers(0, n - 1))] = draw(st.integers(10, 255))
    elif damage == "image-shape":
        images = images.reshape(n, 28 * 28) if draw(st.booleans()) else images[:, :27]
    elif damage == "image-dtype":
        images = images.astype(draw(st.sampled_from(["int8", "int16", "float32"])))
    elif damage == "labels-2d":
        labels = labels.reshape(n, 1)
    raw = {IMAGES: idx_bytes(images), LABELS: idx_bytes(labels)}
    if damage == "swap":
        raw = {IMAGES: raw[LABELS], LABELS: raw[IMAGES]}
    victim = draw(st.sampled_from([IMAGES, LABELS]))
    if damage == "truncate":
        raw[victim] = raw[victim][: draw(st.integers(0, len(raw[victim]) - 1))]
    elif damage == "pad":
        raw[victim] += draw(st.binary(min_size=1, max_size=8))
    files = {}
    for name, data in raw.items():
        if draw(st.booleans()):
            data = gzip.compress(data, mtime=0)
            if damage == "gzip-flip" and name == victim:
                i = draw(st.integers(10, len(data) - 1))
                data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
            name += ".gz"
        files[name] = data
    return files


def expected_split(files: dict):
    """(x (N, 784) float32, t (N,) uint8) of a valid folder, else the bad file name.

    Returns ``("idx", name)`` for a file that is not valid IDX and
    ``("dataset", None)`` for valid IDX files that do not make a dataset.
    """
    parsed = {}
    for name in sorted(files, key=lambda f: not f.startswith(IMAGES)):
        arr = reference_parse(files[name])
        if arr is None:
            return ("idx", name)
        parsed[name.split(".")[0]] = arr
    images, labels = parsed[IMAGES], parsed[LABELS]
    if (
        images.dtype != np.uint8
        or images.shape[1:] != (28, 28)
        or labels.dtype != np.uint8
        or labels.ndim != 1
        or len(images) != len(labels)
        or (labels.size and labels.max() > 9)
    ):
        return ("dataset", None)
    return images.reshape(len(images), 784).astype(np.float32) / 255, labels


@pytest.mark.timeout(120)
def test_loader_returns_the_data_or_a_clear_error(tmp_path, monkeypatch):
    outcomes = {"loaded": 0, "idx": 0, "dataset": 0}

    @settings(max_examples=LOADER_EXAMPLES, **FUZZ_SETTINGS)
    @given(files=dataset_files())
    def case(files):
        run = tmp_path / f"case{sum(outcomes.values())}"
        data_dir = run / "data"
        data_dir.mkdir(parents=True)
        monkeypatch.setenv("XDG_CACHE_HOME", str(run / "cache"))
        for name, raw in files.items():
            (data_dir / name).write_bytes(raw)
        expected = expected_split(files)
        if isinstance(expected[0], str):
            kind, bad = expected
            error = IdxFormatError if kind == "idx" else DatasetError
            with pytest.raises(error) as info:
                load_mnist_split("test", data_dir=data_dir, download=False)
            message = str(info.value)
            assert "\n" not in message
            assert str(data_dir) in message
            if bad is not None:
                assert message.startswith(str(data_dir / bad))
            # Refused data is never cached for a later load to trust.
            assert not list(cache_root().rglob("parsed-*"))
            outcomes[kind] += 1
            return
        for _ in range(2):  # the second load comes from the parsed cache
            x, t = load_mnist_split("test", data_dir=data_dir, download=False)
            np.testing.assert_array_equal(x, expected[0])
            np.testing.assert_array_equal(t, expected[1])
            assert x.dtype == np.float32 and t.dtype == np.uint8
        assert os.listdir(cache_root() / "mnist") == ["parsed-test.npz"]
        outcomes["loaded"] += 1

    case()
    assert sum(outcomes.values()) >= LOADER_EXAMPLES
    assert min(outcomes.values()) >= LOADER_EXAMPLES // 10, outcomes
