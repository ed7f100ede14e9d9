"""The scaling plot of the benchmark report: time against batch or hidden size.

A group is plotted when its rows vary along a sweep axis: the axis named by
``extra_info["sweep_axis"]``, or else any integer pytest parameter that takes
at least two values (as in the numerical-gradient sweep). One line per
variant (and kernel op); the other sizes are held at their most common value.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path


def _axes_of_group(rows: list[dict]) -> tuple[list[str], bool]:
    """The swept axes, and whether they were found among pytest's parameters."""
    named = {r["info"].get("sweep_axis") for r in rows} - {None}
    if named:
        return sorted(named), False
    numeric = defaultdict(set)
    for r in rows:
        for k, v in r["params"].items():
            if isinstance(v, int) and not isinstance(v, bool):
                numeric[k].add(v)
    return sorted(k for k, vals in numeric.items() if len(vals) >= 2), True


#: Values a grid sweep holds the other axis at, when present: the book's.
BOOK_VALUES = {"batch": 100, "batch_size": 100, "hidden": 50, "hidden_size": 50}


def _held_value(rows: list[dict], key: str):
    values = Counter(r["params"].get(key) for r in rows)
    if BOOK_VALUES.get(key) in values:
        return BOOK_VALUES[key]
    return values.most_common(1)[0][0]


def _value(row: dict, axis: str):
    return row["info"].get(axis, row["params"].get(axis))


def sweep_series(summary: dict) -> dict:
    """{(group, axis): {series label: [(x, median seconds), ...]}}."""
    by_group = defaultdict(list)
    for row in summary.values():
        group, variant, _size = row["key"]
        by_group[group].append(dict(row, variant=variant))
    out = {}
    for group, rows in by_group.items():
        axes, from_params = _axes_of_group(rows)
        for axis in axes:
            # Parameter sweeps over a grid: hold the other sizes at their mode.
            others = {
                k
                for r in rows
                for k, v in r["params"].items()
                if from_params
                and k != axis
                and isinstance(v, int)
                and not isinstance(v, bool)
            }
            mode = {k: _held_value(rows, k) for k in others}
            series = defaultdict(list)
            for r in rows:
                x = _value(r, axis)
                if x is None or any(r["params"].get(k) != v for k, v in mode.items()):
                    continue
                op = r["info"].get("op")
                # Estimated and measured points of one variant form one line.
                variant = r["variant"].removesuffix("-estimate")
                label = f"{variant} {op}" if op else variant
                series[label].append((x, r["median"]))
            series = {k: sorted(v) for k, v in series.items() if len(v) >= 2}
            if series:
                out[(group, axis)] = series
    return out


def plot_sweeps(summary: dict, path: Path) -> bool:
    """Write a log-log PNG with one panel per swept group; False if none."""
    panels = sweep_series(summary)
    if not panels:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    cols = min(n, 2)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(
        rows, cols, figsize=(6.5 * cols, 4.5 * rows), squeeze=False
    )
    for ax, ((group, axis), series) in zip(
        axes.flat, sorted(panels.items()), strict=False
    ):
        for label, points in sorted(series.items()):
            xs, ys = zip(*points, strict=True)
            ax.loglog(xs, ys, marker="o", label=label)
        ax.set_title(group)
        ax.set_xlabel(axis)
        ax.set_ylabel("median time (s)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    finally:
        plt.close(fig)
    return True
