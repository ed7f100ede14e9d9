"""``bench/gpu_report.py`` end to end on the CuPy stand-in, at tiny sizes, so
that the one command meant for a GPU machine cannot rot without one."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_report_dry_run_on_the_standin(tmp_path):
    out = tmp_path / "gpu"
    cmd = [
        sys.executable, str(ROOT / "bench" / "gpu_report.py"), "--standin", "--smoke",
        "--synthetic-data", "--out", str(out), "--budget", "400",
        "--tests-path", "tests/gpu", "--tests-k", "test_detection_describes_the_device",
        "--bench-k", "cupy and float32 and not loop", "--peer-rounds", "1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"report: {out / 'report.md'}" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and report["standin"]
    names = [e["name"] for e in report["results"]]
    needed = ["detection", "train.py --device cuda", "nn.inference --device cuda"]
    needed += ["GPU checkpoint resumed on the CPU", "bench/gpu_rows.py"]
    needed += ["inference predictions, GPU against CPU", "bench/gpu_peers.py"]
    assert set(needed) <= set(names)
    tests = next(e for e in report["results"] if e["part"] == "tests")
    assert tests["log"]["collected"] == 1 and tests["log"]["passed"] == 1
    infer = next(e for e in report["results"] if e["name"].endswith("cuda"))
    assert infer["status"] == "passed"
    md = (out / "report.md").read_text()
    assert "xpnet CuPy stand-in (host)" in md and "| SGD step | float32 |" in md
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    groups = {b["group"] for b in rows if b["event"] == "row"}
    assert groups == {"gpu-train-step", "gpu-evaluate", "gpu-numgrad-fast",
                      "gpu-train-ch5"}  # fmt: skip
    # The peers ran on "cuda", here the stand-in: xpnet's row is there; PyTorch
    # and JAX (CPU builds, if installed) are skipped with their reason.
    peers = [
        json.loads(line) for line in (out / "peers.jsonl").read_text().splitlines()
    ]
    timed = {(e["variant"], e["task"]) for e in peers if e["event"] == "peer"}
    assert {("xpnet", t) for t in ("step", "evaluate", "run")} <= timed
    assert "| one SGD step |" in md
    skipped = {e["variant"] for e in peers if e["event"] == "skipped"}
    assert not skipped & {v for v, _ in timed}


SLOW_TESTS = """
import time

import pytest


@pytest.mark.gpu
@pytest.mark.parametrize("i", range(40))
def test_slow(i):
    time.sleep(0.5)
