"""Regenerate the README's figures in ``docs/figures/`` from real data.

Usage::

    python docs/figures/make_figures.py --data-dir ../shared/data \\
        --bench-json runs/bench/pass-1.json

Data and weights come from ``--data-dir`` (default ``$XPNET_DATA_DIR``, which
must hold ``mnist/``) and ``--weights`` (default ``$XPNET_SAMPLE_WEIGHT``, else
``<data-dir>/book/sample_weight.pkl``). The timing chart needs pytest-benchmark
results of the ``gradients`` group (``python bench/run.py`` writes them); it is
skipped without ``--bench-json``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = (
    "ch03_digits",
    "ch03_misclassified",
    "ch04_tangent",
    "ch04_gradient_field",
    "ch04_gradient_descent",
    "gradient_times",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Regenerate docs/figures/*.png.")
    parser.add_argument(
        "--data-dir", type=Path, default=os.environ.get("XPNET_DATA_DIR")
    )
    parser.add_argument(
        "--weights", type=Path, default=os.environ.get("XPNET_SAMPLE_WEIGHT")
    )
    parser.add_argument("--bench-json", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=HERE)
    return parser


def make(args) -> list[Path]:
    import backend as B
    import nn
    from nn import figures

    out = args.out
    paths = {name: out / f"{name}.png" for name in NAMES}
    figures.tangent_lines(path=paths["ch04_tangent"])
    figures.gradient_field(path=paths["ch04_gradient_field"])
    figures.gradient_descent_paths(path=paths["ch04_gradient_descent"])
    x, t = nn.load_mnist_split("test", data_dir=args.data_dir, download=False)
    weights = args.weights or Path(args.data_dir) / "book" / "sample_weight.pkl"
    scores = B.to_numpy(nn.ThreeLayerNet.from_pickle(weights).predict(x))
    figures.digit_grid(
        x[:20],
        t[:20],
        predicted=scores[:20],
        title="the book's network on the first 20 test digits (predicted/true)",
        path=paths["ch03_digits"],
    )
    figures.misclassified_digits(
        x, t, scores, max_images=20, path=paths["ch03_misclassified"]
    )
    if args.bench_json is None:
        del paths["gradient_times"]
    else:
        figures.time_bars(
            args.bench_json,
            title="one gradient of 784-50-10 at batch 100, float64 (bench/)",
            path=paths["gradient_times"],
        )
    return list(paths.values())


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.data_dir is None:
        print("error: pass --data-dir or set $XPNET_DATA_DIR", file=sys.stderr)
        return 2
    try:
        for path in make(args):
            print(path)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
