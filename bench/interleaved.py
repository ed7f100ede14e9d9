"""The headline comparison, interleaved: every SGD-step variant, round-robin.

pytest-benchmark times one test after another, so two variants compared in a
ratio are measured seconds to minutes apart, and these shared machines drift
by up to 30% over minutes. Here every round times a short block of steps of
each variant, in a fresh random order, so all variants see the same machine;
the median over rounds is robust to the bursts of other processes.

Switching libraries has a trap: after its last call, a library's worker
threads keep spinning for a while (OpenBLAS's pthreads, PyTorch's OpenMP
pool), and on 2 cores they slow the next variant several-fold, which a user
running one library never sees. So each block starts with a short sleep
(``--settle``, untimed) in which those threads park, and a few untimed steps
that wake the variant's own threads, as in a running training loop.

    python bench/interleaved.py --out runs/bench/interleaved-1.json

The output has pytest-benchmark's JSON layout (group ``train-step-interleaved``)
so ``report.py`` reads it next to the suite's results.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import benchkit
import numpy as np
import pytest
from contenders import VARIANTS, Contender
from sample_stats import sample_stats

import backend as B

GROUP = "train-step-interleaved"


def measure(s, data, rounds: int, block: int, settle: float, settle_steps: int = 5):
    """Per variant: per-step times (s), one sample per round; and skip reasons."""
    contenders, skipped = {}, {}
    for vid, variant in VARIANTS.items():
        try:
            contenders[vid] = Contender(variant, s)
        except pytest.skip.Exception as exc:
            skipped[vid] = str(exc)
    pools = {
        vid: itertools.cycle(
            [c.arrays(x, t) for x, t in benchkit.batches(data, s.batch_size)]
        )
        for vid, c in contenders.items()
    }
    previous = B.current()
    samples = {vid: [] for vid in contenders}
    rng = np.random.default_rng(0)
    try:
        for vid, c in contenders.items():  # warm-up: JIT, page faults, caches
            c.activate()
            for _ in range(30):
                c.step(*next(pools[vid]))
            c.sync()
        order = list(contenders)
        for _ in range(rounds):
            for i in rng.permutation(len(order)):
                vid = order[i]
                c, pool = contenders[vid], pools[vid]
                c.activate()
                batches = [next(pool) for _ in range(block)]
                time.sleep(settle)
                for _ in range(settle_steps):
                    c.step(*next(pool))
                c.sync()
                t0 = time.perf_counter()
                for x, t in batches:
                    c.step(x, t)
                c.sync()
                samples[vid].append((time.perf_counter() - t0) / block)
    finally:
        B.use(previous)
    return contenders, samples, skipped


def results(s, data, contenders, samples) -> list[dict]:
    """pytest-benchmark-like entries, with the suite's extra_info fields."""
    entries = []
    for vid, c in contenders.items():
        bench = SimpleNamespace(group=None, extra_info={})
        benchkit.record(
            bench, GROUP, vid, s, torch_module=c.torch, data=data.source, **c.info()
        )
        entries.append(
            {
                "group": bench.group,
                "name": f"step_interleaved[{vid}]",
                "fullname": f"bench/interleaved.py::step_interleaved[{vid}]",
                "params": {"variant": vid},
                "param": vid,
                "extra_info": bench.extra_info,
                "stats": sample_stats(samples[vid]),
            }
        )
    return entries


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--rounds", type=int, default=20, help="default 20")
    parser.add_argument(
        "--block", type=int, default=20, help="steps timed per sample (default 20)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.2,
        help="untimed sleep before each block, seconds (default 0.2)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 3 rounds")
    parser.add_argument(
        "--data-dir", help=f"Fashion-MNIST folder (${benchkit.DATA_ENV})"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.block < 1 or args.settle < 0:
        parser.error("--rounds and --block must be at least 1, --settle at least 0")
    s = benchkit.SMOKE if args.smoke or benchkit.smoke_requested() else benchkit.FULL
    rounds = 3 if s.smoke else args.rounds
    data_dir = Path(args.data_dir) if args.data_dir else benchkit.data_dir()
    data = benchkit.load_data(data_dir, s)
    settle = 0.0 if s.smoke else args.settle
    contenders, samples, skipped = measure(s, data, rounds, args.block, settle)
    entries = results(s, data, contenders, samples)
    for e in entries:
        e["extra_info"].update(block=args.block, settle_seconds=settle)
    for vid, why in skipped.items():
        print(f"skipped {vid}: {why}", file=sys.stderr)
    for e in sorted(entries, key=lambda e: e["stats"]["median"]):
        print(f"{e['param']:>10}: {e['stats']['median'] * 1e6:8.1f} us (median)")
    doc = {"benchmarks": entries, "skipped": skipped, "machine_info": {}}
    from report import write_atomic

    write_atomic(args.out, json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
