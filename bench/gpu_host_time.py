"""Host time of chapter 5's training step on the GPU path: eager against CUDA graphs.

Without a GPU (the default here) it runs on the CuPy stand-in in dry mode
(``cupy_standin.dry_run``: launches counted and their arguments checked, their
work skipped), and times what the host does per step. The time spent inside
the stand-in's own launch entry points (kernel calls, cuBLAS calls, graph
launches), which stand for CuPy's and CUDA's, is measured apart and left out:
what remains is xpnet's Python (plus the stand-in's array views and
indexing, which cost about what CuPy's do). ::

    python bench/gpu_host_time.py            # 784-50-10, batch 100, float32
    python bench/gpu_host_time.py --json host_time.json

The estimate it prints for a GPU adds published launch costs to the measured
Python: a kernel or cuBLAS call from CuPy ``LAUNCH_US`` (low, high) each, a
graph launch ``GRAPH_LAUNCH_US`` per chunk. It is an estimate, not a
measurement: the device time of the kernels is not in it, and a GPU step
costs at least the larger of host and device time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: Host cost of one kernel launch or cuBLAS call made from Python through
#: CuPy, microseconds (cudaLaunchKernel alone is about 2-4 us; CuPy's argument
#: packing and the binding add the rest).
LAUNCH_US = (4.0, 8.0)
#: Host cost of one cudaGraphLaunch of a straight-line graph, microseconds.
GRAPH_LAUNCH_US = (3.0, 10.0)


def _standin():
    for path in (str(ROOT), str(ROOT / "tests")):
        if path not in sys.path:
            sys.path.insert(0, path)
    import cupy_standin
    from cupy_standin import cublas_binding
    from cupy_standin.install import standin_backend

    return cupy_standin, cublas_binding, standin_backend()


class _Clock:
    """Time spent inside wrapped functions (the stand-in's launch points)."""

    def __init__(self):
        self.seconds = 0.0

    def wrap(self, owner, name):
        fn = getattr(owner, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        setattr(owner, name, timed)


def _trainer(be, train_size: int, seed: int = 0):
    from nn.training.config import TrainConfig
    from nn.training.progress import SilentReporter
    from nn.training.trainer import Trainer

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (train_size, 784), dtype=np.uint8)
    labels = rng.integers(0, 10, train_size)
    config = TrainConfig(iters=10**6, batch_size=100, hidden_size=50, lr=0.1,
                         dtype="float32", seed=seed)  # fmt: skip
    return Trainer((images, labels), (images[:100], labels[:100]), config,
                   backend=be, reporter=SilentReporter(), pixel_scale=255)  # fmt: skip


def measure(train_size: int = 60000, epochs: int = 2) -> dict:
    """Per-step host time (us) and launches, eager and replayed, on the stand-in."""
    import os

    cp, binding, be = _standin()  # puts this checkout first on sys.path

    import backend as B
    from nn.training.graphs import StepGraphs
    from nn.training.loop import FLUSH_EVERY

    clock = _Clock()
    for owner, name in (
        (cp._Function, "__call__"),
        (cp.Graph, "launch"),
        (binding, "sgemm"),
        (binding, "dgemm"),
    ):
        clock.wrap(owner, name)
    B._instances["cupy"] = be
    result = {"device": "CuPy stand-in (dry run), no GPU", "train_size": train_size}
    with cp.dry_run():
        trainer = _trainer(be, train_size)
        per_epoch = trainer.iters_per_epoch
        buf = be.xp.zeros(FLUSH_EVERY, dtype=trainer.net.dtype)
        for _ in range(5):
            buf[0] = trainer.step()  # compiles the kernels
        steps = epochs * per_epoch
        clock.seconds = 0.0
        with cp.counting() as c:
            t0 = time.perf_counter()
            for i in range(steps):
                buf[i % FLUSH_EVERY] = trainer.step()  # the loop's eager step
            wall = time.perf_counter() - t0
        result["eager"] = _row(wall, clock.seconds, c.launches, steps, steps)

        os.environ.setdefault("XPNET_CUDA_GRAPHS", "1")
        runner = StepGraphs.create(trainer, buf)
        for _ in range(2 * per_epoch):  # the first epochs capture every chunk
            runner.run(0, FLUSH_EVERY)
        done = chunks = 0
        clock.seconds = 0.0
        with cp.counting() as c:
            t0 = time.perf_counter()
            while done < steps:
                done += runner.run(0, FLUSH_EVERY)
                chunks += 1
            wall = time.perf_counter() - t0
        if runner.off:
            raise RuntimeError(f"graphs did not run: {be.graphs_failed}")
        result["graph"] = _row(wall, clock.seconds, c.launches, done, chunks)
    result["estimate_us_per_step"] = _estimate(result)
    return result


def _row(wall, inside, launches, steps, calls) -> dict:
    return {
        "steps": steps,
        "host_calls": calls,
        "launches_per_step": launches / steps,
        "wall_us_per_step": 1e6 * wall / steps,
        "standin_us_per_step": 1e6 * inside / steps,
        "python_us_per_step": 1e6 * (wall - inside) / steps,
    }


def _estimate(result) -> dict:
    """Host time per step on a GPU: the Python measured here plus the
    published costs of the launches (low, high)."""
    eager, graph = result["eager"], result["graph"]
    chunk = graph["steps"] / graph["host_calls"]
    return {
        "eager": [
            eager["python_us_per_step"] + eager["launches_per_step"] * us
            for us in LAUNCH_US
        ],  # fmt: skip
        "graph": [graph["python_us_per_step"] + us / chunk for us in GRAPH_LAUNCH_US],
        "assumed_launch_us": list(LAUNCH_US),
        "assumed_graph_launch_us": list(GRAPH_LAUNCH_US),
        "steps_per_graph_launch": chunk,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args(argv)
    result = measure(args.train_size, args.epochs)
    for mode in ("eager", "graph"):
        r = result[mode]
        print(
            f"{mode:5s}: {r['python_us_per_step']:7.1f} us of Python per step, "
            f"{r['launches_per_step']:.3f} launches per step "
            f"({r['standin_us_per_step']:.1f} us inside the stand-in, left out)"
        )
    est = result["estimate_us_per_step"]
    print(
        "estimate of host time per step on a GPU (not measured): eager "
        f"{est['eager'][0]:.0f}-{est['eager'][1]:.0f} us, graphs "
        f"{est['graph'][0]:.1f}-{est['graph'][1]:.1f} us"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
