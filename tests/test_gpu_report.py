"""``bench/gpu_report.py`` end to end on the CuPy stand-in, at tiny sizes, so
that the one command meant for a GPU machine cannot rot without one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_report_dry_run_on_the_standin(tmp_path):
    out = tmp_path / "gpu"
    cmd = [
        sys.executable, str(ROOT / "bench" / "gpu_report.py"), "--standin", "--smoke",
        "--synthetic-data", "--out", str(out), "--budget", "300",
        "--tests-path", "tests/gpu", "--tests-k", "test_detection_describes_the_device",
        "--bench-k", "cupy and float32 and not loop",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"report: {out / 'report.md'}" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and report["standin"]
    names = [e["name"] for e in report["results"]]
    needed = ["detection", "train.py --device cuda", "nn.inference --device cuda"]
    needed += ["GPU checkpoint resumed on the CPU", "bench/gpu_rows.py"]
    assert set(needed) <= set(names)
    tests = next(e for e in report["results"] if e["part"] == "tests")
    assert tests["junit"]["tests"] == 1 and tests["junit"]["failures"] == 0
    md = (out / "report.md").read_text()
    assert "xpnet CuPy stand-in (host)" in md and "| SGD step | float32 |" in md
    rows = json.loads((out / "rows.json").read_text())["benchmarks"]
    groups = {b["group"] for b in rows}
    assert groups == {"gpu-train-step", "gpu-evaluate", "gpu-numgrad-fast",
                      "gpu-train-ch5"}  # fmt: skip
