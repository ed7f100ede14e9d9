"""MNIST and Fashion-MNIST as NumPy arrays, with the book's ``load_mnist`` API.

Where each IDX file comes from, first match wins:

1. ``data_dir`` (else ``$XPNET_DATA_DIR``): the folder itself or its
   ``<dataset>/`` subfolder (so one root can hold ``mnist/`` and
   ``fashion-mnist/``); files may be gzipped or not;
2. the user cache ``$XDG_CACHE_HOME/xpnet/<dataset>/`` (else ``~/.cache/xpnet``);
3. for Fashion-MNIST, Debian's ``/usr/share/datasets/fashion-mnist``;
4. a verified download into the user cache (see `nn.data.download`).

This module finds the files and shapes the arrays as the book does;
`nn.data.parsed` validates them by structure (magic, dimensions, counts,
label range), not by checksum, because recompressed copies are common, and
keeps the parsed arrays in ``<cache>/<dataset>/parsed-<split>.npz`` (never a
pickle), rebuilt when a source file's size or modification time changes or
the cache is unreadable.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from nn.data.download import DownloadError, download_file, mirror_list
from nn.data.errors import DatasetError, DatasetFormatError, DatasetNotFoundError
from nn.data.parsed import NUM_CLASSES, parsed_split
from nn.data.sources import DATASETS, SYSTEM_DIRS, DatasetInfo

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "DatasetError",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "PIXEL_SCALE",
    "cache_root",
    "load_mnist",
    "load_mnist_split",
    "locate_files",
]

DATA_DIR_ENV = "XPNET_DATA_DIR"
SPLITS = ("train", "test")
#: normalize=True divides the uint8 pixels by this, in float32.
PIXEL_SCALE = 255.0
#: Keyword arguments of `nn.data.download.download_file` used by the loaders.
DOWNLOAD_OPTIONS = {"retries": 2, "timeout": 30.0, "backoff": 1.0}


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
    if not download:
        raise _not_found(info, split, filename, dirs, "", "allow download=True")
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
        why = f" and cannot be downloaded: {_download_failure(exc)}"
        net = "go online to download it"
        # The message says what each mirror answered: the chain of socket and
        # urllib tracebacks would bury it (it stays in __context__).
        raise _not_found(info, split, filename, dirs, why, net) from None


def _download_failure(exc: DownloadError) -> str:
    """The download's failure in a few words: each mirror once, by host."""
    last = {}
    for url, reason in exc.attempts:
        parts = urlsplit(url)
        last[parts.netloc or parts.path.rsplit("/", 1)[0]] = reason
    if not last:
        return str(exc)
    if exc.offline:
        return next(iter(last.values()))
    return "; ".join(f"{host}: {reason}" for host, reason in last.items())


def _places(info, dirs) -> str:
    """The folders searched, each once; ``root/<dataset>`` written beside its root."""
    names = [str(d) for d in dict.fromkeys(dirs)]
    if len(dirs) > 1 and dirs[0] == dirs[1] / info.name:
        names[:2] = [f"{dirs[1]} (and its {info.name}/)"]
    return ", ".join(names)


def _not_found(info, split, filename, dirs, why, last_resort):
    """The one-paragraph error for a missing file (library and CLI versions)."""
    looked = _places(info, dirs)

    def advice(option: str) -> str:
        return (
            f"{info.title} is not on this machine (looked for {filename} in "
            f"{looked}){why}. Pass {option} (a folder of the {info.title} .gz "
            f"files), set ${DATA_DIR_ENV}, or {last_resort}"
        )

    # Chapter 3's inference reads only the test split: worth saying to a
    # library user missing the training images, not during a training run.
    hint = (
        " (chapter 3 needs only the test split: nn.load_mnist_split('test'))"
        if split == "train"
        else ""
    )
    return DatasetNotFoundError(
        advice("data_dir=") + hint + ".", cli_message=advice("--data-dir DIR") + "."
    )


def _raw_split(split, dataset, data_dir, download):
    """(images (N, 28, 28) uint8, labels (N,) uint8) of one split, validated."""
    info = _dataset(dataset)
    paths = locate_files(split, dataset, data_dir, download)
    return parsed_split(
        info, split, paths, cache_root() / info.name / f"parsed-{split}.npz"
    )


def _transform(images, labels, normalize, flatten, one_hot_label):
    n = len(images)
    x = images.reshape(n, 28 * 28) if flatten else images.reshape(n, 1, 28, 28)
    if normalize:
        x = x.astype(np.float32)
        x /= PIXEL_SCALE
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
    """One split (``"train"`` or ``"test"``) as ``(x, t)``; see
    [`load_mnist`][nn.load_mnist].

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
