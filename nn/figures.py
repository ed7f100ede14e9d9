"""The book's chapter 3 and 4 figures, and the gradient timing chart.

Each function returns a ``matplotlib.figure.Figure`` (shown inline in Jupyter
after ``%matplotlib inline``) and, given ``path``, also writes it as a PNG
atomically. Figures are built with ``Figure()``, never ``pyplot``, so they
render headlessly with Agg and touch no global state; matplotlib (the ``plot``
extra) is imported only when a figure is drawn. Arrays may come from any
backend: they are copied to the host first.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

import backend as B
from nn.gradient import gradient_descent, numerical_diff, numerical_gradient
from nn.plot import save_figure

__all__ = [
    "benchmark_times",
    "digit_grid",
    "function_1",
    "function_2",
    "gradient_descent_paths",
    "gradient_field",
    "misclassified_digits",
    "tangent_lines",
    "time_bars",
]

#: Learning rates of the gradient descent figure: (lr, verdict), left to right.
DESCENT_RATES = ((0.01, "too small"), (0.1, "good"), (1.05, "too large"))


def function_1(x):
    """The book's f(x) = 0.01 x^2 + 0.1 x (figure 4-7)."""
    return 0.01 * x**2 + 0.1 * x


def function_2(x):
    """The book's f(x0, x1) = x0^2 + x1^2 (figures 4-8 to 4-10). x: (2, ...)."""
    return x[0] ** 2 + x[1] ** 2


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            'figures need matplotlib: pip install "xpnet[plot]"'
        ) from None
    return Figure(figsize=(width, height), layout="constrained")


def _finish(fig, path):
    if path is not None:
        save_figure(fig, path)
    return fig


def _host(a) -> np.ndarray:
    return np.asarray(B.to_numpy(a))


def _as_images(images) -> np.ndarray:
    """(N, D), (N, H, W) or (N, 1, H, W) of any backend -> (N, H, W) host array."""
    x = _host(images)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"expected a non-empty batch of images, got shape {x.shape}")
    x = x.reshape(len(x), -1)
    side = math.isqrt(x.shape[1])
    if side * side != x.shape[1]:
        raise ValueError(
            f"images of {x.shape[1]} pixels are not square; pass (N, H, W) images"
        )
    return x.reshape(len(x), side, side)


