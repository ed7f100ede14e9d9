"""From located MNIST IDX files to validated arrays, through the parsed-array cache.

Files are checked by structure (uint8 images (N, 28, 28), labels (N,) in
0..9, matching counts), not by checksum, because recompressed copies are
common; a file whose content is a known *other* file (say Fashion-MNIST's
labels given as MNIST's) is named as such. Parsed arrays are kept in an
``.npz`` (never a pickle) keyed by the sources' paths, sizes and modification
times, and rebuilt whenever that key changes or the cache cannot be read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from nn.data.errors import DatasetFormatError
from nn.data.fileio import make_temp
from nn.data.idx import parse_idx, read_idx_bytes
from nn.data.sources import DATASETS, DatasetInfo

__all__ = ["IMAGE_SHAPE", "NUM_CLASSES", "parsed_split", "validate"]

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
_CACHE_VERSION = 1

# content sha256 -> "Fashion-MNIST's t10k-images-idx3-ubyte.gz", to catch mix-ups.
_KNOWN_CONTENT = {
    c.content_sha256: f"{info.title}'s {fname}"
    for info in DATASETS.values()
    for fname, c in info.files.values()
}


def read_checked(path: Path, info: DatasetInfo, expected: str) -> np.ndarray:
    data = read_idx_bytes(path)
    known = _KNOWN_CONTENT.get(hashlib.sha256(data).hexdigest())
    if known and known != expected:
        raise DatasetFormatError(
            f"{path} is {known}, not {expected}: point data_dir at the folder of "
            f"{info.title}'s own files"
        )
    return parse_idx(data, str(path))


def validate(images, labels, images_path, labels_path) -> None:
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


def cache_key(paths) -> str:
    stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    return json.dumps({"version": _CACHE_VERSION, "sources": stats})


def load_cached(cache: Path, key: str, paths):
    try:
        with np.load(cache, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            images, labels = z["images"], z["labels"]
        validate(images, labels, *paths)
    except Exception:  # a corrupt or stale cache is rebuilt, never trusted
        return None
    return images, labels


def save_cached(cache: Path, key: str, images, labels) -> None:
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


def parsed_split(info: DatasetInfo, split: str, paths, cache: Path):
    """(images (N, 28, 28) uint8, labels (N,) uint8) of ``paths``, validated.

    paths: the split's (images, labels) IDX files; cache: the ``.npz`` to read
    the arrays from when it matches the files, and to refresh when it does not.
    """
    key = cache_key(paths)
    hit = load_cached(cache, key, paths)
    if hit is not None:
        return hit
    images = read_checked(
        paths[0], info, f"{info.title}'s {info.files[split, 'images'][0]}"
    )
    labels = read_checked(
        paths[1], info, f"{info.title}'s {info.files[split, 'labels'][0]}"
    )
    validate(images, labels, *paths)
    save_cached(cache, key, images, labels)
    return images, labels
