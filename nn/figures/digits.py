"""Chapter 3's digit figures: a grid of images with labels, and the mistakes.

``digit_grid`` is the book's ``img_show`` for many images at once;
``misclassified_digits`` shows the images a network gets wrong as
"predicted/true". Images of any backend and layout ((N, 784), (N, 28, 28),
(N, 1, 28, 28)) are copied to the host first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import backend as B
from nn.figures.base import finish, new_figure

__all__ = ["digit_grid", "misclassified_digits"]


def _as_images(images):
    """(N, D), (N, H, W) or (N, 1, H, W) of any backend -> (N, H, W) host array."""
    x = B.to_numpy(images)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"expected a non-empty batch of images, got shape {x.shape}")
    x = x.reshape(len(x), -1)
    side = math.isqrt(x.shape[1])
    if side * side != x.shape[1]:
        raise ValueError(
            f"images of {x.shape[1]} pixels are not square; pass (N, H, W) images"
        )
    return x.reshape(len(x), side, side)


def _as_labels(t, n: int, name: str):
    """(N,) labels or (N, C) one-hot rows / scores -> (N,) int host array."""
    t = B.to_numpy(t)
    if t.ndim == 2:
        t = t.argmax(axis=1)
    if t.shape != (n,):
        raise ValueError(f"{name} has shape {t.shape}, expected ({n},) for {n} images")
    return t.astype("int64")


def _name(label: int, class_names: Sequence[str] | None) -> str:
    return str(label) if class_names is None else str(class_names[label])


def digit_grid(
    images,
    labels=None,
    *,
    predicted=None,
    class_names: Sequence[str] | None = None,
    ncols: int = 10,
    title: str | None = None,
    path=None,
):
    """Many images at once with their labels: chapter 3's ``img_show`` as a grid.

    images: (N, 784), (N, 28, 28) or (N, 1, 28, 28), any dtype and backend.
    labels, predicted: optional (N,) labels or (N, C) one-hot/scores. With
    ``predicted``, each title reads "predicted/true" and wrong ones are red.
    ``class_names`` maps labels to names (e.g. Fashion-MNIST's classes).
    """
    x = _as_images(images)
    n = len(x)
    t = None if labels is None else _as_labels(labels, n, "labels")
    y = None if predicted is None else _as_labels(predicted, n, "predicted")
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    fig = new_figure(1.1 * ncols, 1.25 * nrows + (0.4 if title else 0))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(x[i], cmap="gray_r", interpolation="nearest")
        if y is not None:
            text = _name(y[i], class_names)
            if t is not None:
                text += "/" + _name(t[i], class_names)
            wrong = t is not None and y[i] != t[i]
            ax.set_title(text, fontsize=9, color="tab:red" if wrong else "black")
        elif t is not None:
            ax.set_title(_name(t[i], class_names), fontsize=9)
    if title:
        fig.suptitle(title)
    return finish(fig, path)


def misclassified_digits(
    images,
    labels,
    predicted,
    *,
    max_images: int = 20,
    class_names: Sequence[str] | None = None,
    ncols: int = 10,
    path=None,
):
    """The first ``max_images`` images whose prediction is wrong, "predicted/true".

    images: (N, ...) as for `digit_grid`; labels: (N,) or one-hot;
    predicted: (N,) labels or (N, C) scores/probabilities (arg-max is taken).
    """
    x = _as_images(images)
    t = _as_labels(labels, len(x), "labels")
    y = _as_labels(predicted, len(x), "predicted")
    wrong = (y != t).nonzero()[0]
    title = f"misclassified: {len(wrong)} of {len(x)} (predicted/true)"
    if len(wrong) == 0:
        fig = new_figure(4, 1.5)
        fig.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        fig.suptitle(title)
        return finish(fig, path)
    shown = wrong[: max(1, int(max_images))]
    return digit_grid(
        x[shown],
        t[shown],
        predicted=y[shown],
        class_names=class_names,
        ncols=ncols,
        title=title,
        path=path,
    )
