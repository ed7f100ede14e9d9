"""Figures: the book's chapter 3 and 4 figures, the gradient timing chart,
and a training run's loss and accuracy plots (`nn.figures.plot`).

One namespace over three modules: `nn.figures.digits` (chapter 3's
digit grids), `nn.figures.calculus` (chapter 4's tangent, gradient field
and descent figures) and `nn.figures.timing` (seconds per gradient).

Each function returns a ``matplotlib.figure.Figure`` (shown inline in Jupyter
after ``%matplotlib inline``) and, given ``path``, also writes it as a PNG
atomically. Figures are built with ``Figure()``, never ``pyplot``, so they
render headlessly with Agg and touch no global state; matplotlib (the ``plot``
extra) is imported only when a figure is drawn. Arrays may come from any
backend: they are copied to the host first.
"""

from __future__ import annotations

from nn.figures.calculus import (
    DESCENT_RATES,
    function_1,
    function_2,
    gradient_descent_paths,
    gradient_field,
    tangent_lines,
)
from nn.figures.chapter6 import batchnorm_grid, loss_curves, overfit_curves
from nn.figures.digits import digit_grid, misclassified_digits
from nn.figures.timing import benchmark_times, time_bars

__all__ = [
    "DESCENT_RATES",
    "batchnorm_grid",
    "benchmark_times",
    "digit_grid",
    "function_1",
    "function_2",
    "gradient_descent_paths",
    "gradient_field",
    "loss_curves",
    "misclassified_digits",
    "overfit_curves",
    "tangent_lines",
    "time_bars",
]
