"""Chapter 6's training run, xpnet against PyTorch and JAX, each in its own process.

The book's optimizer-comparison network (784-100-100-100-100-10, ReLU, He
initialisation), batch 128, float32, Adam, 2,000 steps on Fashion-MNIST,
without and with Batch Normalization (``adam`` and ``adam-bn``). Contenders:
xpnet on the NumPy and Numba backends, PyTorch on the CPU (eager) and JAX on
the CPU (one jitted step; see ``chapter6_nets.py``).

Each contender lives in its own worker process (``chapter6_worker.py``, so no
two libraries share OpenMP or BLAS thread pools) that loads the data and
compiles once. The
driver then asks the workers in turn, in a fresh random order every round,
to train a fresh network from the same initial parameters on the same batch
indices for the whole run, so every contender sees the same machine. Only
one worker runs at a time; before each run the driver sleeps ``--settle``
seconds so the previous library's threads park. A sample is the wall time
of all the steps (batch gather from the training set already on the
backend, forward, backward, update) and a final device sync.

    python bench/chapter6.py --out runs/bench/chapter6-1.json
    python bench/run.py --only chapter6      # the same, through the suite's runner
    python bench/chapter6.py --device gpu --rounds 1 --out ch6-gpu.json

``--device gpu`` races xpnet on CuPy against PyTorch (eager) on CUDA and JAX
on its GPU (a peer without a GPU is skipped with the reason); ``--standin``
runs xpnet on the tests' CuPy stand-in and ``--peer-device cpu`` the peers on
the CPU, a dry run of the GPU code for machines without one.

The output has pytest-benchmark's JSON layout (group ``chapter6``) so
``report.py`` puts it next to the suite's results, with the headline ratio
"xpnet's best backend / the best peer". Each run's loss on 1,000 training
images before and after training is recorded, and a contender that did not
learn (final loss not below 1.0, chance being 2.3) fails the run (exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sample_stats import sample_stats

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GROUP = "chapter6"
CONTENDERS = ("numpy", "numba", "cupy", "torch", "jax")
XPNET = ("numpy", "numba", "cupy")
#: Default contenders per --device.
DEFAULTS = {"cpu": ("numpy", "numba", "torch", "jax"), "gpu": ("cupy", "torch", "jax")}
STANDIN_RUNNER = ROOT / "tests" / "cupy_standin" / "run.py"
CONFIGS = {"adam": False, "adam-bn": True}  # name -> Batch Normalization
FULL = {"hidden": (100, 100, 100, 100), "batch": 128, "steps": 2000, "rows": None}
SMOKE = {"hidden": (8, 8, 8, 8), "batch": 16, "steps": 20, "rows": 240}
#: A full run learned when its loss ended below this (chance is ln 10 = 2.30;
#: 2,000 Adam steps reach about 0.4). Smoke runs only need finite losses.
LEARNED_LOSS = 1.0


def size_label(hidden, batch, config: str) -> str:
    """'784-100x4-10 b128 adam': the network, batch and configuration."""
    return f"784-{hidden[0]}x{len(hidden)}-10 b{batch} {config.replace('-', '+')}"


def thread_env(threads: int | None) -> dict:
    """Environment that caps every library's worker threads at ``threads``
    (None: each library's default, one per core)."""
    if threads is None:
        return {}
    n = str(threads)
    env = {v: n for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    env["NUMBA_NUM_THREADS"] = n
    # XLA's CPU client: Eigen's intra-op pool.
    env["XLA_FLAGS"] = (
        f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
        f"intra_op_parallelism_threads={n}"
    )
    return env


class Remote:
    """A worker process and its line protocol."""

    def __init__(self, name, data_dir, rows, threads=None, device="cpu", standin=False):
        cmd = [sys.executable] + [str(STANDIN_RUNNER)] * (standin and name == "cupy")
        cmd += [str(HERE / "chapter6_worker.py"), name, "--device", device]
        cmd += ["--data-dir", str(data_dir)] if data_dir else []
        cmd += ["--rows", str(rows)] if rows else []
        self.name = name
        # This checkout's xpnet, as ``python bench/...`` run from its root means.
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=path, **thread_env(threads)),
        )
        self.hello = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} exited (code {self.proc.wait()})")
        return json.loads(line)

    def ask(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self, kill: bool = False) -> None:
        if kill:  # interrupted: it may be mid-run, and nobody wants the answer
            self.proc.kill()
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('"quit"\n')
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc.wait(timeout=60)


