"""One command for a GPU machine: the GPU tests, CLI runs on the GPU, xpnet
against PyTorch and JAX, and CPU against GPU benchmark rows, in one Markdown
report.

    python bench/gpu_report.py                  # everything, within 8 minutes
    python bench/gpu_report.py --skip-slow-cpu  # no CPU rows for chapter 5 / the loop
    python bench/gpu_report.py --out DIR        # default runs/gpu/<UTC time>

Needs NumPy, CuPy, pytest and pytest-benchmark; PyTorch, JAX, Numba and
Hypothesis are used where installed and skipped (with the reason) where not.
No network and no ``pip install``. The stages run in order, each under its
budget (its share of ``--budget``, 480 s, plus what earlier stages left;
printed at the start; ``--stage-seconds STAGE=S`` sets one):

1. ``device``: detection and ``nvidia-smi``.
2. ``tests``: ``pytest -m gpu tests`` (no ``-x``) with ``XPNET_REQUIRE_GPU=1``:
   every CuPy case of the suite plus ``tests/gpu``.
3. ``cli``: the CLIs on the GPU (``bench/gpu_report_cli.py``).
4. ``peers``: chapter 5's step, evaluation and whole run in xpnet, PyTorch
   (eager and CUDA graph) and JAX (jit and ``lax.scan``), alternated
   (``bench/gpu_peers.py``), with xpnet's time over each peer's.
5. ``chapter6``: chapter 6's benchmark (``bench/chapter6.py --device gpu
   --rounds 1``): xpnet on CuPy, PyTorch on CUDA and JAX on the GPU, with
   and without Batch Normalization, into ``chapter6.json``.
6. ``bench``: ``bench/gpu_rows.py``: the SGD step, chapter 5's run, the
   evaluation and the numerical gradient (loop and fast) on NumPy, Numba and
   CuPy, float32 and float64.

Each stage writes its results as they come, one JSON line per test, row or
timing (``tests.jsonl``, ``rows.jsonl``, ``peers.jsonl``); a stage past its
budget gets SIGINT (pytest ends the current test and writes what it has),
then SIGKILL after a grace, and the report says "stopped at its budget after
N of M" and shows what finished. ``report.md`` and ``report.json`` are always
written (Ctrl-C included). Exit status 0 when every stage passed, else 1.

``--standin`` runs everything with the tests' CuPy stand-in as the GPU,
``--smoke`` shrinks every size and ``--peer-device cpu`` runs the peers on
the CPU: ``tests/test_gpu_report.py`` uses them, so this script cannot rot on
a machine without a GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from gpu_report_cli import find_data, part_cli
from gpu_report_log import read_log

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STANDIN_RUNNER = ROOT / "tests" / "cupy_standin" / "run.py"
TAIL = 3000  # characters of each command's output kept in report.json
#: Seconds kept back for writing the report.
RESERVE = 10
#: Most seconds between a stage's SIGINT and its SIGKILL.
GRACE = 15
#: Share of the budget each part may use, in order (what is left over passes on).
SHARES = {
    "device": 0.04,
    "tests": 0.26,
    "cli": 0.13,
    "peers": 0.17,
    "chapter6": 0.15,  # about 70 s of the 480
    "bench": 0.25,
}


class Runner:
    """Runs commands under one deadline and records each result."""

    def __init__(self, args, out: Path):
        self.args, self.out = args, out
        self.deadline = time.monotonic() + args.budget - RESERVE
        self.results: list[dict] = []
        self.env = dict(os.environ, MPLBACKEND="Agg")
        self.env["XDG_CACHE_HOME"] = str(out / "cache")
        self.env.pop("XPNET_BACKEND", None)
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]
        )

    def python(self, *argv) -> list[str]:
        """``python ARGV``, through the stand-in's runner under ``--standin``."""
        prefix = [sys.executable]
        if self.args.standin:
            prefix.append(str(STANDIN_RUNNER))
        return prefix + [str(a) for a in argv]

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, part, name, cmd, limit, env=None, check=None, rc=0) -> dict:
        """Run ``cmd``, which must exit with ``rc``; ``check(proc) -> str | None``
        names anything else that is wrong. Past ``limit`` seconds (or the
        overall deadline) the command gets SIGINT, which pytest answers by
        ending the current test and writing what it has, and ``GRACE``
        seconds later SIGKILL; its entry is then "stopped"."""
        timeout = min(limit, self.left())
        entry = {"part": part, "name": name, "cmd": " ".join(cmd)}
        entry["budget"] = round(timeout, 1)
        if timeout < 5:
            entry.update(status="not run", detail="time budget spent", seconds=0.0)
            self.results.append(entry)
            print(f"[{part}] {name}: not run (time budget spent)", flush=True)
            return entry
        grace = min(GRACE, timeout / 4)
        start = time.monotonic()
        logs = self.out / "logs"
        logs.mkdir(exist_ok=True)
        stem = logs / f"{len(self.results):02d}-{part}"
        with open(f"{stem}.out", "w+") as out, open(f"{stem}.err", "w+") as err:
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=err,
                text=True,
            )
            stopped = stop_at(proc, timeout - grace, grace)
            out.seek(0), err.seek(0)
            proc.stdout, proc.stderr = out.read(), err.read()
        problem = None
        if stopped:
            problem = f"stopped at its budget ({timeout:.0f} s, {stopped})"
        elif proc.returncode != rc:
            problem = f"exit status {proc.returncode} (expected {rc})"
        if problem is None and check is not None:
            problem = check(proc)
        entry.update(rc=proc.returncode, stdout=proc.stdout[-TAIL:])
        entry.update(stderr=proc.stderr[-TAIL:])
        entry["seconds"] = round(time.monotonic() - start, 2)
        entry["status"] = "stopped" if stopped else "failed" if problem else "passed"
        entry["detail"] = problem or ""
        self.results.append(entry)
        print(
            f"[{part}] {name}: {entry['status']} ({entry['seconds']} s)"
            + (f": {problem}" if problem else ""),
            flush=True,
        )
        return entry


