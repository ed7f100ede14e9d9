"""Host time of chapter 5's training step on the GPU path: eager against CUDA graphs.

Without a GPU it runs on the CuPy stand-in in dry mode
(``cupy_standin.dry_run``: launches counted and their arguments checked, their
work skipped) and measures the CPU time the host spends per step (CPU time of
the process, so that a busy machine inflates it less than wall time). The
time spent inside the stand-in, which plays CuPy and CUDA, is measured apart
and left out: its launch points (kernel calls, cuBLAS calls, graph launches)
and its array bookkeeping (views, indexing, ``empty``, ``take``), which CuPy
does in Cython and the stand-in in Python. What remains is xpnet's own Python.
::

    python bench/gpu_host_time.py            # 784-50-10, batch 100, float32
    python bench/gpu_host_time.py --json host_time.json

The estimate it prints for a GPU adds typical costs to xpnet's Python: a
kernel or cuBLAS call from CuPy ``LAUNCH_US`` (low, high) each, an array
operation that launches nothing ``ARRAY_OP_US`` each, a graph launch
``GRAPH_LAUNCH_US`` per chunk. It is an estimate, not a measurement, and of
host time only: a GPU step costs at least the larger of host and device time.
"""

from __future__ import annotations

import argparse
import json
import os
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
#: Host cost of one CuPy array operation that launches nothing (a view, an
#: index, ``empty`` from the pool), microseconds.
ARRAY_OP_US = (1.0, 2.0)


def _standin():
    for path in (str(ROOT), str(ROOT / "tests")):
        if path not in sys.path:
            sys.path.insert(0, path)
    import cupy_standin
    from cupy_standin import cublas_binding
    from cupy_standin.install import standin_backend

    return cupy_standin, cublas_binding, standin_backend()


class _Clock:
    """CPU time and calls inside wrapped functions (outermost calls only)."""

    def __init__(self):
        self.seconds, self.calls, self._depth = 0.0, 0, 0

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0

    def wrap(self, owner, name) -> None:
        fn = getattr(owner, name)

        def timed(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            self.calls += 1
            t0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - t0
                self._depth -= 1

        setattr(owner, name, timed)


def _trainer(be, train_size: int, seed: int = 0):
    from nn.training.config import TrainConfig
    from nn.training.progress import SilentReporter
    from nn.training.trainer import Trainer

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (train_size, 784), dtype=np.uint8)
    labels = rng.integers(0, 10, train_size)
    config = TrainConfig(iters=10**6, batch_size=100, hidden_size=50, lr=0.1,
                         dtype="float32", seed=seed,
                         allow_not_learning=True)  # fmt: skip
    return Trainer((images, labels), (images[:100], labels[:100]), config,
                   backend=be, reporter=SilentReporter(), pixel_scale=255)  # fmt: skip


def measure(train_size: int = 60000, epochs: int = 2) -> dict:
    """Per-step host CPU time (us), launches and array operations, eager and
    replayed, on the stand-in."""
    cp, binding, be = _standin()  # puts this checkout first on sys.path

    import backend as B
    from nn.training.graphs import StepGraphs
    from nn.training.loop import FLUSH_EVERY

    launches, arrays = _Clock(), _Clock()
    for owner, name in ((cp._Function, "__call__"), (cp.Graph, "launch"),
                        (binding, "sgemm"), (binding, "dgemm")):  # fmt: skip
        launches.wrap(owner, name)
    for owner, name in ((cp.ndarray, "__getitem__"), (cp.ndarray, "__setitem__"),
                        (cp, "_call"), (cp, "empty"),
                        (cp, "ascontiguousarray")):  # fmt: skip
        arrays.wrap(owner, name)
    B._instances["cupy"] = be
    result = {"device": "CuPy stand-in (dry run), no GPU", "train_size": train_size}
    with cp.dry_run():
        trainer = _trainer(be, train_size)
        buf = be.xp.zeros(FLUSH_EVERY, dtype=trainer.net.dtype)
        for _ in range(5):
            buf[0] = trainer.step()  # compiles the kernels
        steps = epochs * trainer.iters_per_epoch
        launches.reset(), arrays.reset()
        with cp.counting() as c:
            t0 = time.process_time()
            for i in range(steps):
                buf[i % FLUSH_EVERY] = trainer.step()  # the loop's eager step
            cpu = time.process_time() - t0
        result["eager"] = _row(cpu, launches, arrays, c.launches, steps, steps)

        os.environ.setdefault("XPNET_CUDA_GRAPHS", "1")
        runner = StepGraphs.create(trainer, buf)
        for _ in range(2 * trainer.iters_per_epoch):  # captures every chunk
            runner.run(0, FLUSH_EVERY)
        done = chunks = 0
        launches.reset(), arrays.reset()
        with cp.counting() as c:
            t0 = time.process_time()
            while done < steps:
                done += runner.run(0, FLUSH_EVERY)
                chunks += 1
            cpu = time.process_time() - t0
        if runner.off:
            raise RuntimeError(f"graphs did not run: {be.graphs_failed}")
        result["graph"] = _row(cpu, launches, arrays, c.launches, done, chunks)
    result["estimate_us_per_step"] = _estimate(result)
    return result


def _row(cpu, launch_clock, array_clock, launches, steps, calls) -> dict:
    inside = launch_clock.seconds + array_clock.seconds
    return {
        "steps": steps,
        "host_calls": calls,
        "launches_per_step": launches / steps,
        "array_ops_per_step": array_clock.calls / steps,
        "cpu_us_per_step": 1e6 * cpu / steps,
        "standin_launch_us_per_step": 1e6 * launch_clock.seconds / steps,
        "standin_array_us_per_step": 1e6 * array_clock.seconds / steps,
        "python_us_per_step": 1e6 * (cpu - inside) / steps,
    }


def _estimate(result) -> dict:
    """Host time per step on a GPU (low, high): xpnet's Python measured here
    plus the assumed costs of what the stand-in stood for."""
    eager, graph = result["eager"], result["graph"]
    chunk = graph["steps"] / graph["host_calls"]

    def host(row, launch_us, array_us):
        python = row["python_us_per_step"]
        return python + row["array_ops_per_step"] * array_us + launch_us

    eager_costs = zip(LAUNCH_US, ARRAY_OP_US, strict=True)
    graph_costs = zip(GRAPH_LAUNCH_US, ARRAY_OP_US, strict=True)
    return {
        "eager": [
            host(eager, eager["launches_per_step"] * us, a) for us, a in eager_costs
        ],  # fmt: skip
        "graph": [host(graph, us / chunk, a) for us, a in graph_costs],
        "assumed_launch_us": list(LAUNCH_US),
        "assumed_graph_launch_us": list(GRAPH_LAUNCH_US),
        "assumed_array_op_us": list(ARRAY_OP_US),
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
            f"{mode:5s}: {r['python_us_per_step']:6.1f} us of xpnet's Python per "
            f"step; per step {r['launches_per_step']:.3f} launches and "
            f"{r['array_ops_per_step']:.2f} array operations (the stand-in's "
            f"{r['standin_launch_us_per_step']:.1f} + "
            f"{r['standin_array_us_per_step']:.1f} us for them left out)"
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
