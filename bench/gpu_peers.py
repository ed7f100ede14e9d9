"""Chapter 5's work in xpnet, PyTorch and JAX on one device, alternated.

    python bench/gpu_peers.py --out peers.jsonl                 # the GPU
    python bench/gpu_peers.py --out peers.jsonl --device cpu --smoke

The peer rows of ``bench/gpu_report.py``: 784-50-10 ReLU, batch 100, lr 0.1,
float32, Fashion-MNIST (synthetic data of the same shapes where it is
missing). Three tasks, timed to the device's end of work:

* ``step``: a block of SGD steps (the batch gathered on the device from the
  epoch's indices), seconds per step;
* ``evaluate``: correct predictions on the train and test sets, seconds;
* ``run``: chapter 5's whole run, ``ITERS`` steps with an evaluation before
  the first, after every epoch and after the last (18 at the book's sizes).

Variants: ``xpnet`` (``nn.Trainer`` for the run, ``train_step`` for steps);
``torch-eager`` and, on CUDA, ``torch-graph`` (one step captured as a
``torch.cuda.CUDAGraph`` and replayed); ``jax-jit`` (one jitted call per step)
and ``jax-scan`` (each epoch one jitted ``lax.scan``). Each library runs in
its own worker process (``--worker NAME``), started once and warmed by one
whole run; the parent sends one task at a time, all variants in a fresh
random order each round, so they share the machine's state. A library that
does not import, or a variant that fails to build, is reported as skipped.

Every result is appended to ``--out`` (JSON lines) as it arrives, so a run
stopped early keeps what it measured. ``--standin`` runs the xpnet worker on
the tests' CuPy stand-in.
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
from gpu_peer_variants import IMPORTS, VARIANTS, Context, Variant

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STANDIN_RUNNER = ROOT / "tests" / "cupy_standin" / "run.py"
WORKERS = ("xpnet", "torch", "jax")
TASKS = ("step", "evaluate", "run")


# -- the worker process ---------------------------------------------------------
def timed(variant: Variant, task: str) -> tuple[float, float | None]:
    """(seconds, test accuracy or None) of one task: per step for ``step``."""
    ctx = variant.ctx
    variant.sync()
    start = time.perf_counter()
    if task == "step":
        first = (timed.next_step.get(id(variant), 0)) % (ctx.iters - ctx.block + 1)
        variant.train(first, ctx.block)
        timed.next_step[id(variant)] = first + ctx.block
        variant.sync()
        return (time.perf_counter() - start) / ctx.block, None
    if task == "evaluate":
        variant.correct()
        variant.sync()
        return time.perf_counter() - start, None
    acc = variant.run()
    return time.perf_counter() - start, acc


timed.next_step = {}


def worker(name: str, args) -> int:
    """Build, warm and serve ``name``'s variants: one JSON line per request."""
    reply = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr  # only the protocol goes to the parent's pipe

    def send(**msg):
        reply.write(json.dumps(msg) + "\n")
        reply.flush()

    try:
        __import__(IMPORTS[name])
    except ImportError as exc:
        send(ready=False, reason=f"{IMPORTS[name]} does not import: {exc}")
        return 0
    ctx = Context(args)
    built, skipped = {}, {}
    for vid, cls in VARIANTS[name].items():
        try:
            v = cls(ctx)
            for task in TASKS:  # compiles, captures, caches: not timed later
                timed(v, task)
            built[vid] = v
        except Exception as exc:  # a peer's failure is a skipped row, not a crash
            skipped[vid] = f"{type(exc).__name__}: {str(exc)[:200]}"
    send(
        ready=True,
        variants=list(built),
        skipped=skipped,
        data=ctx.data.source,
        size=ctx.settings.label(),
        torch_loaded="torch" in sys.modules,
    )
    for line in sys.stdin:
        request = json.loads(line)
        seconds, acc = timed(built[request["variant"]], request["task"])
        send(seconds=seconds, accuracy=acc)
    return 0