def stop_at(proc: subprocess.Popen, seconds: float, grace: float) -> str | None:
    """Wait for ``proc``; past ``seconds`` interrupt it (SIGINT), past
    ``grace`` more kill it. -> None if it ended by itself, else what was sent."""
    try:
        proc.wait(timeout=max(seconds, 0.1))
        return None
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=grace)
        return "interrupted"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "interrupted, then killed"


# -- the parts ----------------------------------------------------------------
def part_device(r: Runner) -> None:
    code = (
        "import backend as B, numpy, sys; be = B.get_backend('cupy'); "
        "print(be.describe()); print('numpy', numpy.__version__); "
        "print('python', sys.version.split()[0])"
    )
    r.run("device", "detection", r.python("-c", code), limit=120)
    if shutil.which("nvidia-smi"):
        query = "--query-gpu=name,driver_version,memory.total"
        r.run("device", "nvidia-smi", ["nvidia-smi", query, "--format=csv"], 30)


def part_tests(r: Runner, limit: float) -> None:
    log = r.out / "tests.jsonl"
    log.unlink(missing_ok=True)  # the log is appended to: start afresh
    paths = r.args.tests_path or ["tests"]
    cmd = r.python(
        "-m",
        "pytest",
        "-m",
        "gpu",
        *paths,
        "-p",
        "no:cacheprovider",
        "-p",
        "gpu_report_log",
        f"--xpnet-log={log}",
        "-q",
        "-rfE",
        f"--junitxml={r.out / 'tests.xml'}",
    )
    if r.args.tests_k:
        cmd += ["-k", r.args.tests_k]
    # On the stand-in there is no GPU to require: the suite's fixture uses it.
    env = {} if r.args.standin else {"XPNET_REQUIRE_GPU": "1"}
    entry = r.run("tests", "pytest -m gpu " + " ".join(paths), cmd, limit, env=env)
    entry["log"] = log_summary(log, entry)


