"""Timing charts: seconds per call of the gradient variants, from any source.

``time_bars`` draws ``{label: seconds}`` (or pytest-benchmark JSON, read by
``benchmark_times``) as log-scale bars with each row's speed-up over the
slowest, as chapter 5's notebook and the README compare gradient methods.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from nn.figures.base import finish, new_figure

__all__ = ["benchmark_times", "time_bars"]


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
    dict) read by `benchmark_times` with ``select`` (group, stat, size).
    Backprop rows are drawn in another colour; each bar is annotated with its
    time and its speed-up over the slowest row.
    """
    if not isinstance(times, Mapping) or "benchmarks" in times:
        times = benchmark_times(times, **select)
    if not times or min(times.values()) <= 0:
        raise ValueError("time_bars needs at least one positive time")
    items = sorted(times.items(), key=lambda kv: kv[1])
    slowest = items[-1][1]
    fig = new_figure(7.5, 0.5 * len(items) + 1.4)
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
    return finish(fig, path)
