"""Shared plumbing of the chapter figures (`nn.figures`).

A headless ``Figure`` (matplotlib imported only when a figure is drawn) and
the optional atomic PNG write. Arrays of any backend come to the host through
``backend.to_numpy``.
"""

from __future__ import annotations

from nn.figures.plot import save_figure


def new_figure(width: float, height: float):
    """A constrained-layout ``Figure`` of ``width`` x ``height`` inches, no axes."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            'figures need matplotlib: pip install "xpnet[plot]"'
        ) from None
    return Figure(figsize=(width, height), layout="constrained")


def finish(fig, path):
    """Write ``fig`` to ``path`` (PNG, atomically) unless path is None. -> fig."""
    if path is not None:
        save_figure(fig, path)
    return fig