def log_summary(path: Path, entry: dict) -> dict:
    """Counts of ``gpu_report_log``'s log: tests by outcome, benchmark rows,
    the failing tests; a stage that produced no test is itself a failure."""
    events = read_log(path)
    collected = next((e["count"] for e in events if e["event"] == "collected"), None)
    tests = [e for e in events if e["event"] == "test"]
    counts = {k: 0 for k in ("passed", "failed", "error", "skipped")}
    for e in tests:
        counts[e["outcome"]] = counts.get(e["outcome"], 0) + 1
    summary = {
        "collected": collected,
        "done": len(tests),
        **counts,
        "rows": sum(e["event"] == "row" for e in events),
        "failing": [
            f"{e['nodeid']}: {e['message']}"
            for e in tests
            if e["outcome"] in ("failed", "error")
        ],
    }
    if entry["status"] == "stopped":
        entry["detail"] = (
            f"stopped at its budget ({entry['budget']:.0f} s) after "
            f"{summary['done']} of {collected if collected is not None else '?'} "
            "tests; the results below are of those"
        )
    elif entry["status"] == "passed" and not counts["passed"]:
        entry.update(status="failed", detail="no test passed (none collected?)")
    return summary


def part_bench(r: Runner, limit: float) -> Path:
    log = r.out / "rows.jsonl"
    log.unlink(missing_ok=True)
    if importlib.util.find_spec("pytest_benchmark") is None:
        r.results.append(
            {
                "part": "bench",
                "name": "bench/gpu_rows.py",
                "status": "not run",
                "seconds": 0.0,
                "detail": "pytest-benchmark is not installed: "
                "pip install pytest-benchmark",
            }
        )
        print("[bench] not run: pytest-benchmark is not installed", flush=True)
        return log
    cmd = r.python(
        "-m",
        "pytest",
        HERE / "gpu_rows.py",
        "-p",
        "no:cacheprovider",
        "-p",
        "gpu_report_log",
        f"--xpnet-log={log}",
        "-q",
        f"--benchmark-json={r.out / 'rows.json'}",
        "--benchmark-columns=median,iqr,rounds",
    )
    env = {"XPNET_BENCH_SKIP_SLOW_CPU": "1" if r.args.skip_slow_cpu else "0"}
    if r.args.smoke:
        cmd += [
            "--bench-smoke",
            "--benchmark-min-rounds=1",
            "--benchmark-max-time=0.0001",
            "--benchmark-min-time=0.0000001",
        ]
    else:
        cmd += ["--benchmark-max-time=0.5"]
    if r.args.bench_k:
        cmd += ["-k", r.args.bench_k]
    entry = r.run("bench", "bench/gpu_rows.py", cmd, limit, env=env)
    entry["log"] = log_summary(log, entry)
    if entry["status"] == "stopped":
        entry["detail"] = entry["detail"].replace(" tests;", " rows;")
    return log


def part_peers(r: Runner, limit: float) -> Path:
    """Chapter 5's work in xpnet, PyTorch and JAX, alternated (bench/gpu_peers.py)."""
    log = r.out / "peers.jsonl"
    log.unlink(missing_ok=True)
    # Not through the stand-in's runner: the workers are started by the script.
    cmd = [sys.executable, str(HERE / "gpu_peers.py"), "--out", str(log)]
    cmd += ["--rounds", str(r.args.peer_rounds), "--device", r.args.peer_device]
    cmd += ["--smoke"] * r.args.smoke + ["--standin"] * r.args.standin
    entry = r.run("peers", "bench/gpu_peers.py", cmd, limit)
    events = read_log(log)
    done = sum(e.get("event") == "peer" for e in events)
    plan = next((e for e in events if e.get("event") == "plan"), None)
    total = len(plan["variants"]) * len(plan["tasks"]) * plan["rounds"] if plan else "?"
    if entry["status"] == "stopped":
        entry["detail"] = (
            f"stopped at its budget ({entry['budget']:.0f} s) after {done} of "
            f"{total} timings; the ratios below are of those"
        )
    return log


def part_chapter6(r: Runner, limit: float) -> None:
    """Chapter 6's run in xpnet (CuPy), PyTorch and JAX (bench/chapter6.py)."""
    out = r.out / "chapter6.json"
    out.unlink(missing_ok=True)
    # Not through the stand-in's runner: the script starts xpnet's worker so.
    cmd = [sys.executable, str(HERE / "chapter6.py"), "--device", "gpu"]
    cmd += ["--rounds", "1", "--out", str(out), "--peer-device", r.args.peer_device]
    cmd += ["--smoke"] * r.args.smoke + ["--standin"] * r.args.standin
    entry = r.run("chapter6", "bench/chapter6.py --device gpu", cmd, limit)
    if entry["status"] == "stopped":
        entry["detail"] += "; the table below is of the runs that finished"


