"""``bench/gpu_host_time.py`` runs on the CuPy stand-in and reports what it
says: the eager step's 7 launches against one graph launch per chunk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_host_time_rows(tmp_path):
    out = tmp_path / "host_time.json"
    env = dict(os.environ)
    env.pop("XPNET_CUDA_GRAPHS", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_host_time.py"),
         "--train-size", "2000", "--epochs", "2", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "estimate of host time per step on a GPU (not measured)" in proc.stdout
    rows = json.loads(out.read_text())
    eager, graph = rows["eager"], rows["graph"]
    assert eager["steps"] == graph["steps"] == 40  # 2 epochs of 20 steps
    assert eager["launches_per_step"] == 7 and eager["host_calls"] == 40
    # One chunk per epoch (20 steps, under the loop's 100-step flush).
    assert graph["host_calls"] == 2 and graph["launches_per_step"] == 2 / 40
    for row in (eager, graph):
        assert row["cpu_us_per_step"] > 0 and row["python_us_per_step"] > 0
    est = rows["estimate_us_per_step"]
    assert est["steps_per_graph_launch"] == 20
    # Seven launches at the lowest assumed cost already outweigh a replay.
    assert est["eager"][0] > 7 * 4.0 and est["eager"][0] < est["eager"][1]
    assert est["graph"][1] < est["eager"][0]
