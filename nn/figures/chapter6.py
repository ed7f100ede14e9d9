"""Chapter 6's figures: optimizers, initial weights, Batch Normalization,
overfitting with weight decay and Dropout.

Each function draws the dict that the matching experiment of
[`nn.figures.chapter6_runs`][nn.figures.chapter6_runs] returned, puts the
experiment's time and ``note`` (e.g. which dataset stood in for MNIST) on the
figure, and returns a ``Figure`` (written to ``path`` as a PNG when given).
"""

from __future__ import annotations

import numpy as np

from nn.figures.base import finish, new_figure
from nn.figures.chapter6_runs import smooth_curve

__all__ = [
    "batchnorm_grid",
    "loss_curves",
    "overfit_curves",
]


def _caption(fig, result: dict, note: str | None) -> None:
    parts = [note] if note else []
    if "seconds" in result:
        parts.append(f"experiment time {result['seconds']:.1f} s")
    if parts:
        # supxlabel, not fig.text: the constrained layout makes room for it.
        fig.supxlabel("; ".join(parts), fontsize=7, color="0.35")


def loss_curves(
    result: dict,
    *,
    title: str = "optimizers compared (784-100x4-10, batch 128)",
    ylim=(0, 1),
    note: str | None = None,
    path=None,
):
    """Figures 6-9 and 6-15: the smoothed training loss of each run against
    iterations. result: ``{"losses": {label: [floats]}, "seconds": s}``."""
    fig = new_figure(6.4, 4.4)
    ax = fig.add_subplot()
    markers = iter("osD^v*xp")
    for label, losses in result["losses"].items():
        y = np.asarray(losses, dtype=float)
        y = smooth_curve(y) if len(y) >= 11 else y
        x = np.arange(len(y))
        ax.plot(x, y, marker=next(markers), markevery=max(len(y) // 10, 1), label=label)
    ax.set(xlabel="iterations", ylabel="loss", title=title, ylim=ylim)
    ax.legend()
    _caption(fig, result, note)
    return finish(fig, path)


def batchnorm_grid(
    result: dict,
    *,
    title: str = "Batch Normalization (solid) and none (dashed), by initial "
    "weight scale",
    note: str | None = None,
    path=None,
):
    """Figure 6-19: one panel per initial weight scale, training accuracy per
    epoch with Batch Normalization (solid) and without (dashed). result: as
    ``batchnorm_scales`` returns it."""
    scales = result["scales"]
    cols = 4
    rows = -(-len(scales) // cols)
    fig = new_figure(9, 2.0 * rows + 0.6)
    fig.suptitle(title, fontsize=10)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(scales):
            ax.set_visible(False)
            continue
        bn, plain = result["batchnorm"][k], result["plain"][k]
        ax.plot(np.arange(len(bn)), bn, label="Batch Normalization")
        ax.plot(np.arange(len(plain)), plain, "--", label="none")
        ax.set_title(f"W: {scales[k]:.3g}", fontsize=8)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
        if k % cols == 0:
            ax.set_ylabel("accuracy", fontsize=8)
        if k >= len(scales) - cols:
            ax.set_xlabel("epochs", fontsize=8)
    axes.flat[0].legend(fontsize=7, loc="lower right")
    _caption(fig, result, note)
    return finish(fig, path)


def overfit_curves(
    results: dict,
    *,
    title: str = "300 training images: accuracy per epoch",
    note: str | None = None,
    path=None,
):
    """Figures 6-20, 6-21 and 6-23: train (solid) and test (dashed) accuracy
    per epoch, one panel per run. results: ``{panel title: result of
    overfit}``."""
    fig = new_figure(4.2 * len(results), 4.0)
    fig.suptitle(title, fontsize=10)
    axes = fig.subplots(1, len(results), sharey=True, squeeze=False)[0]
    for ax, (label, r) in zip(axes, results.items(), strict=True):
        epochs = np.arange(len(r["train_acc"]))
        ax.plot(epochs, r["train_acc"], marker="o", markevery=20, label="train")
        ax.plot(epochs, r["test_acc"], "--", marker="s", markevery=20, label="test")
        gap = r["train_acc"][-1] - r["test_acc"][-1]
        ax.set(xlabel="epochs", ylim=(0, 1), title=f"{label} (final gap {gap:.2f})")
        ax.legend(loc="lower right")
    axes[0].set_ylabel("accuracy")
    seconds = sum(r["seconds"] for r in results.values())
    _caption(fig, {"seconds": seconds}, note)
    return finish(fig, path)
