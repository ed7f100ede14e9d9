"""MNIST and Fashion-MNIST as NumPy arrays, with the book's ``load_mnist`` API.

Where each IDX file comes from, first match wins:

1. ``data_dir`` (else ``$XPNET_DATA_DIR``): the folder itself or its
   ``<dataset>/`` subfolder (so one root can hold ``mnist/`` and
   ``fashion-mnist/``); files may be gzipped or not;
2. the user cache ``$XDG_CACHE_HOME/xpnet/<dataset>/`` (else ``~/.cache/xpnet``);
3. for Fashion-MNIST, Debian's ``/usr/share/datasets/fashion-mnist``;
4. a verified download into the user cache (see :mod:`nn.download`).

Local files are validated by structure (magic, dimensions, counts, label range),
not by checksum, because recompressed copies are common. Parsed arrays are kept
in ``<cache>/<dataset>/parsed-<split>.npz`` (never a pickle), rebuilt when a
source file's size or modification time changes or the cache is unreadable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from nn._fileio import make_temp
from nn.download import DownloadError, download_file, mirror_list
from nn.idx import parse_idx, read_idx_bytes
from nn.mnist_sources import DATASETS, SYSTEM_DIRS, DatasetInfo

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "DatasetError",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "cache_root",
    "load_mnist",
    "load_mnist_split",
    "locate_files",
]

DATA_DIR_ENV = "XPNET_DATA_DIR"
SPLITS = ("train", "test")
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
_CACHE_VERSION = 1
#: Keyword arguments of :func:`nn.download.download_file` used by the loaders.
DOWNLOAD_OPTIONS = {"retries": 2, "timeout": 30.0, "backoff": 1.0}


class DatasetError(RuntimeError):
    """Base class of the errors of :func:`load_mnist` (messages are one line)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset file is neither on disk nor downloadable."""


class DatasetFormatError(DatasetError, ValueError):
    """Dataset files that are well-formed IDX but do not make a valid dataset."""


# content sha256 -> "Fashion-MNIST's t10k-images-idx3-ubyte.gz", to catch mix-ups.
_KNOWN_CONTENT = {
    c.content_sha256: f"{info.title}'s {fname}"
    for info in DATASETS.values()
    for fname, c in info.files.values()
}


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/xpnet``, else ``~/.cache/xpnet``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "xpnet"


def _dataset(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


def _search_dirs(info: DatasetInfo, data_dir) -> list[Path]:
    """The folders to look in, in order; a named folder must exist."""
    origin = "data_dir"
    if data_dir is None and os.environ.get(DATA_DIR_ENV):
        data_dir, origin = os.environ[DATA_DIR_ENV], f"${DATA_DIR_ENV}"
    dirs = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(
                f"{origin} {root} does not exist or is not a folder: pass the folder "
                f"that holds the {info.title} IDX files (or its parent with a "
                f"{info.name}/ subfolder), or leave it unset to use the cache and "
                "download"
            )
        dirs += [root / info.name, root]
    dirs.append(cache_root() / info.name)
    dirs += [Path(d) for d in SYSTEM_DIRS.get(info.name, ())]
    return dirs


def _find(dirs: list[Path], filename: str) -> Path | None:
    for folder in dirs:
        for name in (filename, filename.removesuffix(".gz")):
            if (folder / name).is_file():
                return folder / name
    return None


def locate_files(
    split: str, dataset: str = "mnist", data_dir=None, download: bool = True
) -> tuple[Path, Path]:
    """Paths of the (images, labels) IDX files of ``split``, downloading if needed."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    info = _dataset(dataset)
    dirs = _search_dirs(info, data_dir)
    paths = []
    for kind in ("images", "labels"):
        filename, checksums = info.files[split, kind]
        path = _find(dirs, filename)
        if path is None:
            path = _obtain(info, split, filename, checksums, dirs, download)
        paths.append(path)
    return paths[0], paths[1]


def _obtain(info, split, filename, checksums, dirs, download) -> Path:
    looked = ", ".join(str(d) for d in dirs)
    hint = (
        " (chapter 3 needs only the test split: nn.load_mnist_split('test'))"
        if split == "train"
        else ""
    )
    if not download:
        raise DatasetNotFoundError(
            f"{info.title} file {filename} not found in {looked}: put it in one of "
            f"those folders, pass data_dir= (or set ${DATA_DIR_ENV}) to the folder "
            f"holding it, or allow download=True{hint}"
        )
    mirrors = mirror_list(info.mirrors, info.name)
    try:
        return download_file(
            filename,
            cache_root() / info.name / filename,
            mirrors,
            checksums,
            **DOWNLOAD_OPTIONS,
        )
    except DownloadError as exc:
        tried = "; ".join(f"{url}: {why}" for url, why in exc.attempts) or str(exc)
        raise DatasetNotFoundError(
            f"{info.title} file {filename} is not on this machine (looked in "
            f"{looked}) and could not be downloaded (tried {tried}). To proceed, "
            f"put the file in a folder and pass data_dir= (or set ${DATA_DIR_ENV}), "
            f"or set $XPNET_MNIST_MIRROR to a mirror you can reach (a URL or "
            f"file:// folder holding the .gz files){hint}."
        ) from exc


