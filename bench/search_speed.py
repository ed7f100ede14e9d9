"""Speed of xpnet-search against the book's sequential loop, on one machine.

    python bench/search_speed.py --data-dir ../shared/data/fashion-mnist

One search of 20 trials with the book's section 6.5 settings (500 images,
20% validation, 784-100x6-10 ReLU, SGD, batch 100) at 10 epochs each, run by
``xpnet-search`` on 1 worker (all cores' threads), 1 worker of 1 thread, and 2
workers (fresh studies; each worker samples
its own values, and a trial's cost does not depend on them), then the book's
NumPy loop (bench/book_search.py) on the 1-worker run's 20 values and the
same split. Times are wall clock for the
whole command, start-up included, and the sum of the trials' own seconds.
Prints a Markdown table and writes it with the raw numbers to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def run_search(workers: int, args, folder: Path, threads: int | None = None) -> dict:
    out = folder / f"workers-{workers}-threads-{threads}"
    cmd = [sys.executable, "-m", "nn.search", "--trials", str(args.trials)]
    cmd += ["--epochs", str(args.epochs), "--dataset", args.dataset, "--quiet"]
    cmd += ["--device", args.device, "--workers", str(workers), "--out", str(out)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    if threads:  # Numba's and BLAS's pools, sized when they load
        env.update(NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        env.update(OPENBLAS_NUM_THREADS=str(threads))
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    rows = [r for r in csv.DictReader(open(out / "trials.csv")) if r["lr"]]
    return {
        "wall": wall,
        "trial_seconds": sum(float(r["seconds"]) for r in rows),
        "values": [(float(r["lr"]), float(r["weight_decay"])) for r in rows],
    }


def run_book(values, args) -> dict:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from bench.book_search import train_trial
    from nn.search.objective import split_data
    from nn.search.settings import SearchSettings
    from nn.search.space import DEFAULT_SPACE

    settings = SearchSettings(
        space=DEFAULT_SPACE, storage="", dataset=args.dataset, data_dir=args.data_dir
    )
    start = time.perf_counter()
    (x_train, t_train), (x_val, t_val) = split_data(settings)
    np.random.seed(0)
    for lr, wd in values:
        train_trial(x_train, t_train, x_val, t_val, lr, wd, epochs=args.epochs)
    return {"wall": time.perf_counter() - start}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-dir")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path("runs/search-speed"))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        one = run_search(1, args, Path(tmp))
        single = run_search(1, args, Path(tmp), threads=1)
        two = run_search(2, args, Path(tmp))
    book = run_book(one["values"], args)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    table = [
        f"{args.trials} trials x {args.epochs} epochs, book's 6.5 settings, "
        f"{args.dataset}, --device {args.device}; {when}, {machine}",
        "",
        "| run | wall s | trials' own s | vs book loop |",
        "|---|---:|---:|---:|",
        f"| book's NumPy loop (sequential) | {book['wall']:.1f} | | 1.00x |",
    ]
    runs = (
        (f"xpnet-search, 1 worker ({os.cpu_count()} threads)", one),
        ("xpnet-search, 1 worker (1 thread)", single),
        ("xpnet-search, 2 workers (1 thread each)", two),
    )
    for name, r in runs:
        table.append(
            f"| {name} | {r['wall']:.1f} | {r['trial_seconds']:.1f} | "
            f"{book['wall'] / r['wall']:.2f}x |"
        )
    table.append(
        f"\nspeed-up of 2 workers over 1 worker: {one['wall'] / two['wall']:.2f}x "
        f"(over 1 worker of 1 thread: {single['wall'] / two['wall']:.2f}x)"
    )
    text = "\n".join(table)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "search_speed.md").write_text(text + "\n")
    raw = {"one": one, "single": single, "two": two, "book": book}
    raw.update(when=when, machine=machine, load=os.getloadavg())
    (args.out / "search_speed.json").write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