def _as_labels(t, n: int, name: str) -> np.ndarray:
    """(N,) labels or (N, C) one-hot rows / scores -> (N,) int host array."""
    t = _host(t)
    if t.ndim == 2:
        t = t.argmax(axis=1)
    if t.shape != (n,):
        raise ValueError(f"{name} has shape {t.shape}, expected ({n},) for {n} images")
    return t.astype(np.int64)


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
    fig = _figure(1.1 * ncols, 1.25 * nrows + (0.4 if title else 0))
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
    return _finish(fig, path)


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

    images: (N, ...) as for :func:`digit_grid`; labels: (N,) or one-hot;
    predicted: (N,) labels or (N, C) scores/probabilities (arg-max is taken).
    """
    x = _as_images(images)
    t = _as_labels(labels, len(x), "labels")
    y = _as_labels(predicted, len(x), "predicted")
    wrong = np.flatnonzero(y != t)
    title = f"misclassified: {len(wrong)} of {len(x)} (predicted/true)"
    if len(wrong) == 0:
        fig = _figure(4, 1.5)
        fig.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        fig.suptitle(title)
        return _finish(fig, path)
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


def tangent_lines(
    f: Callable = function_1,
    at: Sequence[float] = (5.0, 10.0),
    x_range: tuple[float, float] = (0.0, 20.0),
    *,
    path=None,
):
    """``f`` with its tangent lines at ``at``, slopes from ``numerical_diff``.

    The book's figure 4-7 (f = :func:`function_1`, tangent at x = 5; here at 5
    and 10, whose slopes the book prints as 0.1999... and 0.2999...).
    """
    x = np.arange(x_range[0], x_range[1], 0.1)
    fig = _figure(6.4, 4.2)
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
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_title("numerical differentiation: tangent lines")
    return _finish(fig, path)


def _gradients_at(f: Callable, points: np.ndarray) -> np.ndarray:
    """``numerical_gradient`` of ``f`` at each row of points (M, D) -> (M, D)."""
    grads = np.empty_like(points)
    for i, p in enumerate(points):
        grads[i] = _host(numerical_gradient(f, p.copy()))
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
    fig = _figure(5.6, 5.2)
    ax = fig.subplots()
    ax.quiver(
        points[:, 0], points[:, 1], -grad[:, 0], -grad[:, 1], angles="xy", color="#666"
    )
    ax.set_xlim(-lim - step, lim + step)
    ax.set_ylim(-lim - step, lim + step)
    ax.set_aspect("equal")
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return _finish(fig, path)


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
    fig = _figure(4.6 * len(rates), 4.6)
    axes = fig.subplots(1, len(rates), squeeze=False)[0]
    start = np.asarray(init_x, dtype=np.float64)
    for ax, (lr, verdict) in zip(axes, rates, strict=True):
        x, history = gradient_descent(f, start.copy(), lr=lr, step_num=step_num)
        pts = np.vstack([_host(history), _host(x)[None]])
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
    return _finish(fig, path)


def benchmark_times(
    results, group: str = "gradients", stat: str = "median", size: str | None = None
) -> dict[str, float]:
    """Seconds per call of each benchmark in ``group`` of pytest-benchmark results.

    results: a path to ``--benchmark-json`` output or its loaded dict. Rows
    are labelled by ``extra_info["variant"]`` (else the test name). When the
    group was run at several sizes (``extra_info["size"]``), pass ``size``.
    """
    if isinstance(results, str | os.PathLike):
        results = json.loads(Path(results).read_text())
    rows = [b for b in results.get("benchmarks", []) if b.get("group") == group]
    sizes = sorted({str(b.get("extra_info", {}).get("size")) for b in rows})
    if size is None and len(sizes) > 1:
        raise ValueError(f"group {group!r} has several sizes {sizes}; pass size=")
    if size is not None:
        rows = [b for b in rows if str(b.get("extra_info", {}).get("size")) == size]
    if not rows:
        raise ValueError(f"no benchmark results in group {group!r} (size {size})")
    return {
        b.get("extra_info", {}).get("variant", b["name"]): float(b["stats"][stat])
        for b in rows
    }


def _format_seconds(s: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def time_bars(
    times: Mapping[str, float] | str | os.PathLike,
    *,
    title: str = "time per gradient (batch 100, 784-50-10)",
    path=None,
    **select,
):
    """Horizontal bars of seconds per call on a log axis, slowest first.

    times: ``{label: seconds}``, or pytest-benchmark results (a JSON path or
    dict) read by :func:`benchmark_times` with ``select`` (group, stat, size).
    Backprop rows are drawn in another colour; each bar is annotated with its
    time and its speed-up over the slowest row.
    """
    if not isinstance(times, Mapping) or "benchmarks" in times:
        times = benchmark_times(times, **select)
    if not times or min(times.values()) <= 0:
        raise ValueError("time_bars needs at least one positive time")
    items = sorted(times.items(), key=lambda kv: kv[1])
    slowest = items[-1][1]
    fig = _figure(7.5, 0.5 * len(items) + 1.4)
    ax = fig.subplots()
    labels = [k for k, _ in items]
    values = [v for _, v in items]
    colors = ["tab:orange" if "backprop" in k else "tab:blue" for k in labels]
    ax.barh(labels, values, color=colors)
    ax.set_xscale("log")
    ax.set_xlim(min(values) / 3, slowest * 40)
    for i, v in enumerate(values):
        note = _format_seconds(v)
        ratio = slowest / v
        if ratio >= 1.05:
            note += (
                f"  ({ratio:,.0f}x faster)"
                if ratio >= 10
                else f"  ({ratio:.2g}x faster)"
            )
        ax.text(v * 1.15, i, note, va="center", fontsize=9)
    ax.set_xlabel("seconds per call (log scale)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title)
    return _finish(fig, path)