"""


def test_a_stage_past_its_budget_keeps_and_reports_what_finished(tmp_path):
    """An injected overrun: 40 tests of 0.5 s under a 6 s budget. The stage is
    interrupted (SIGINT), the tests that finished are in its log and in the
    report, which says where it stopped; the exit status says it failed."""
    slow = tmp_path / "slow" / "test_overrun.py"
    slow.parent.mkdir()
    slow.write_text(SLOW_TESTS)
    out = tmp_path / "gpu"
    cmd = [
        sys.executable, str(ROOT / "bench" / "gpu_report.py"), "--standin",
        "--smoke", "--synthetic-data", "--out", str(out),
        "--tests-path", str(slow), "--stage-seconds", "tests=6",
        "--skip", "cli", "--skip", "peers", "--skip", "bench", "--skip", "chapter6",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "stage budgets: device " in proc.stdout and "tests 6 s" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    tests = next(e for e in report["results"] if e["part"] == "tests")
    assert tests["status"] == "stopped"
    log = tests["log"]
    assert log["collected"] == 40 and 0 < log["done"] < 40
    assert log["passed"] == log["done"]
    lines = (out / "tests.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert sum(e["event"] == "test" for e in events) == log["done"]
    assert events[-1]["event"] == "finished"  # pytest ended cleanly on SIGINT
    md = (out / "report.md").read_text()
    want = f"stopped at its budget (6 s) after {log['done']} of 40 tests"
    assert want in md and "**FAILED**" in md


def test_the_budgets_fit_eight_minutes_and_are_printed():
    """The default plan: every stage's share of 480 s, summing to the budget
    less the reserve for writing the report."""
    import importlib.util

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec = importlib.util.spec_from_file_location(
            "gpu_report", ROOT / "bench" / "gpu_report.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    args = module.parse_args([])
    budgets = module.plan_budgets(args, list(module.SHARES))
    assert list(budgets) == ["device", "tests", "cli", "peers", "chapter6", "bench"]
    assert abs(sum(budgets.values()) - (480 - module.RESERVE)) < 1e-6
    assert all(v >= 15 for v in budgets.values())
    args = module.parse_args(["--skip", "bench", "--stage-seconds", "cli=30"])
    budgets = module.plan_budgets(args, ["device", "tests", "cli", "peers"])
    assert "bench" not in budgets and budgets["cli"] == 30


def test_the_loop_rows_warm_up_on_the_loops_own_code(monkeypatch):
    """The numerical-gradient loop row's warm-up runs the timed loop's calls on
    one element of every parameter: its gradients are the loop's first
    entries, and the parameters are left as they were."""
    import numpy as np

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import gpu_rows

    import nn

    rng = np.random.default_rng(0)
    x, t = rng.random((6, 12)), rng.integers(0, 3, 6)
    net = nn.TwoLayerNet(12, 5, 3, backend="numpy", rng=0)
    before = {k: v.copy() for k, v in net.params.items()}
    warm = gpu_rows._warm_loop(net, x, t)
    full = net.numerical_gradient(x, t, method="loop")
    for key, grad in warm.items():
        assert grad.shape == (1,) * full[key].ndim
        assert grad.ravel()[0] == full[key].ravel()[0]
        assert net.params[key].tobytes() == before[key].tobytes()


def test_the_peers_stage_stopped_at_its_budget_still_gives_a_report(tmp_path):
    """The peers' driver interrupted at its budget: it stops its workers, and
    the report says the stage stopped and after how many timings (none when
    the workers were still starting; on a fast machine some), with the table of
    what finished or "No peer results"."""
    _needs_a_peer()
    out = tmp_path / "gpu"
    cmd = [
        sys.executable, str(ROOT / "bench" / "gpu_report.py"), "--standin",
        "--smoke", "--synthetic-data", "--out", str(out), "--peer-device", "cpu",
        "--stage-seconds", "peers=5", "--skip", "tests", "--skip", "cli",
        "--skip", "bench", "--skip", "chapter6",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    peers = next(e for e in report["results"] if e["part"] == "peers")
    assert peers["status"] == "stopped"
    pattern = r"stopped at its budget \(5 s\) after (\d+) of (\d+|\?) "
    got = re.match(pattern, peers["detail"])
    assert got, peers["detail"]
    assert got[2] == "?" or int(got[1]) <= int(got[2]), peers["detail"]
    if int(got[1]) == 0:
        assert "No peer results" in (out / "report.md").read_text()
        assert "No peer results" in proc.stdout  # the table is printed too
    else:
        assert "No peer results" not in (out / "report.md").read_text()


def test_the_chapter6_stage_races_xpnet_on_cupy_against_the_peers(tmp_path):
    """Chapter 6's benchmark as a stage: xpnet on the stand-in's CuPy, PyTorch
    and JAX on the CPU (where installed; else skipped with the reason), and
    the report's table with xpnet's time over the best peer's."""
    out = tmp_path / "gpu"
    cmd = [
        sys.executable, str(ROOT / "bench" / "gpu_report.py"), "--standin",
        "--smoke", "--synthetic-data", "--out", str(out), "--peer-device", "cpu",
        "--skip", "tests", "--skip", "cli", "--skip", "peers", "--skip", "bench",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    stage = next(e for e in report["results"] if e["part"] == "chapter6")
    assert stage["status"] == "passed", stage
    doc = json.loads((out / "chapter6.json").read_text())
    assert doc["device"] == {"xpnet": "gpu", "peers": "cpu"}
    timed = {
        (e["params"]["variant"], e["extra_info"]["config"]) for e in doc["benchmarks"]
    }
    assert {("cupy-f32", c) for c in ("adam", "adam-bn")} <= timed
    assert all(e["stats"]["median"] > 0 for e in doc["benchmarks"])
    md = (out / "report.md").read_text()
    assert "## Chapter 6: xpnet, PyTorch and JAX on this device" in md
    rows = [line for line in md.splitlines() if line.startswith("| adam")]
    assert [r.split(" | ")[0] for r in rows] == ["| adam", "| adam-bn"]
    peers = {v for v, _ in timed} - {"cupy-f32"}
    for row in rows:  # a ratio wherever a peer ran, else "-"
        assert row.endswith("x |") if peers else row.endswith("- |"), row
    for name in {"torch", "jax"} - {v.split("-")[0] for v in peers}:
        assert f"- {name} skipped: " in md


def test_the_chapter6_stage_stopped_at_its_budget_still_gives_a_report(tmp_path):
    """chapter6.py interrupted at its budget writes the runs that finished (maybe
    none), kills its workers, and the report says the stage stopped."""
    _needs_a_peer()
    out = tmp_path / "gpu"
    cmd = [
        sys.executable, str(ROOT / "bench" / "gpu_report.py"), "--standin",
        "--smoke", "--synthetic-data", "--out", str(out), "--peer-device", "cpu",
        "--stage-seconds", "chapter6=6", "--skip", "tests", "--skip", "cli",
        "--skip", "peers", "--skip", "bench",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    stage = next(e for e in report["results"] if e["part"] == "chapter6")
    assert stage["status"] == "stopped", stage
    assert stage["detail"].startswith("stopped at its budget (6 s")
    md = (out / "report.md").read_text()
    assert "## Chapter 6: xpnet, PyTorch and JAX on this device" in md
    doc = json.loads((out / "chapter6.json").read_text())
    assert doc["stopped"] is True
    if not doc["benchmarks"]:
        assert "No chapter 6 run finished" in md


def _needs_a_peer() -> None:
    """Skip unless PyTorch or JAX is installed: without a peer, a stage's smoke
    run ends before any budget small enough to test stopping it."""
    if not any(importlib.util.find_spec(m) for m in ("torch", "jax")):
        pytest.skip("no peer library (PyTorch, JAX): the stage ends before its budget")
