#!/usr/bin/env python
"""Plot the numerical-gradient scaling sweep (``bench/test_bench_numgrad.py``).

    pytest bench/test_bench_numgrad.py --benchmark-json=numgrad.json
    python bench/plot_numgrad_scaling.py numgrad.json -o numgrad_scaling.png

One panel per batch size: seconds per gradient call (log scale) against the
hidden size, one line per backend and method (dashed: the sigmoid network's
fast path; the rest is the ReLU network). Loop points drawn hollow are
estimates (two timed forward passes x number of parameters), not full calls.
Exit codes: 0 written, 2 bad arguments or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

GROUP = "numgrad-scaling"
STYLES = {"loop": "s-", "fast": "o-", "backprop": "^-"}


def read_points(path: Path) -> dict:
    """``{batch: {(backend, method, activation): [(hidden, seconds, estimated),
    ...]}}`` (activation "relu" where a file predates the sigmoid rows)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    points: dict = defaultdict(lambda: defaultdict(list))
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if bench.get("group") != GROUP or "method" not in info:
            continue
        estimated = info.get("variant_kind") == "loop-estimate"
        if estimated:
            seconds = info.get("estimated_seconds")
            if seconds is None:
                continue
        else:
            seconds = bench["stats"]["median"]
        key = (info["backend"], info["method"], info.get("activation", "relu"))
        points[info["batch_size"]][key].append(
            (info["hidden_size"], seconds, estimated)
        )
    if not points:
        raise ValueError(f"{path} holds no '{GROUP}' results with timings")
    return points


def plot(points: dict, out: Path) -> None:
    """Draw one panel per batch size and write ``out`` atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = sorted(points)
    fig, axes = plt.subplots(
        1, len(batches), figsize=(4.2 * len(batches), 3.8), sharey=True, squeeze=False
    )
    for ax, batch in zip(axes[0], batches, strict=True):
        for (backend, method, activation), rows in sorted(points[batch].items()):
            rows.sort()
            hidden = [r[0] for r in rows]
            seconds = [r[1] for r in rows]
            style = STYLES.get(method, ".-")
            label = f"{backend} {method}"
            if activation != "relu":
                style, label = style.replace("-", "--"), f"{label} ({activation})"
            (line,) = ax.plot(hidden, seconds, style, label=label)
            hollow = [(h, s) for h, s, est in rows if est]
            if hollow:
                ax.plot(
                    *zip(*hollow, strict=True), "s", mfc="white", color=line.get_color()
                )
        ax.set_xscale("log", base=2)
        sizes = sorted({r[0] for rows in points[batch].values() for r in rows})
        ax.set_xticks(sizes, [str(h) for h in sizes])
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_title(f"batch {batch}")
        ax.set_xlabel("hidden size")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("seconds per gradient (median)")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle("TwoLayerNet gradient cost (hollow: loop estimated)", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=out.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "json", type=Path, help="pytest-benchmark --benchmark-json file"
    )
    parser.add_argument(
        "-o", "--out", type=Path, default=Path("numgrad_scaling.png"), help="PNG path"
    )
    args = parser.parse_args(argv)
    try:
        points = read_points(args.json)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    plot(points, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
