"""Figures of the book, drawn headlessly with matplotlib (the ``plot`` extra).

Every function returns a ``matplotlib.figure.Figure`` (shown inline in
Jupyter) and, given ``path``, also writes it as a PNG atomically. Figures are
made with ``Figure()`` rather than ``pyplot``, so nothing needs a display and
no global state is touched; matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from nn.data.fileio import atomic_write

#: Iterations shown in the zoomed right panel of figure 4-11.
LOSS_ZOOM = 1000


def available() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def new_figure(ncols: int = 1, width: float = 6.4, height: float = 4.2):
    """A headless ``Figure`` with ``ncols`` axes side by side. -> (fig, axes list)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('plots need matplotlib: pip install "xpnet[plot]"') from None
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def label_axes(ax, xlabel: str, ylabel: str, legend: str | None = None) -> None:
    """Axis labels, a faint grid and, given a location, the legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend is not None:
        ax.legend(loc=legend)
    ax.grid(alpha=0.3)


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, PNG by default) atomically."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format=fmt, dpi=dpi)
    return path


def plot_loss(
    iterations: Sequence,
    losses: Sequence,
    *,
    title: str | None = None,
    zoom: int = LOSS_ZOOM,
    path=None,
):
    """Loss per iteration, the book's figure 4-11.

    iterations, losses: (N,) sequences. When N exceeds ``zoom``, a second
    panel shows the first ``zoom`` iterations, as the book's right panel does.
    """
    iterations, losses = list(iterations), list(losses)
    zoomed = len(iterations) > zoom
    fig, axes = new_figure(2 if zoomed else 1)
    panels = [(axes[0], len(iterations))] + ([(axes[1], zoom)] if zoomed else [])
    for ax, n in panels:
        ax.plot(iterations[:n], losses[:n], linewidth=0.6)
        label_axes(ax, "iteration", "loss")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
    if zoomed:
        axes[1].set_title(f"first {zoom} iterations")
    fig.suptitle(title or "training loss")
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_accuracy(
    epochs: Sequence,
    train_acc: Sequence,
    test_acc: Sequence,
    *,
    title: str | None = None,
    path=None,
):
    """Train and test accuracy per epoch, the book's figure 4-12.

    epochs, train_acc, test_acc: (E,) sequences; accuracies in [0, 1].
    """
    fig, (ax,) = new_figure()
    ax.plot(list(epochs), list(train_acc), marker="o", markersize=4, label="train acc")
    ax.plot(list(epochs), list(test_acc), linestyle="--", label="test acc")
    ax.set_ylim(0, 1.0)
    label_axes(ax, "epochs", "accuracy", legend="lower right")
    ax.set_title(title or "accuracy")
    if path is not None:
        save_figure(fig, path)
    return fig


def _smoothed_losses(ax, curves: Mapping, window: int) -> None:
    """Each raw loss curve drawn faintly, its ``window``-step mean on top."""
    for label, (iterations, losses) in curves.items():
        iterations, losses = list(iterations), list(losses)
        (line,) = ax.plot(iterations, losses, linewidth=0.5, alpha=0.3)
        smooth = _moving_average(losses, window)
        ax.plot(
            iterations[len(iterations) - len(smooth) :],
            smooth,
            color=line.get_color(),
            label=label,
        )
    ax.set_ylim(bottom=0)
    label_axes(
        ax,
        "iteration",
        f"loss (faint: each step, bold: {window}-step mean)",
        legend="upper right",
    )


def plot_batch_size_comparison(
    curves: Mapping[str, tuple[Sequence, Sequence]],
    *,
    window: int = 50,
    title: str | None = None,
    path=None,
):
    """Loss curves of runs that differ in batch size, on one axes.

    curves: ``{label: (iterations, losses)}``. Each raw curve is drawn faintly
    with its ``window``-step moving average on top, since small batches give
    very noisy losses.
    """
    fig, (ax,) = new_figure()
    _smoothed_losses(ax, curves, window)
    ax.set_title(title or "loss by batch size")
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_run_comparison(
    runs: Mapping[str, Mapping[str, Sequence]],
    *,
    window: int = 50,
    title: str | None = None,
    path=None,
):
    """Loss curves (left) and test accuracy per evaluation (right) of several runs.

    runs: ``{label: {"iteration", "loss", "eval_iteration", "test_acc": (N,)
    or (E,) sequences}}``, e.g. the columns of `nn.training.metrics.read_metrics`.
    """
    fig, (ax_loss, ax_acc) = new_figure(2)
    curves = {k: (r["iteration"], r["loss"]) for k, r in runs.items()}
    _smoothed_losses(ax_loss, curves, window)
    for label, r in runs.items():
        ax_acc.plot(list(r["eval_iteration"]), list(r["test_acc"]), marker="o",
                    markersize=3, label=label)  # fmt: skip
    label_axes(ax_acc, "iteration", "test accuracy", legend="lower right")
    fig.suptitle(title or "runs compared")
    if path is not None:
        save_figure(fig, path)
    return fig


def _moving_average(values: list, window: int) -> list:
    window = max(1, min(window, len(values)))
    total = sum(values[:window])
    out = [total / window]
    for i in range(window, len(values)):
        total += values[i] - values[i - window]
        out.append(total / window)
    return out if values else []
