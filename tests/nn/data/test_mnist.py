"""Tests of nn/mnist.py: the book's load_mnist on real MNIST and Fashion-MNIST."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct

import numpy as np
import pytest

import nn
import nn.data.mnist as mnist
import nn.data.parsed as mnist_parsed

TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
# Published class counts of the MNIST test set.
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache, no env settings, no system folders, and no download."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("XPNET_DATA_DIR", raising=False)
    monkeypatch.setenv("XPNET_MNIST_MIRROR", "http://127.0.0.1:9/")  # port 9: refused
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {})
    monkeypatch.setattr(mnist, "DOWNLOAD_OPTIONS", dict(retries=0, timeout=2.0))


@pytest.fixture
def mnist_dir(shared_data):
    return shared_data / "mnist"


def raw_test_split(folder):
    """Reference arrays read with gzip + frombuffer (independent of nn.data.idx)."""
    images = np.frombuffer(
        gzip.decompress((folder / TEST_IMAGES).read_bytes()), np.uint8, offset=16
    )
    labels = np.frombuffer(
        gzip.decompress((folder / TEST_LABELS).read_bytes()), np.uint8, offset=8
    )
    return images.reshape(-1, 28, 28), labels


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("flatten", [True, False])
@pytest.mark.parametrize("one_hot", [True, False])
def test_shapes_dtypes_and_values_follow_the_book(
    mnist_dir, normalize, flatten, one_hot
):
    x, t = nn.load_mnist_split(
        "test", normalize=normalize, flatten=flatten, one_hot_label=one_hot,
        data_dir=mnist_dir, download=False,
    )  # fmt: skip
    images, labels = raw_test_split(mnist_dir)
    assert x.shape == ((10000, 784) if flatten else (10000, 1, 28, 28))
    if normalize:
        assert x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        expected = images.astype(np.float64) / 255.0
        np.testing.assert_allclose(x.reshape(images.shape), expected, rtol=1e-7)
    else:
        assert x.dtype == np.uint8
        np.testing.assert_array_equal(x.reshape(images.shape), images)
    if one_hot:
        assert t.shape == (10000, 10) and t.dtype == np.float64
        assert set(np.unique(t)) == {0.0, 1.0}
        np.testing.assert_array_equal(t.argmax(axis=1), labels)
        np.testing.assert_array_equal(t.sum(axis=1), 1.0)
    else:
        assert t.shape == (10000,) and t.dtype == np.uint8
        assert np.bincount(t).tolist() == MNIST_TEST_COUNTS


def test_data_dir_may_be_a_root_with_dataset_folders(shared_data, mnist_dir):
    x, t = nn.load_mnist_split("test", data_dir=shared_data, download=False)
    x_ref, t_ref = nn.load_mnist_split("test", data_dir=mnist_dir, download=False)
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(t, t_ref)


def test_env_var_sets_the_data_dir(monkeypatch, mnist_dir):
    monkeypatch.setenv("XPNET_DATA_DIR", str(mnist_dir))
    _, t = nn.load_mnist_split("test", download=False)
    assert np.bincount(t).tolist() == MNIST_TEST_COUNTS


def test_uncompressed_files_work(tmp_path, mnist_dir):
    folder = tmp_path / "plain"
    folder.mkdir()
    for name in (TEST_IMAGES, TEST_LABELS):
        data = gzip.decompress((mnist_dir / name).read_bytes())
        (folder / name.removesuffix(".gz")).write_bytes(data)
    x, _ = nn.load_mnist_split("test", normalize=False, data_dir=folder, download=False)
    np.testing.assert_array_equal(x.reshape(-1, 28, 28), raw_test_split(mnist_dir)[0])


def test_fashion_mnist_full_via_debian_folder(monkeypatch, shared_data):
    # With no data_dir, Debian's folder is searched after the cache.
    monkeypatch.setattr(
        mnist, "SYSTEM_DIRS", {"fashion-mnist": (str(shared_data / "fashion-mnist"),)}
    )
    (x_train, t_train), (x_test, t_test) = nn.load_mnist(
        dataset="fashion-mnist", download=False
    )
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert x_train.dtype == np.float32
    # Fashion-MNIST is balanced: 6000 train and 1000 test images per class.
    assert np.bincount(t_train).tolist() == [6000] * 10
    assert np.bincount(t_test).tolist() == [1000] * 10


def test_full_mnist_without_training_images_says_how_to_proceed(mnist_dir):
    with pytest.raises(nn.DatasetNotFoundError) as info:
        nn.load_mnist(data_dir=mnist_dir, download=False)
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and "load_mnist_split('test')" in msg
    assert "data_dir" in msg and "\n" not in msg


def test_missing_data_dir_is_a_one_line_error(tmp_path):
    with pytest.raises(nn.DatasetNotFoundError, match="does not exist") as info:
        nn.load_mnist(data_dir=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_env_data_dir_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("XPNET_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(nn.DatasetNotFoundError, match=r"\$XPNET_DATA_DIR"):
        nn.load_mnist_split("test")


def test_data_dir_lacking_a_file(tmp_path, mnist_dir):
    shutil.copy(mnist_dir / TEST_IMAGES, tmp_path)
    with pytest.raises(nn.DatasetNotFoundError, match=TEST_LABELS) as info:
        nn.load_mnist_split("test", data_dir=tmp_path, download=False)
    assert "download=True" in str(info.value)


def write_labels(path, labels):
    path.write_bytes(
        struct.pack(">HBBI", 0, 8, 1, len(labels)) + labels.astype(np.uint8).tobytes()
    )


def test_count_mismatch_between_images_and_labels(tmp_path, mnist_dir):
    shutil.copy(mnist_dir / TEST_IMAGES, tmp_path)
    write_labels(tmp_path / TEST_LABELS, raw_test_split(mnist_dir)[1][:9999])
    with pytest.raises(nn.DatasetFormatError, match="10000 images .* 9999 labels"):
        nn.load_mnist_split("test", data_dir=tmp_path, download=False)


def test_labels_out_of_range(tmp_path, mnist_dir):
    shutil.copy(mnist_dir / TEST_IMAGES, tmp_path)
    labels = raw_test_split(mnist_dir)[1].copy()
    labels[1234] = 12
    write_labels(tmp_path / TEST_LABELS, labels)
    with pytest.raises(nn.DatasetFormatError, match="label 12 at index 1234 .* 0..9"):
        nn.load_mnist_split("test", data_dir=tmp_path, download=False)


def test_images_and_labels_swapped(tmp_path, mnist_dir):
    shutil.copy(mnist_dir / TEST_IMAGES, tmp_path / TEST_LABELS)
    shutil.copy(mnist_dir / TEST_LABELS, tmp_path / TEST_IMAGES)
    with pytest.raises(nn.DatasetFormatError, match="MNIST's t10k-labels"):
        nn.load_mnist_split("test", data_dir=tmp_path, download=False)


def test_mnist_folder_given_for_fashion_mnist_is_caught(mnist_dir):
    with pytest.raises(
        nn.DatasetFormatError, match="is MNIST's .* not Fashion-MNIST's"
    ):
        nn.load_mnist_split(
            "test", dataset="fashion-mnist", data_dir=mnist_dir, download=False
        )


def test_corrupt_local_file_names_the_file(tmp_path, mnist_dir):
    shutil.copy(mnist_dir / TEST_LABELS, tmp_path)
    data = (mnist_dir / TEST_IMAGES).read_bytes()
    (tmp_path / TEST_IMAGES).write_bytes(data[: len(data) // 2])
    with pytest.raises(nn.IdxFormatError, match=TEST_IMAGES):
        nn.load_mnist_split("test", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("kwargs, problem", [
    (dict(dataset="cifar"), "unknown dataset"),
])  # fmt: skip
def test_bad_arguments(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        nn.load_mnist(**kwargs)


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown split"):
        nn.load_mnist_split("validation")


# -- the parsed .npz cache ---------------------------------------------------


def cache_file(tmp_path):
    return tmp_path / "cache" / "xpnet" / "mnist" / "parsed-test.npz"


@pytest.fixture
def parse_count(monkeypatch):
    calls = []
    real = mnist_parsed.read_idx_bytes

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(mnist_parsed, "read_idx_bytes", counting)
    return calls


def test_second_load_comes_from_the_npz_cache(tmp_path, mnist_dir, parse_count):
    first = nn.load_mnist_split("test", data_dir=mnist_dir, download=False)
    assert len(parse_count) == 2
    with np.load(cache_file(tmp_path), allow_pickle=False) as z:  # no pickle inside
        assert sorted(z.files) == ["images", "key", "labels"]
    second = nn.load_mnist_split("test", data_dir=mnist_dir, download=False)
    assert len(parse_count) == 2  # nothing parsed again
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    leftovers = [
        p for p in cache_file(tmp_path).parent.iterdir() if p.name.startswith(".")
    ]
    assert leftovers == []


def test_cache_is_rebuilt_when_a_source_changes(tmp_path, mnist_dir, parse_count):
    folder = tmp_path / "data"
    shutil.copytree(mnist_dir, folder)
    _, t = nn.load_mnist_split("test", data_dir=folder, download=False)
    labels = t.copy()
    labels[0] = (labels[0] + 1) % 10
    write_labels(folder / TEST_LABELS, labels)
    os.utime(folder / TEST_LABELS, ns=(0, 10**18))  # a different mtime for sure
    _, t2 = nn.load_mnist_split("test", data_dir=folder, download=False)
    assert len(parse_count) == 4
    np.testing.assert_array_equal(t2, labels)


@pytest.mark.parametrize("damage", [
    lambda p: p.write_bytes(b"not a zip file"),
    lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    lambda p: np.savez(p, key="stale", images=np.zeros(3), labels=np.zeros(3)),
], ids=["garbage", "truncated", "stale-key"])  # fmt: skip
def test_corrupt_cache_is_rebuilt_not_trusted(tmp_path, mnist_dir, parse_count, damage):
    x, t = nn.load_mnist_split("test", data_dir=mnist_dir, download=False)
    damage(cache_file(tmp_path))
    x2, t2 = nn.load_mnist_split("test", data_dir=mnist_dir, download=False)
    assert len(parse_count) == 4
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(t, t2)
    with np.load(cache_file(tmp_path), allow_pickle=False) as z:
        np.testing.assert_array_equal(z["labels"], t)


def test_unwritable_cache_still_loads(tmp_path, monkeypatch, mnist_dir):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    _, t = nn.load_mnist_split("test", data_dir=mnist_dir, download=False)
    assert np.bincount(t).tolist() == MNIST_TEST_COUNTS


# Every file of the shared data (MNIST's training images are not there).
SHARED_FILES = [
    (dataset, split, kind)
    for dataset in ("mnist", "fashion-mnist")
    for split in ("train", "test")
    for kind in ("images", "labels")
    if (dataset, split, kind) != ("mnist", "train", "images")
]


@pytest.mark.parametrize("dataset, split, kind", SHARED_FILES)
def test_checksum_table_matches_the_real_files(shared_data, dataset, split, kind):
    filename, checksums = mnist.DATASETS[dataset].files[split, kind]
    content = gzip.decompress((shared_data / dataset / filename).read_bytes())
    assert hashlib.sha256(content).hexdigest() == checksums.content_sha256
