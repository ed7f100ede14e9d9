"""Shared plumbing of the chapter figures (:mod:`nn.figures`).

A headless ``Figure`` (matplotlib imported only when a figure is drawn), the
optional atomic PNG write, and host copies of arrays from any backend.
"""

from __future__ import annotations

import numpy as np

import backend as B
from nn.plot import save_figure


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


def to_host(a) -> np.ndarray:
    """Any backend's array (or a sequence) as a host NumPy array."""
    return np.asarray(B.to_numpy(a))
