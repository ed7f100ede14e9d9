#!/usr/bin/env python
"""Chapter 4's exercise: the loss with batch size 10 versus 100, in one plot.

Both runs start from the same weights (same seed) and take the same number of
SGD steps (1000 by default), so the plot shows what batch size alone does to
the loss curve: batch 10 is far noisier and ends higher.

    python examples/batch_size_comparison.py --dataset fashion-mnist \\
        --data-dir ../shared/data/fashion-mnist --out docs/batch_size_comparison.png
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import backend as B
from nn.figures import plot
from nn.training import TrainConfig, Trainer, load_data
from nn.training.progress import SilentReporter


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto", help="as train.py (default: auto)")
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist"))
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[10, 100])
    p.add_argument("--iters", type=int, default=1000, help="steps per run (1000)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", type=Path, default=Path("runs/batch_size_comparison.png"),
        help="PNG to write (default: runs/batch_size_comparison.png)",
    )  # fmt: skip
    args = p.parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            be = B.use(args.device)
        notes = "; ".join(str(w.message) for w in caught)
        train, test = load_data(args.dataset, args.data_dir)
        curves = {}
        print(f"backend: {be.describe()}" + (f"  [{notes}]" if notes else ""))
        for batch_size in args.batch_sizes:
            config = TrainConfig(
                iters=args.iters, batch_size=batch_size, lr=args.lr,
                seed=args.seed, eval_every=args.iters,
            )  # fmt: skip
            start = time.perf_counter()
            result = Trainer(train, test, config, reporter=SilentReporter()).fit()
            tail = result.history.loss[-100:]
            print(
                f"batch {batch_size:>4}: mean loss of the last {len(tail)} steps "
                f"{sum(tail) / len(tail):.4f}, test acc {result.test_acc:.4f}, "
                f"{time.perf_counter() - start:.1f} s"
            )
            label = f"batch {batch_size} (test acc {result.test_acc:.3f})"
            curves[label] = (
                range(1, len(result.history.loss) + 1),
                result.history.loss,
            )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        plot.plot_batch_size_comparison(
            curves,
            title=f"{args.dataset}: {args.iters} steps at lr {args.lr}",
            path=args.out,
        )
    except (B.BackendUnavailableError, ValueError, OSError, RuntimeError) as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
