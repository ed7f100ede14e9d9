"""Chapter 4's calculus figures: tangent lines, the gradient field, descent paths.

The book's figures 4-7 (numerical differentiation), 4-9 (minus the gradient
of x0² + x1² as arrows) and 4-10 (gradient descent, here at three learning
rates), computed with `nn.gradient` on host NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

import backend as B
from nn.figures.base import finish, new_figure
from nn.figures.plot import label_axes
from nn.gradient import gradient_descent, numerical_diff, numerical_gradient

__all__ = [
    "DESCENT_RATES",
    "function_1",
    "function_2",
    "gradient_descent_paths",
    "gradient_field",
    "tangent_lines",
]

#: Learning rates of the gradient descent figure: (lr, verdict), left to right.
DESCENT_RATES = ((0.01, "too small"), (0.1, "good"), (1.05, "too large"))


def function_1(x):
    """The book's f(x) = 0.01 x^2 + 0.1 x (figure 4-7)."""
    return 0.01 * x**2 + 0.1 * x


def function_2(x):
    """The book's f(x0, x1) = x0^2 + x1^2 (figures 4-8 to 4-10). x: (2, ...)."""
    return x[0] ** 2 + x[1] ** 2


def tangent_lines(
    f: Callable = function_1,
    at: Sequence[float] = (5.0, 10.0),
    x_range: tuple[float, float] = (0.0, 20.0),
    *,
    path=None,
):
    """``f`` with its tangent lines at ``at``, slopes from ``numerical_diff``.

    The book's figure 4-7 (f = `function_1`, tangent at x = 5; here at 5
    and 10, whose slopes the book prints as 0.1999... and 0.2999...).
    """
    x = np.arange(x_range[0], x_range[1], 0.1)
    fig = new_figure(6.4, 4.2)
    ax = fig.subplots()
    ax.plot(x, f(x), color="black", label="f(x)")
    for x0 in at:
        slope = numerical_diff(f, float(x0))
        y0 = f(float(x0))
        ax.plot(x, slope * (x - x0) + y0, linestyle="--", label=f"tangent at x={x0:g}")
        ax.plot([x0], [y0], "o", color="black", markersize=4)
        ax.annotate(
            f"slope {slope:.4f}", (x0, y0), (6, -14), textcoords="offset points"
        )
    label_axes(ax, "x", "f(x)", legend="upper left")
    ax.set_title("numerical differentiation: tangent lines")
    return finish(fig, path)


def _gradients_at(f: Callable, points: np.ndarray) -> np.ndarray:
    """``numerical_gradient`` of ``f`` at each row of points (M, D) -> (M, D)."""
    grads = np.empty_like(points)
    for i, p in enumerate(points):
        grads[i] = B.to_numpy(numerical_gradient(f, p.copy()))
    return grads


def gradient_field(
    f: Callable = function_2,
    lim: float = 2.0,
    step: float = 0.25,
    *,
    title: str = "-gradient of f(x0, x1) = x0² + x1²",
    path=None,
):
    """Arrows of minus the gradient of f(x0, x1): the book's figure 4-9 (quiver).

    The gradients come from ``numerical_gradient`` at each grid point of
    [-lim, lim]^2 with spacing ``step``.
    """
    axis = np.arange(-lim, lim + step / 2, step)
    X, Y = np.meshgrid(axis, axis)
    points = np.stack([X.ravel(), Y.ravel()], axis=1).astype(np.float64)
    grad = _gradients_at(f, points)
    fig = new_figure(5.6, 5.2)
    ax = fig.subplots()
    ax.quiver(
        points[:, 0], points[:, 1], -grad[:, 0], -grad[:, 1], angles="xy", color="#666"
    )
    ax.set_xlim(-lim - step, lim + step)
    ax.set_ylim(-lim - step, lim + step)
    ax.set_aspect("equal")
    label_axes(ax, "x0", "x1")
    ax.set_title(title)
    return finish(fig, path)


def gradient_descent_paths(
    f: Callable = function_2,
    init_x: Sequence[float] = (-3.0, 4.0),
    rates: Sequence[tuple[float, str]] = DESCENT_RATES,
    step_num: int = 20,
    *,
    title: str = "gradient descent on f(x0, x1) = x0² + x1²",
    path=None,
):
    """Paths of ``gradient_descent`` from ``init_x``, one panel per learning rate.

    rates: ``(lr, verdict)`` pairs such as ``(1.05, "too large")``. Each panel
    shows the contours of f (a function of a (2,) vector), the visited points
    and the final x: the book's figure 4-10 with its learning-rate failures.
    """
    fig = new_figure(4.6 * len(rates), 4.6)
    axes = fig.subplots(1, len(rates), squeeze=False)[0]
    start = np.asarray(init_x, dtype=np.float64)
    for ax, (lr, verdict) in zip(axes, rates, strict=True):
        x, history = gradient_descent(f, start.copy(), lr=lr, step_num=step_num)
        pts = np.vstack([B.to_numpy(history), B.to_numpy(x)[None]])
        reach = max(float(np.abs(pts).max()) * 1.15, 1.0)
        grid = np.linspace(-reach, reach, 61)
        X, Y = np.meshgrid(grid, grid)
        Z = np.apply_along_axis(f, 0, np.stack([X, Y]))
        ax.contour(X, Y, Z, levels=8, colors="#bbb", linewidths=0.7)
        ax.plot(pts[:, 0], pts[:, 1], "o-", markersize=3, linewidth=0.8)
        ax.plot([0], [0], "+", color="black")
        ax.set_aspect("equal")
        ax.set_xlabel("x0")
        ax.set_ylabel("x1")
        ax.set_title(
            f"lr = {lr:g} ({verdict})\n{step_num} steps -> "
            f"({pts[-1, 0]:.3g}, {pts[-1, 1]:.3g})",
            fontsize=10,
        )
    fig.suptitle(title)
    return finish(fig, path)