def _read_checked(path: Path, info: DatasetInfo, expected: str) -> np.ndarray:
    data = read_idx_bytes(path)
    known = _KNOWN_CONTENT.get(hashlib.sha256(data).hexdigest())
    if known and known != expected:
        raise DatasetFormatError(
            f"{path} is {known}, not {expected}: point data_dir at the folder of "
            f"{info.title}'s own files"
        )
    return parse_idx(data, str(path))


def _validate(images, labels, images_path, labels_path) -> None:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DatasetFormatError(
            f"{images_path}: expected uint8 images of shape (N, 28, 28), found "
            f"{images.dtype} {images.shape}: replace the file (or delete it to "
            "download it again)"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetFormatError(
            f"{labels_path}: expected uint8 labels of shape (N,), found "
            f"{labels.dtype} {labels.shape}: replace the file"
        )
    if len(images) != len(labels):
        raise DatasetFormatError(
            f"{len(images)} images in {images_path} but {len(labels)} labels in "
            f"{labels_path}: the two files must come from the same split of one "
            "dataset; replace the wrong one"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise DatasetFormatError(
            f"{labels_path}: label {int(labels[bad])} at index {bad} is outside "
            f"0..{NUM_CLASSES - 1}: not a 10-class labels file; replace it"
        )


def _cache_key(paths) -> str:
    stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    return json.dumps({"version": _CACHE_VERSION, "sources": stats})


def _load_cached(cache: Path, key: str, paths):
    try:
        with np.load(cache, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            images, labels = z["images"], z["labels"]
        _validate(images, labels, *paths)
    except Exception:  # a corrupt or stale cache is rebuilt, never trusted
        return None
    return images, labels


def _save_cached(cache: Path, key: str, images, labels) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = make_temp(cache, ".tmp")
    except OSError:
        return  # no writable cache: still works, only slower next time
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, key=np.array(key), images=images, labels=labels)
        os.replace(tmp, cache)
    except OSError:
        pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _raw_split(split, dataset, data_dir, download):
    """(images (N, 28, 28) uint8, labels (N,) uint8) of one split, validated."""
    info = _dataset(dataset)
    paths = locate_files(split, dataset, data_dir, download)
    key = _cache_key(paths)
    cache = cache_root() / info.name / f"parsed-{split}.npz"
    hit = _load_cached(cache, key, paths)
    if hit is not None:
        return hit
    images = _read_checked(
        paths[0], info, f"{info.title}'s {info.files[split, 'images'][0]}"
    )
    labels = _read_checked(
        paths[1], info, f"{info.title}'s {info.files[split, 'labels'][0]}"
    )
    _validate(images, labels, *paths)
    _save_cached(cache, key, images, labels)
    return images, labels


def _transform(images, labels, normalize, flatten, one_hot_label):
    n = len(images)
    x = images.reshape(n, 28 * 28) if flatten else images.reshape(n, 1, 28, 28)
    if normalize:
        x = x.astype(np.float32)
        x /= 255.0
    t = labels
    if one_hot_label:
        t = np.zeros((labels.size, NUM_CLASSES))
        t[np.arange(labels.size), labels] = 1
    return x, t


def load_mnist_split(
    split: str,
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    dataset: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
):
    """One split (``"train"`` or ``"test"``) as ``(x, t)``; see :func:`load_mnist`.

    Only that split's two files are looked for, so chapter 3's inference
    (``split="test"``) works without the training images.
    """
    images, labels = _raw_split(split, dataset, data_dir, download)
    return _transform(images, labels, normalize, flatten, one_hot_label)


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    dataset: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
):
    """``((x_train, t_train), (x_test, t_test))`` with the book's shapes and dtypes.

    Parameters
    ----------
    normalize : bool
        x as float32 in [0, 1] (pixel / 255), else uint8 0..255.
    flatten : bool
        x of shape (N, 784), else (N, 1, 28, 28).
    one_hot_label : bool
        t as (N, 10) float64 one-hot rows (as the book), else (N,) uint8 labels.
    dataset : {"mnist", "fashion-mnist"}
    data_dir : path, optional
        Folder holding the IDX files (default ``$XPNET_DATA_DIR``); see the
        module docstring for the search order.
    download : bool
        Download missing files into the user cache (verified checksums).
    """
    kwargs = dict(
        normalize=normalize,
        flatten=flatten,
        one_hot_label=one_hot_label,
        dataset=dataset,
        data_dir=data_dir,
        download=download,
    )
    return load_mnist_split("train", **kwargs), load_mnist_split("test", **kwargs)