def measure(remotes, setup, rounds, settle, configs, runs=None):
    """Per (contender, config): list of run results, alternated round-robin
    (into ``runs``, so an interrupted caller keeps the runs that finished)."""
    hidden, batch, steps = setup["hidden"], setup["batch"], setup["steps"]
    runs = {} if runs is None else runs
    runs.update({(name, c): [] for name in remotes for c in configs})
    for remote in remotes.values():  # warm-up: JIT compiles, page faults
        for config in configs:
            remote.ask(config=config, hidden=hidden, batch=batch, steps=20, seed=99)
    rng = np.random.default_rng(0)
    names = list(remotes)
    for r in range(rounds):
        for config in configs:
            for i in rng.permutation(len(names)):
                time.sleep(settle)
                result = remotes[names[i]].ask(
                    config=config, hidden=hidden, batch=batch, steps=steps, seed=r
                )
                runs[(names[i], config)].append(result)
    return runs


def versions() -> dict:
    """Versions of Python and the compared libraries (read without importing)."""
    import importlib.metadata
    import platform

    out = {"python": platform.python_version()}
    for dist in ("numpy", "numba", "torch", "jax", "jaxlib"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def entries(runs, remotes, setup, threads=None, device="cpu") -> list[dict]:
    """pytest-benchmark-like entries with the suite's extra_info fields."""
    import platform

    out = []
    for (name, config), results in runs.items():
        if not results:  # interrupted before this one ran
            continue
        hello = remotes[name].hello
        kind = "xpnet" if name in XPNET else name
        variant = f"{name}-f32"
        info = {
            "variant": variant,
            "kind": kind,
            "backend": name if kind == "xpnet" else f"{name}-{device}",
            "dtype": "float32",
            "baseline": False,
            "reference": "torch" if name == "torch" else None,
            "size": size_label(setup["hidden"], setup["batch"], config)
            + (f" {threads}t" if threads else ""),
            "config": config,
            "batchnorm": CONFIGS[config],
            "input_size": 784,
            "hidden_size": list(setup["hidden"]),
            "output_size": 10,
            "batch_size": setup["batch"],
            "iterations": setup["steps"],
            "thread_cap": threads,
            "data": hello["data"],
            "threads": hello["ready"],
            "smoke": setup is SMOKE,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "versions": versions(),
            "loadavg_1min": round(os.getloadavg()[0], 2),
            # CPU time of the worker process (all its threads): with one
            # thread, a figure that a busy machine inflates much less.
            "cpu_seconds": [r["cpu_seconds"] for r in results],
            "loss_before": [r["loss_before"] for r in results],
            "loss_after": [r["loss_after"] for r in results],
        }
        out.append(
            {
                "group": GROUP,
                "name": f"chapter6[{variant}-{config}]",
                "fullname": f"bench/chapter6.py::chapter6[{variant}-{config}]",
                "params": {"variant": variant, "config": config},
                "param": f"{variant}-{config}",
                "extra_info": info,
                "stats": sample_stats([r["seconds"] for r in results]),
            }
        )
    return out


def not_learning(entries_: list[dict]) -> list[str]:
    """Runs whose final loss is not finite, or (full runs) not below LEARNED_LOSS."""
    bad = []
    for e in entries_:
        info = e["extra_info"]
        limit = np.inf if info["smoke"] else LEARNED_LOSS
        for before, after in zip(info["loss_before"], info["loss_after"], strict=True):
            if not (np.isfinite(after) and after < limit):
                bad.append(f"{e['param']}: loss {before:.3f} -> {after:.3f}")
    return bad


def ratios(entries_: list[dict]) -> dict:
    """Per config: (best xpnet entry, best peer entry, ratio of medians)."""
    out = {}
    for config in CONFIGS:
        rows = [e for e in entries_ if e["extra_info"]["config"] == config]
        ours = [e for e in rows if e["extra_info"]["kind"] == "xpnet"]
        peers = [e for e in rows if e["extra_info"]["kind"] != "xpnet"]
        if ours and peers:
            best = min(ours, key=lambda e: e["stats"]["median"])
            peer = min(peers, key=lambda e: e["stats"]["median"])
            out[config] = (
                best,
                peer,
                best["stats"]["median"] / peer["stats"]["median"],
            )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="JSON file to write")
    parser.add_argument("--rounds", type=int, default=3, help="default 3")
    parser.add_argument(
        "--settle", type=float, default=0.5, help="sleep before each run (s)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 round")
    parser.add_argument("--data-dir", help="Fashion-MNIST folder")
    parser.add_argument(
        "--device",
        choices=("cpu", "gpu"),
        default="cpu",
        help="gpu: xpnet on CuPy, PyTorch and JAX on their GPU (default cpu)",
    )
    parser.add_argument(
        "--peer-device",
        choices=("cuda", "cpu"),
        help="where PyTorch and JAX run with --device gpu (default cuda)",
    )
    parser.add_argument(
        "--standin", action="store_true", help="xpnet's CuPy on the tests' stand-in"
    )
    parser.add_argument(
        "--contenders",
        help=f"comma-separated subset of {','.join(CONTENDERS)} (default: "
        "numpy,numba,torch,jax; with --device gpu: cupy,torch,jax)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="cap every library at N threads (default: each library's own, "
        "one per core); 1 compares single-core speed on a busy machine",
    )
    args = parser.parse_args(argv)
    names = [n for n in (args.contenders or ",".join(DEFAULTS[args.device])).split(",")]
    names = [n for n in names if n]
    peer_device = (args.peer_device or "cuda") if args.device == "gpu" else "cpu"
    unknown = sorted(set(names) - set(CONTENDERS))
    if unknown or not names:
        parser.error(f"--contenders: unknown {unknown}; choose from {CONTENDERS}")
    if args.out is None:
        parser.error("--out is required")
    if args.rounds < 1 or args.settle < 0 or (args.threads or 1) < 1:
        parser.error("--rounds and --threads must be at least 1, --settle at least 0")
    smoke = args.smoke or os.environ.get("XPNET_BENCH_SMOKE", "") not in ("", "0")
    setup = SMOKE if smoke else FULL
    rounds, settle = (1, 0.0) if smoke else (args.rounds, args.settle)
    data_dir = args.data_dir or os.environ.get("XPNET_BENCH_DATA")
    if not data_dir:
        shared = os.environ.get("XPNET_SHARED_DATA")
        base = Path(shared) if shared else ROOT.parent / "shared" / "data"
        data_dir = base / "fashion-mnist"
    remotes, skipped, runs, stopped = {}, {}, {}, False
    try:
        for name in names:
            device = peer_device if name in ("torch", "jax") else "cpu"
            remote = Remote(
                name, data_dir, setup["rows"], args.threads, device, args.standin
            )
            if "skip" in remote.hello:
                skipped[name] = remote.hello["skip"]
                remote.close()
            else:
                remotes[name] = remote
        measure(remotes, setup, rounds, settle, list(CONFIGS), runs)
    except KeyboardInterrupt:  # e.g. the GPU report's budget: keep what finished
        stopped = True
        print("interrupted: writing the runs that finished", file=sys.stderr)
    finally:
        for remote in remotes.values():
            remote.close(kill=stopped)
    result = entries(runs, remotes, setup, args.threads, peer_device)
    for name, why in skipped.items():
        print(f"skipped {name}: {why}", file=sys.stderr)
    for e in sorted(
        result, key=lambda e: (e["extra_info"]["config"], e["stats"]["median"])
    ):
        info = e["extra_info"]
        print(
            f"{info['size']:>28} {e['params']['variant']:>10}: "
            f"{e['stats']['median']:7.3f} s (median of {e['stats']['rounds']}; "
            f"CPU {np.median(info['cpu_seconds']):7.3f} s), "
            f"loss {info['loss_before'][-1]:.3f} -> {info['loss_after'][-1]:.3f}"
        )
    for config, (best, peer, ratio) in ratios(result).items():
        print(
            f"{config}: xpnet best {best['params']['variant']} / best peer "
            f"{peer['params']['variant']} = {ratio:.2f}x"
        )
    sys.path.insert(0, str(HERE))
    from report import write_atomic

    doc = {"benchmarks": result, "skipped": skipped, "machine_info": {}}
    doc["device"] = {"xpnet": args.device, "peers": peer_device}
    doc["stopped"] = stopped
    write_atomic(args.out, json.dumps(doc, indent=1))
    bad = not_learning(result)
    if stopped:
        return 130
    if bad:
        print("error: not learning: " + "; ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