def main(argv=None) -> int:
    args = parse_args(argv)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S")
    out = args.out or ROOT / "runs" / "gpu" / started
    out.mkdir(parents=True, exist_ok=True)
    r = Runner(args, out)
    begin = time.monotonic()
    stages = [k for k in SHARES if k == "device" or k not in args.skip]
    budgets = plan_budgets(args, stages)
    print(
        "stage budgets: " + ", ".join(f"{k} {v:.0f} s" for k, v in budgets.items()),
        flush=True,
    )
    data = {"source": "not looked for", "dir": out}
    try:
        for stage in stages:
            # A stage may use its budget plus whatever the earlier ones left.
            used = time.monotonic() - begin
            earlier = sum(budgets[k] for k in stages[: stages.index(stage) + 1])
            limit = max(earlier - used, 0)
            if stage in budgets.overrides:
                limit = budgets[stage]  # exactly what was asked
            elif stage == stages[-1]:
                limit = r.left()  # the last stage has the rest
            if stage == "device":
                part_device(r)
                data = find_data(args, out)
            elif stage == "tests":
                part_tests(r, limit)
            elif stage == "cli":
                part_cli(r, data, limit)
            elif stage == "peers":
                part_peers(r, limit)
            elif stage == "chapter6":
                part_chapter6(r, limit)
            elif stage == "bench":
                part_bench(r, limit)
    finally:  # the report is written whatever happened, Ctrl-C included
        from gpu_report_md import peers_table, write_report

        passed = write_report(r, data, started, time.monotonic() - begin, budgets)
        if "peers" in stages:
            print("\n".join(["", *peers_table(out / "peers.jsonl"), ""]))
        print(f"report: {out / 'report.md'} (raw: {out / 'report.json'})")
    return 0 if passed else 1


def plan_budgets(args, stages: list[str]) -> Budgets:
    """Seconds per stage: ``SHARES`` of the budget (skipped stages' shares
    spread over the others), then any ``--stage-seconds`` override."""
    total = args.budget - RESERVE
    weight = sum(SHARES[k] for k in stages)
    budgets = Budgets({k: total * SHARES[k] / weight for k in stages})
    for item in args.stage_seconds:
        name, _, value = item.partition("=")
        if name not in budgets or not value.replace(".", "", 1).isdigit():
            raise SystemExit(
                f"error: --stage-seconds {item!r}: give STAGE=SECONDS, STAGE one of "
                + ", ".join(budgets)
            )
        budgets[name] = float(value)
        budgets.overrides.add(name)
    return budgets


class Budgets(dict):
    """{stage: seconds}, and which of them ``--stage-seconds`` set."""

    def __init__(self, *args):
        super().__init__(*args)
        self.overrides: set[str] = set()


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--out", type=Path, help="output folder (default runs/gpu/<UTC time>)")
    add("--budget", type=float, default=480.0, help="seconds in all (default 480)")
    add(
        "--stage-seconds",
        action="append",
        default=[],
        metavar="STAGE=SECONDS",
        help="one stage's budget instead of its share (repeatable)",
    )
    add(
        "--skip-slow-cpu",
        action="store_true",
        help="skip the CPU rows of chapter 5's run and the loop",
    )
    add("--smoke", action="store_true", help="tiny sizes")
    add("--standin", action="store_true", help="the tests' CuPy stand-in as the GPU")
    add(
        "--synthetic-data",
        action="store_true",
        help="synthetic CLI data even where real data is found",
    )
    add("--tests-k", default=None, help="pytest -k for the tests")
    add("--tests-path", action="append", help="test paths (default: tests)")
    add("--bench-k", default=None, help="pytest -k for the rows")
    add("--peer-rounds", type=int, default=3, help="rounds of the peers (default 3)")
    add(
        "--peer-device",
        choices=["cuda", "cpu"],
        default="cuda",
        help="where the peers run (cpu: a dry run of their code)",
    )
    add(
        "--skip",
        action="append",
        default=[],
        choices=[k for k in SHARES if k != "device"],
        help="skip a stage (repeatable)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