# -- the parent -------------------------------------------------------------------
def start_worker(name: str, args) -> subprocess.Popen:
    cmd = [sys.executable]
    if args.standin and name == "xpnet":
        cmd.append(str(STANDIN_RUNNER))
    cmd += [str(HERE / "gpu_peers.py"), "--worker", name, "--device", args.device]
    cmd += ["--smoke"] if args.smoke else []
    env = dict(os.environ)
    # JAX takes 75% of the GPU's memory at start-up by default; the other
    # workers share the GPU, so it allocates as it goes instead.
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if name != "torch":  # each library in its own process only
        env["XPNET_BENCH_PRELOAD_TORCH"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(HERE), env.get("PYTHONPATH", "")]
    )
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def drive(args) -> int:
    """Start the workers, alternate the tasks over rounds, log every result."""
    log = open(args.out, "a", encoding="utf-8")

    def write(**event):
        log.write(json.dumps(event) + "\n")
        log.flush()

    procs = {name: start_worker(name, args) for name in args.peers}
    owner, size = {}, "?"
    try:
        for name, proc in procs.items():
            hello = json.loads(proc.stdout.readline() or '{"ready": false}')
            if not hello.get("ready"):
                why = hello.get("reason", "the worker exited (see its output)")
                write(event="skipped", variant=name, reason=why)
                continue
            for vid, why in hello["skipped"].items():
                write(event="skipped", variant=vid, reason=why)
            for vid in hello["variants"]:
                owner[vid] = proc
            write(
                event="ready",
                worker=name,
                variants=hello["variants"],
                torch_loaded=hello["torch_loaded"],
            )
            size = hello["size"]
        write(
            event="plan",
            variants=list(owner),
            tasks=list(TASKS),
            rounds=args.rounds,
            size=size,
        )
        rng = np.random.default_rng(0)
        order = list(owner)
        for r in range(args.rounds):
            for task in TASKS:
                for i in rng.permutation(len(order)):
                    vid = order[i]
                    proc = owner[vid]
                    proc.stdin.write(json.dumps({"variant": vid, "task": task}) + "\n")
                    proc.stdin.flush()
                    answer = json.loads(proc.stdout.readline())
                    write(event="peer", variant=vid, task=task, round=r, **answer)
        write(event="finished")
    except KeyboardInterrupt:  # stopped at a budget: what is logged is kept
        for proc in procs.values():
            proc.kill()
        raise
    finally:  # also on Ctrl-C (the report's stop at the budget): end them all
        for proc in procs.values():
            try:
                proc.stdin.close()  # a worker ends when its input does
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for proc in procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    return 0


def summarise(events: list[dict]) -> dict:
    """{variant: {task: median seconds}} and {variant: reason} of a log."""
    times: dict[str, dict[str, list[float]]] = {}
    for e in events:
        if e.get("event") == "peer":
            times.setdefault(e["variant"], {}).setdefault(e["task"], [])
            times[e["variant"]][e["task"]].append(e["seconds"])
    medians = {
        v: {task: float(np.median(s)) for task, s in tasks.items()}
        for v, tasks in times.items()
    }
    skipped = {e["variant"]: e["reason"] for e in events if e.get("event") == "skipped"}
    plan = next((e for e in events if e.get("event") == "plan"), {})
    return {"medians": medians, "skipped": skipped, "size": plan.get("size", "?")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="JSON-lines file to append to")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--rounds", type=int, default=3, help="default 3")
    parser.add_argument("--peers", default="xpnet,torch,jax", help="workers to run")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--standin", action="store_true", help="xpnet on the stand-in")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args)
    if args.out is None:
        parser.error("--out is required")
    args.peers = [p for p in args.peers.split(",") if p]
    unknown = set(args.peers) - set(WORKERS)
    if unknown or args.rounds < 1:
        parser.error(f"--peers takes {', '.join(WORKERS)}; --rounds at least 1")
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
