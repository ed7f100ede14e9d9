"""Data for the trainer: the book's loader settings and input checks."""

from __future__ import annotations

import math


def load_data(
    dataset: str = "mnist",
    data_dir=None,
    download: bool = True,
    normalize: bool = True,
):
    """``((x_train, t_train), (x_test, t_test))``: flattened images, labels.

    Images as float32 in [0, 1], or with ``normalize=False`` as uint8 pixels
    for a [`Trainer`][nn.Trainer] with ``pixel_scale=PIXEL_SCALE``.
    """
    from nn.data.mnist import load_mnist

    return load_mnist(
        normalize=normalize,
        flatten=True,
        one_hot_label=False,
        dataset=dataset,
        data_dir=data_dir,
        download=download,
    )


def data_folder(dataset: str, data_dir=None) -> str | None:
    """The absolute folder ``dataset``'s training images are read from, as
    `load_data` with this ``data_dir`` finds them (None: not on disk)."""
    from nn.data.mnist import DatasetError, locate_files

    try:
        images, _ = locate_files("train", dataset, data_dir, download=False)
    except DatasetError:
        return None
    return str(images.parent.resolve())


def check_split(split, name: str):
    """``split`` as ``(x, t)``, checked to be non-empty with one label per sample."""
    try:
        x, t = split
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (x, t) of arrays") from None
    if len(x) == 0 or len(x) != len(t):
        raise ValueError(
            f"{name} set has {len(x)} samples and {len(t)} labels; "
            "need as many of each, at least one"
        )
    return x, t


def as_labels(t):
    """(N,) integer labels from labels or (N, C) one-hot, on the host side."""
    if getattr(t, "ndim", 1) == 2:
        t = t.argmax(axis=1)
    if t.dtype.kind not in "iu" or int(t.min()) < 0:
        raise ValueError(f"labels must be non-negative integers, got dtype {t.dtype}")
    return t


def check_pixel_scale(scale, *images):
    """``scale`` as a float (or None), checked against the image arrays."""
    if scale is None:
        return None
    try:
        value = float(scale)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"pixel_scale must be a finite number > 0, got {scale!r}")
    for x in images:
        if x.dtype.kind not in "iu":
            raise ValueError(
                f"pixel_scale needs integer pixel images, got dtype {x.dtype}; "
                "load them with normalize=False, or leave pixel_scale unset"
            )
    return value
