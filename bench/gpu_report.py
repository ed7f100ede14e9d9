"""One command for a GPU machine: the GPU tests, CLI runs on the GPU, and CPU
against GPU benchmark rows, in one Markdown report.

    python bench/gpu_report.py                  # everything, within 8 minutes
    python bench/gpu_report.py --skip-slow-cpu  # no CPU rows for chapter 5 / the loop
    python bench/gpu_report.py --out DIR        # default runs/gpu/<UTC time>

Needs only what is installed (CuPy, NumPy, Numba, pytest, pytest-benchmark):
no network and no ``pip install``. Every part runs even when an earlier one
fails, each under its share of the time budget (``--budget``, 480 s):

1. ``pytest -m gpu tests`` (no ``-x``) with ``XPNET_REQUIRE_GPU=1``: every
   CuPy case of the suite plus ``tests/gpu``; ``tests.xml`` is its JUnit file.
2. The CLIs on the GPU: ``train.py --device cuda``, its checkpoint resumed on
   the CPU and that one resumed on the GPU again, a diverging run, and
   ``python -m nn.inference`` on the GPU and on the CPU (same accuracy). Data:
   ``$XPNET_SHARED_DATA`` or ``../shared/data`` when present, else small
   synthetic IDX files and weights written into the output folder.
3. ``bench/gpu_rows.py``: the SGD step, chapter 5's run, the evaluation and
   the numerical gradient (loop and fast) on NumPy, Numba and CuPy, float32
   and float64 (``rows.json``, pytest-benchmark's format).

Writes ``report.md`` and ``report.json`` (every command, exit status, time
and output tail) into the output folder and prints where. Exit status 0 when
every part passed, else 1.

``--standin`` runs everything with the tests' CuPy stand-in as the GPU and
``--smoke`` shrinks every size: ``tests/test_gpu_report.py`` runs both, so
this script cannot rot on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STANDIN_RUNNER = ROOT / "tests" / "cupy_standin" / "run.py"
TAIL = 3000  # characters of each command's output kept in report.json
#: Seconds kept back for writing the report.
RESERVE = 10
#: Share of the budget each part may use, in order (what is left over passes on).
SHARES = {"device": 0.05, "tests": 0.45, "cli": 0.15, "bench": 0.35}


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
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
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
        names anything else that is wrong."""
        timeout = min(limit, self.left())
        entry = {"part": part, "name": name, "cmd": " ".join(cmd)}
        if timeout < 5:
            entry.update(status="not run", detail="time budget spent", seconds=0.0)
            self.results.append(entry)
            print(f"[{part}] {name}: not run (time budget spent)", flush=True)
            return entry
        start = time.monotonic()
        try:
            proc = subprocess.run(
                cmd,
                cwd=ROOT,
                env={**self.env, **(env or {})},
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            problem = None
            if proc.returncode != rc:
                problem = f"exit status {proc.returncode} (expected {rc})"
            if problem is None and check is not None:
                problem = check(proc)
            entry.update(rc=proc.returncode, stdout=proc.stdout[-TAIL:])
            entry.update(stderr=proc.stderr[-TAIL:])
        except subprocess.TimeoutExpired as exc:
            problem = f"timed out after {timeout:.0f} s"
            entry.update(rc=None, stdout=_text(exc.stdout)[-TAIL:])
            entry.update(stderr=_text(exc.stderr)[-TAIL:])
        entry["seconds"] = round(time.monotonic() - start, 2)
        entry["status"] = "failed" if problem else "passed"
        entry["detail"] = problem or ""
        self.results.append(entry)
        print(
            f"[{part}] {name}: {entry['status']} ({entry['seconds']} s)"
            + (f": {problem}" if problem else ""),
            flush=True,
        )
        return entry


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


# -- data ---------------------------------------------------------------------
def _write_idx(path: Path, array) -> None:
    import numpy as np

    array = np.ascontiguousarray(array, dtype=np.uint8)
    head = b"\x00\x00\x08" + bytes([array.ndim])
    head += b"".join(struct.pack(">i", n) for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(head + array.tobytes())


def synthetic_data(folder: Path, train: int, test: int) -> dict:
    """MNIST-shaped IDX files (``fashion-mnist`` and ``mnist`` folders) and the
    book's weight shapes, random: the CLIs run the same code on them."""
    import numpy as np

    rng = np.random.default_rng(0)
    for name in ("fashion-mnist", "mnist"):
        d = folder / name
        d.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", train), ("t10k", test)):
            images = rng.integers(0, 256, (n, 28, 28)) * (rng.random((n, 28, 28)) < 0.2)
            _write_idx(d / f"{split}-images-idx3-ubyte.gz", images)
            _write_idx(d / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    sizes = [784, 50, 100, 10]
    weights = {}
    for i in range(3):
        weights[f"W{i + 1}"] = rng.standard_normal(sizes[i : i + 2]).astype("float32")
        weights[f"b{i + 1}"] = np.zeros(sizes[i + 1], dtype="float32")
    book = folder / "book"
    book.mkdir(exist_ok=True)
    with open(book / "sample_weight.pkl", "wb") as f:
        pickle.dump(weights, f)
    return {"source": f"synthetic ({train} train / {test} test rows)", "dir": folder}


def find_data(args, out: Path) -> dict:
    env = os.environ.get("XPNET_SHARED_DATA")
    for base in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "data"]:
        needed = [base / "fashion-mnist" / "train-images-idx3-ubyte.gz"]
        needed += [base / "mnist" / "t10k-images-idx3-ubyte.gz"]
        needed += [base / "book" / "sample_weight.pkl"]
        if not args.synthetic_data and all(p.is_file() for p in needed):
            return {"source": f"real ({base})", "dir": base}
    rows = (240, 100) if args.smoke else (6000, 1000)
    return synthetic_data(out / "data", *rows)


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
    xml = r.out / "tests.xml"
    paths = r.args.tests_path or ["tests"]
    cmd = r.python(
        "-m",
        "pytest",
        "-m",
        "gpu",
        *paths,
        "-p",
        "no:cacheprovider",
        "-q",
        "-rfE",
        f"--junitxml={xml}",
    )
    if r.args.tests_k:
        cmd += ["-k", r.args.tests_k]
    # On the stand-in there is no GPU to require: the suite's fixture uses it.
    env = {} if r.args.standin else {"XPNET_REQUIRE_GPU": "1"}
    entry = r.run("tests", "pytest -m gpu " + " ".join(paths), cmd, limit, env=env)
    entry["junit"] = junit_summary(xml)


def junit_summary(path: Path) -> dict:
    """Counts and the failing test ids of a JUnit XML file."""
    if not path.is_file():
        return {}
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {
        k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")
    }
    failing = []
    for case in suite.iter("testcase"):
        bad = case.find("failure")
        bad = bad if bad is not None else case.find("error")
        if bad is not None:
            message = (bad.get("message") or "").splitlines()[:1]
            failing.append(
                f"{case.get('classname')}::{case.get('name')}: "
                + (message[0] if message else "")
            )
    counts["failing"] = failing
    return counts


def _expect(pattern: str):
    def check(proc):
        if not re.search(pattern, proc.stdout + proc.stderr):
            return f"output lacks {pattern!r}"
        return None

    return check


def part_cli(r: Runner, data: dict, limit: float) -> None:
    d = Path(data["dir"])
    run = r.out / "cli" / "run"
    shutil.rmtree(run.parent, ignore_errors=True)
    iters = (20, 30, 40, 10) if r.args.smoke else (400, 600, 800, 200)
    fashion = ["--dataset", "fashion-mnist", "--data-dir", d / "fashion-mnist"]
    # Synthetic data has random labels: nothing to learn, and that is fine here.
    train = [ROOT / "train.py", *fashion, "--quiet", "--allow-not-learning"]
    # The first run on a fresh machine compiles CuPy's kernels (NVRTC, then
    # cached on disk): give each run a minute if the budget has it.
    each = max(limit / 7, 60)
    done = r"final train acc"
    r.run(
        "cli",
        "train.py --device cuda",
        r.python(
            *train,
            "--device",
            "cuda",
            "--iters",
            iters[0],
            "--eval-every",
            iters[3],
            "--seed",
            5,
            "--out",
            run,
        ),
        each,
        check=_expect(done),
    )
    r.run(
        "cli",
        "GPU checkpoint resumed on the CPU",
        r.python(
            ROOT / "train.py",
            "--resume",
            run,
            "--iters",
            iters[1],
            "--device",
            "cpu",
            "--quiet",
            *fashion,
        ),
        each,
        check=_expect(done),
    )
    r.run(
        "cli",
        "CPU checkpoint resumed on the GPU",
        r.python(
            ROOT / "train.py",
            "--resume",
            run,
            "--iters",
            iters[2],
            "--device",
            "cuda",
            "--quiet",
            *fashion,
        ),
        each,
        check=_expect(done),
    )
    r.run(
        "cli",
        "checkpoint read back on both devices",
        r.python("-c", _CHECKPOINT_CHECK, run, iters[2]),
        each,
    )
    r.run(
        "cli",
        "train.py --device cuda diverging (lr 1e20)",
        r.python(
            *train,
            "--device",
            "cuda",
            "--iters",
            iters[0],
            "--lr",
            "1e20",
            "--eval-every",
            iters[3],
            "--seed",
            1,
            "--out",
            r.out / "cli" / "diverge",
        ),
        each,
        check=_expect("training diverged"),
        rc=1,
    )
    infer = [
        "-m",
        "nn.inference",
        "--weights",
        d / "book" / "sample_weight.pkl",
        "--data-dir",
        d / "mnist",
        "--no-download",
    ]
    gpu = r.run(
        "cli",
        "nn.inference --device cuda",
        r.python(*infer, "--device", "cuda"),
        each,
        check=_expect(r"Accuracy:"),
    )
    cpu = r.run(
        "cli",
        "nn.inference --device numpy",
        r.python(*infer, "--device", "numpy"),
        each,
        check=_expect(r"Accuracy:"),
    )
    _same_accuracy(gpu, cpu)


_CHECKPOINT_CHECK = """
import sys, numpy as np, backend as B
from nn.training.checkpoint import load_checkpoint
from nn.two_layer_net import TwoLayerNet
run, iters = sys.argv[1], int(sys.argv[2])
ck = load_checkpoint(run)
assert ck.iteration == iters, (ck.iteration, iters)
x = np.random.default_rng(0).random((64, 784)).astype(np.float32)
t = np.arange(64) % 10
counts = []
for name in ("numpy", "cupy"):
    be = B.get_backend(name)
    p = ck.params
    net = TwoLayerNet(784, p["W1"].shape[1], 10, backend=be, dtype=p["W1"].dtype.name)
    net.params.update({k: be.asarray(v) for k, v in p.items()})
    counts.append(net.count_correct(be.asarray(x), be.asarray(t))[0])
print("iteration", ck.iteration, "correct on numpy / cupy:", counts)
assert abs(counts[0] - counts[1]) <= 1, counts
"""


def _same_accuracy(gpu: dict, cpu: dict) -> None:
    found = [re.search(r"Accuracy:\S+", e.get("stdout", "")) for e in (gpu, cpu)]
    if all(found) and found[0].group() != found[1].group():
        gpu["status"] = "failed"
        gpu["detail"] = f"GPU {found[0].group()} but CPU {found[1].group()}"


def part_bench(r: Runner, limit: float) -> Path:
    rows = r.out / "rows.json"
    cmd = r.python(
        "-m",
        "pytest",
        HERE / "gpu_rows.py",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--benchmark-json={rows}",
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
    r.run("bench", "bench/gpu_rows.py", cmd, limit, env=env)
    return rows


# -- the report ---------------------------------------------------------------
OPERATION_NAMES = {
    "gpu-train-step": "SGD step",
    "gpu-evaluate": "evaluation (train + test accuracy)",
    "gpu-numgrad-fast": "numerical gradient, fast",
    "gpu-numgrad-loop": "numerical gradient, loop",
    "gpu-train-ch5": "chapter 5's run (nn.Trainer)",
}


def bench_table(rows_path: Path) -> list[str]:
    if not rows_path.is_file():
        return ["No benchmark results (see the bench entry below)."]
    data = json.loads(rows_path.read_text())
    times: dict[tuple, dict] = {}
    size = ""
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        key = (b.get("group"), info.get("dtype"))
        times.setdefault(key, {})[info.get("backend")] = b["stats"]["median"]
        size = info.get("size", size)
    lines = [
        f"Median seconds per call ({size}); speed-up = CPU time / CuPy time.",
        "",
        "| operation | dtype | NumPy | Numba | CuPy | vs NumPy | vs best CPU |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for group, label in OPERATION_NAMES.items():
        for dtype in ("float32", "float64"):
            row = times.get((group, dtype), {})
            cells = [_seconds(row.get(n)) for n in ("numpy", "numba", "cupy")]
            gpu = row.get("cupy")
            cpu = [row[n] for n in ("numpy", "numba") if row.get(n)]
            vs_numpy = f"{row['numpy'] / gpu:.1f}x" if gpu and row.get("numpy") else ""
            vs_best = f"{min(cpu) / gpu:.1f}x" if gpu and cpu else ""
            lines.append(
                f"| {label} | {dtype} | "
                + " | ".join(cells)
                + f" | {vs_numpy} | {vs_best} |"
            )
    return lines


def _seconds(value) -> str:
    if value is None:
        return "-"
    return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"


def write_report(r: Runner, data: dict, rows: Path, started: str, total: float):
    passed = all(e["status"] == "passed" for e in r.results)
    device = next((e for e in r.results if e["name"] == "detection"), {})
    md = [
        "# xpnet GPU report",
        "",
        f"- started {started} UTC, {total:.0f} s in all; overall: "
        + ("**passed**" if passed else "**FAILED**"),
        "- device: " + (device.get("stdout", "").strip().splitlines() or ["?"])[0],
        f"- data for the CLI runs: {data['source']}",
        f"- mode: {'stand-in (dry run)' if r.args.standin else 'real GPU'}"
        + (", smoke sizes" if r.args.smoke else ""),
        "",
        "## Results",
        "",
        "| part | check | status | seconds | detail |",
        "|---|---|---|---:|---|",
    ]
    for e in r.results:
        detail = e.get("detail", "")
        junit = e.get("junit")
        if junit:
            detail = (
                f"{junit['tests']} tests, {junit['failures']} failed, "
                f"{junit['errors']} errors, {junit['skipped']} skipped " + detail
            )
        md.append(
            f"| {e['part']} | {e['name']} | {e['status']} | {e['seconds']} | {detail} |"
        )
    failing = [f for e in r.results for f in (e.get("junit") or {}).get("failing", [])]
    if failing:
        md += ["", "### Failing tests", ""] + [f"- `{f}`" for f in failing]
    md += ["", "## CPU against GPU", ""] + bench_table(rows)
    md += [
        "",
        "Raw data: `report.json` (every command and its output tail), "
        "`rows.json` (pytest-benchmark), `tests.xml` (JUnit).",
    ]
    (r.out / "report.md").write_text("\n".join(md) + "\n")
    raw = {
        "started": started,
        "seconds": round(total, 1),
        "passed": passed,
        "standin": r.args.standin,
        "smoke": r.args.smoke,
        "data": data["source"],
        "results": r.results,
    }
    (r.out / "report.json").write_text(json.dumps(raw, indent=1, default=str))
    return passed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default runs/gpu/<UTC time>)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=480.0,
        help="seconds for everything (default 480)",
    )
    parser.add_argument(
        "--skip-slow-cpu",
        action="store_true",
        help="skip the CPU rows of chapter 5's run and the loop",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument(
        "--standin",
        action="store_true",
        help="the tests' CuPy stand-in as the GPU (dry run)",
    )
    parser.add_argument(
        "--synthetic-data",
        action="store_true",
        help="synthetic CLI data even where real data is found",
    )
    parser.add_argument("--tests-k", default=None, help="pytest -k for the tests")
    parser.add_argument(
        "--tests-path", action="append", help="test paths (default: tests)"
    )
    parser.add_argument("--bench-k", default=None, help="pytest -k for the rows")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["tests", "cli", "bench"],
        help="skip a part",
    )
    args = parser.parse_args(argv)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S")
    out = args.out or ROOT / "runs" / "gpu" / started
    out.mkdir(parents=True, exist_ok=True)
    r = Runner(args, out)
    begin = time.monotonic()
    budget = args.budget - RESERVE

    def share(part):  # this part's share, plus whatever earlier parts left over
        used = time.monotonic() - begin
        before = sum(v for k, v in SHARES.items() if k == part or _before(k, part))
        return max(budget * before - used, 0) if part != "bench" else r.left()

    part_device(r)
    data = find_data(args, out)
    if "tests" not in args.skip:
        part_tests(r, share("tests"))
    if "cli" not in args.skip:
        part_cli(r, data, share("cli"))
    rows = out / "rows.json"
    if "bench" not in args.skip:
        rows = part_bench(r, share("bench"))
    passed = write_report(r, data, rows, started, time.monotonic() - begin)
    print(f"report: {out / 'report.md'} (raw: {out / 'report.json'})")
    return 0 if passed else 1


def _before(k: str, part: str) -> bool:
    order = list(SHARES)
    return order.index(k) < order.index(part)


if __name__ == "__main__":
    sys.exit(main())
