#!/usr/bin/env python
"""Plot the loss and test-accuracy curves of finished train.py runs side by side.

    python examples/compare_runs.py runs/numgrad runs/backprop \\
        --labels "numerical gradient" backprop --out docs/numerical_vs_backprop.png

Each RUN is a train.py output folder (its metrics.csv is read).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from nn.figures import plot
from nn.training.metrics import METRICS_NAME, read_metrics


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN")
    p.add_argument("--labels", nargs="+", help="one label per run (default: names)")
    p.add_argument("--title", default=None)
    p.add_argument("--window", type=int, default=50, help="loss moving average")
    p.add_argument("--out", type=Path, default=Path("runs/compare_runs.png"))
    args = p.parse_args(argv)
    labels = args.labels or [run.name for run in args.runs]
    if len(labels) != len(args.runs):
        p.error(f"{len(args.runs)} runs but {len(labels)} labels")
    runs = {}
    for label, run in zip(labels, args.runs, strict=True):
        path = run / METRICS_NAME
        if not path.is_file():
            p.error(f"{path} not found: RUN must be a train.py output folder")
        runs[label] = asdict(read_metrics(path))
    try:
        plot.plot_run_comparison(
            runs, window=args.window, title=args.title, path=args.out
        )
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
