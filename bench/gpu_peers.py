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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STANDIN_RUNNER = ROOT / "tests" / "cupy_standin" / "run.py"
WORKERS = ("xpnet", "torch", "jax")
TASKS = ("step", "evaluate", "run")
LEARNING_RATE = 0.1
#: Steps timed per ``step`` task.
BLOCK = 100


# -- what every variant shares ----------------------------------------------
def run_indices(n_train: int, batch: int, iters: int, seed: int = 0) -> np.ndarray:
    """(iters, batch) int64: each epoch a fresh permutation of the train rows."""
    rng = np.random.default_rng(seed)
    per_epoch = max(n_train // batch, 1)
    epochs = -(-iters // per_epoch)
    rows = [rng.permutation(n_train)[: per_epoch * batch] for _ in range(epochs)]
    return np.concatenate(rows).reshape(-1, batch)[:iters]


def chunks(iters: int, per_epoch: int) -> list[int]:
    """Steps between evaluations: whole epochs, then the rest (if any)."""
    out = [per_epoch] * (iters // per_epoch)
    return out + ([iters % per_epoch] if iters % per_epoch else [])


class Variant:
    """One way to train: ``train(start, n)`` runs steps ``start..start+n-1``,
    ``correct()`` counts right predictions (train, test) without waiting,
    ``sync()`` waits for the device."""

    def __init__(self, ctx):
        self.ctx = ctx

    def run(self) -> float:
        """Chapter 5's whole run; returns the last test accuracy."""
        ctx = self.ctx
        counts = [self.correct()]
        start = 0
        for n in chunks(ctx.iters, ctx.per_epoch):
            self.train(start, n)
            start += n
            counts.append(self.correct())
        self.sync()
        return float(counts[-1][1]) / ctx.n_test


class Context:
    """Sizes, host data and indices common to every variant of a worker."""

    def __init__(self, args):
        sys.path.insert(0, str(HERE))
        import benchkit

        s = benchkit.SMOKE if args.smoke else benchkit.FULL
        self.settings, self.device = s, args.device
        self.data = benchkit.load_data(benchkit.data_dir(), s)
        self.sizes = (s.input_size, s.hidden_size, s.output_size)
        self.batch = s.batch_size
        self.iters = s.ch5_iters
        self.n_train, self.n_test = len(self.data.t_train), len(self.data.t_test)
        self.per_epoch = max(self.n_train // self.batch, 1)
        self.block = min(BLOCK, self.per_epoch)
        self.indices = run_indices(self.n_train, self.batch, self.iters)


# -- the variants ---------------------------------------------------------------
class XpnetVariant(Variant):
    def __init__(self, ctx):
        super().__init__(ctx)
        import backend as B
        import nn

        self.be = B.get_backend("cupy" if ctx.device == "cuda" else "numpy")
        B.use(self.be)
        d, be = ctx.data, self.be
        self.x = be.asarray(d.x_train)
        self.t = be.asarray(d.t_train)
        self.x_test, self.t_test = be.asarray(d.x_test), be.asarray(d.t_test)
        self.idx = be.asarray(ctx.indices)
        self.net = nn.TwoLayerNet(*ctx.sizes, backend=be, dtype="float32", rng=0)
        self.opt = nn.SGD(lr=LEARNING_RATE)

    def train(self, start, n):
        for i in range(start, start + n):
            idx = self.idx[i]
            self.net.train_step(self.x[idx], self.t[idx], self.opt)

    def correct(self):
        n = self.net.count_correct
        return n(self.x, self.t)[0], n(self.x_test, self.t_test)[0]

    def sync(self):
        self.be.synchronize()

    def run(self) -> float:
        """The user's path: ``nn.Trainer`` from host pixels (uploads included)."""
        import benchkit

        from nn.data.mnist import PIXEL_SCALE
        from nn.training.progress import SilentReporter
        from nn.training.trainer import TrainConfig, Trainer

        ctx, d = self.ctx, self.ctx.data
        config = TrainConfig(
            iters=ctx.iters,
            batch_size=ctx.batch,
            hidden_size=ctx.sizes[1],
            lr=LEARNING_RATE,
            dtype="float32",
            seed=0,
        )
        sets = [
            (benchkit.as_pixels(x), t)
            for x, t in ((d.x_train, d.t_train), (d.x_test, d.t_test))
        ]
        trainer = Trainer(
            *sets,
            config,
            backend=self.be,
            reporter=SilentReporter(),
            pixel_scale=PIXEL_SCALE,
        )
        result = trainer.fit(handle_sigint=False)
        self.sync()
        return result.test_acc


class TorchEager(Variant):
    def __init__(self, ctx):
        super().__init__(ctx)
        from torch_reference import TorchTwoLayerNet, import_torch

        torch = self.torch = import_torch()
        dev = ctx.device
        d = ctx.data
        self.x = torch.from_numpy(d.x_train).to(dev)
        self.t = torch.from_numpy(d.t_train).to(dev)
        self.x_test = torch.from_numpy(d.x_test).to(dev)
        self.t_test = torch.from_numpy(d.t_test).to(dev)
        self.idx = torch.from_numpy(ctx.indices).to(dev)
        self.net = TorchTwoLayerNet(
            torch, *ctx.sizes, torch.float32, lr=LEARNING_RATE, device=dev
        )

    def train(self, start, n):
        for i in range(start, start + n):
            idx = self.idx[i]
            self.net.step(self.x[idx], self.t[idx])

    def correct(self):
        n = self.net.count_correct
        return n(self.x, self.t), n(self.x_test, self.t_test)

    def sync(self):
        if self.ctx.device == "cuda":
            self.torch.cuda.synchronize()


class TorchGraph(TorchEager):
    """One step captured once as a CUDA graph (PyTorch's documented
    whole-network recipe: warm-up on a side stream, grads set to None before
    capture), replayed after copying the step's indices into a fixed buffer."""

    def __init__(self, ctx):
        super().__init__(ctx)
        torch, net = self.torch, self.net
        if ctx.device != "cuda":
            raise RuntimeError("CUDA graphs need a CUDA device")
        self.static_idx = self.idx[0].clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                net.step(self.x[self.static_idx], self.t[self.static_idx])
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        net.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            x, t = self.x[self.static_idx], self.t[self.static_idx]
            loss = torch.nn.functional.cross_entropy(net.model(x), t)
            loss.backward()
            net.optimizer.step()

    def train(self, start, n):
        for i in range(start, start + n):
            self.static_idx.copy_(self.idx[i])
            self.graph.replay()


class JaxJit(Variant):
    def __init__(self, ctx):
        super().__init__(ctx)
        from jax_two_layer import JaxTwoLayerNet, import_jax

        jax = self.jax = import_jax()
        device = jax.devices("gpu" if ctx.device == "cuda" else "cpu")[0]
        self.net = net = JaxTwoLayerNet(
            jax, *ctx.sizes, lr=LEARNING_RATE, device=device
        )
        d = ctx.data
        self.x, self.t = net.put(d.x_train), net.put(d.t_train.astype(np.int32))
        self.x_test = net.put(d.x_test)
        self.t_test = net.put(d.t_test.astype(np.int32))
        self.idx = net.put(ctx.indices.astype(np.int32))
        self.rows = list(self.idx)  # one device array per step, sliced once

    def train(self, start, n):
        for i in range(start, start + n):
            self.net.step(self.x, self.t, self.rows[i])

    def correct(self):
        n = self.net.count_correct
        return n(self.x, self.t), n(self.x_test, self.t_test)

    def sync(self):
        self.jax.block_until_ready(self.net.params)


class JaxScan(JaxJit):
    def train(self, start, n):
        self.net.steps(self.x, self.t, self.idx[start : start + n])


VARIANTS = {
    "xpnet": {"xpnet": XpnetVariant},
    "torch": {"torch-eager": TorchEager, "torch-graph": TorchGraph},
    "jax": {"jax-jit": JaxJit, "jax-scan": JaxScan},
}
IMPORTS = {"xpnet": "nn", "torch": "torch", "jax": "jax"}


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
    send(ready=True, variants=list(built), skipped=skipped, data=ctx.data.source)
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
    owner = {}
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
            write(event="ready", worker=name, variants=hello["variants"])
        import benchkit

        size = (benchkit.SMOKE if args.smoke else benchkit.FULL).label()
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
    finally:
        for proc in procs.values():
            if proc.stdin:
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
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
