"""Regenerate chapter 6's figures in ``docs/figures/`` (``ch06_*.png``).

Usage::

    python docs/figures/make_chapter6_figures.py --data-dir ../shared/data

Runs the book's chapter 6 experiments (``nn.figures.chapter6_runs``) at the
book's sizes on Fashion-MNIST (MNIST's training images are not on the
machines that build these figures; each figure says so) and writes each
figure and ``ch06_times.json``, the seconds each experiment took and where.
``--backend`` defaults to Numba when it is installed (the fastest CPU
backend for these small networks), else NumPy; ``--quick`` shrinks every
experiment to a few seconds, for checking the script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOTE = "Fashion-MNIST (MNIST's training images are absent here)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Regenerate docs/figures/ch06_*.png.")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("XPNET_DATA_DIR"),
        help="folder holding fashion-mnist/ (default $XPNET_DATA_DIR)",
    )
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--backend", default=None, help="numpy, numba or cupy")
    parser.add_argument("--quick", action="store_true", help="tiny runs (seconds)")
    parser.add_argument("--out", type=Path, default=HERE)
    return parser


def pick_backend(name):
    import backend as B

    if name:
        return B.get_backend(name)
    try:
        return B.get_backend("numba")
    except B.BackendUnavailableError:
        return B.get_backend("numpy")


def make(args) -> dict:
    """Run every experiment, write its figure; -> {figure name: seconds}."""
    import backend as B
    from nn.figures import chapter6 as fig6
    from nn.figures import chapter6_runs as runs
    from nn.training import load_data

    be = B.use(pick_backend(args.backend))
    train, test = load_data(args.dataset, data_dir=args.data_dir, download=False)
    note = NOTE if args.dataset == "fashion-mnist" else args.dataset
    note = f"{note}; xpnet {be.name} backend, float32"
    q = args.quick
    iters = 60 if q else 2000
    epochs = (4, 6) if q else (20, 201)
    out, times = args.out, {}
    out.mkdir(parents=True, exist_ok=True)

    r = runs.compare_optimizers(*train, iters=iters, backend=be)
    fig6.loss_curves(r, note=note, path=out / "ch06_optimizers.png")
    times["ch06_optimizers"] = r["seconds"]

    r = runs.compare_weight_inits(*train, iters=iters, backend=be)
    fig6.loss_curves(
        r,
        title="initial weights compared (784-100x4-10 ReLU, SGD)",
        ylim=(0, 2.5),
        note=note,
        path=out / "ch06_weight_init.png",
    )
    times["ch06_weight_init"] = r["seconds"]

    scales = [1.0, 0.1, 0.01, 0.001] if q else None
    r = runs.batchnorm_scales(*train, scales=scales, epochs=epochs[0], backend=be)
    fig6.batchnorm_grid(r, note=note, path=out / "ch06_batchnorm.png")
    times["ch06_batchnorm"] = r["seconds"]

    e = epochs[1]
    plain = runs.overfit(train, test, epochs=e, backend=be)
    decay = runs.overfit(train, test, epochs=e, weight_decay_lambda=0.1, backend=be)
    fig6.overfit_curves(
        {"no regularisation": plain, "weight decay 0.1": decay},
        note=note,
        path=out / "ch06_weight_decay.png",
    )
    times["ch06_weight_decay"] = plain["seconds"] + decay["seconds"]

    e = 6 if q else 301
    dropout = runs.overfit(train, test, epochs=e, dropout_ratio=0.2, backend=be)
    plain = runs.overfit(train, test, epochs=e, backend=be)
    fig6.overfit_curves(
        {"no Dropout": plain, "Dropout 0.2": dropout},
        note=note,
        path=out / "ch06_dropout.png",
    )
    times["ch06_dropout"] = plain["seconds"] + dropout["seconds"]
    return times


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.data_dir is None:
        print("error: pass --data-dir or set $XPNET_DATA_DIR", file=sys.stderr)
        return 2
    try:
        start = time.perf_counter()
        times = make(args)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, seconds in times.items():
        print(f"{args.out / name}.png  {seconds:6.1f} s")
    record = {
        "seconds": {k: round(v, 2) for k, v in times.items()},
        "total_seconds": round(time.perf_counter() - start, 1),
        "backend": args.backend or "default (numba if installed)",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "quick": args.quick,
        "threads": {
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
            if k in os.environ
        },
        "load_average_1min": round(os.getloadavg()[0], 1),
    }
    if not args.quick:
        (args.out / "ch06_times.json").write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
