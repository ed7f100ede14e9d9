"""The benchmark suite keeps running (tiny sizes) and its report computes right.

``pytest bench`` is not part of the normal test run (``testpaths``); these
tests run it in smoke mode so that a benchmark cannot silently rot.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pytest_benchmark") is None,
    reason='pytest-benchmark is not installed: pip install -e ".[dev]"',
)


def _run(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, XPNET_BENCH_SMOKE="1", MPLBACKEND="Agg")
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _shared_data() -> Path:
    env = os.environ.get("XPNET_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def _explain(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"


@pytest.mark.slow
def test_every_benchmark_body_runs_on_tiny_sizes():
    proc = _run(
        ["-m", "pytest", str(BENCH), "--bench-smoke", "--benchmark-disable"]
        + ["-q", "-p", "no:cacheprovider"]
    )
    assert proc.returncode == 0, _explain(proc)
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= 30, _explain(proc)


@pytest.mark.slow
def test_run_py_writes_json_table_and_plot(tmp_path):
    subset = "book or numpy-f32 or numpy-float32 or numpy-backprop"
    # OPENBLAS_* settings of the machine stay as they are in tests and CI.
    run = ["bench/run.py", "--smoke", "--keep-openblas-env", "--out", str(tmp_path)]
    proc = _run([*run, "--", "-k", subset])
    assert proc.returncode == 0, _explain(proc)
    entries = json.loads((tmp_path / "pass-1.json").read_text())["benchmarks"]
    groups = {e["group"] for e in entries}
    assert {"train-step", "train-1000", "train-ch5", "gradients"} <= groups
    for e in entries:
        info = e["extra_info"]
        assert info["smoke"] is True
        assert {"backend", "dtype", "threads", "versions", "blas", "size"} <= set(info)
    if (_shared_data() / "fashion-mnist").is_dir():
        assert any(e["extra_info"]["data"] == "fashion-mnist" for e in entries)
    assert (tmp_path / "interleaved-1.json").is_file()
    table = (tmp_path / "bench.md").read_text()
    assert "1.00x (baseline)" in table and "`numpy-f32`" in table
    assert (tmp_path / "scaling.png").stat().st_size > 1000


def _entry(name, group, size, median, **info):
    return {
        "group": group,
        "name": name,
        "fullname": f"bench/x.py::{name}",
        "params": {},
        "extra_info": {"variant": name, "size": size, **info},
        "stats": {"median": median, "iqr": median / 10, "rounds": 5},
    }


@pytest.fixture
def two_passes(tmp_path):
    """Pass 1: book 10 s, ours 5 s (0.5x); pass 2: book 20 s, ours 12 s (0.6x)."""
    paths = []
    for k, (book, ours, torch) in enumerate([(10.0, 5.0, 8.0), (20.0, 12.0, 15.0)]):
        entries = [
            _entry("book", "train-step", "s", book, baseline=True),
            _entry("ours", "train-step", "s", ours),
            _entry("torch", "train-step", "s", torch, reference="torch"),
            _entry("other-size", "train-step", "t", 1.0),
        ]
        path = tmp_path / f"pass-{k}.json"
        path.write_text(json.dumps({"benchmarks": entries}))
        paths.append(path)
    return paths


def test_report_takes_ratios_within_each_pass(two_passes):
    sys.path.insert(0, str(BENCH))
    try:
        import report
    finally:
        sys.path.remove(str(BENCH))
    summary = report.summarize(report.load_passes(two_passes))
    ours = summary["bench/x.py::ours"]
    assert ours["median"] == pytest.approx(8.5)  # median of 5 s and 12 s
    assert ours["vs_base"] == pytest.approx(0.55)  # median of 0.5 and 0.6
    assert ours["vs_torch"] == pytest.approx((5 / 8 + 12 / 15) / 2)
    assert summary["bench/x.py::other-size"]["vs_base"] is None  # no baseline there
    table = report.markdown(summary)
    assert "| `ours` | s | **8.50 s** |" in table and "0.55x" in table


def test_report_cli_rejects_missing_and_disabled_results(tmp_path):
    missing = _run(["bench/report.py", str(tmp_path / "none.json")], timeout=60)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"benchmarks": []}))
    proc = _run(["bench/report.py", str(empty)], timeout=60)
    assert proc.returncode == 2 and "--benchmark-disable" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_chapter6_runs_every_contender_in_its_own_process(tmp_path):
    out = tmp_path / "chapter6.json"
    proc = _run(["bench/chapter6.py", "--smoke", "--out", str(out)])
    assert proc.returncode == 0, _explain(proc)
    doc = json.loads(out.read_text())
    found = {(e["params"]["variant"], e["params"]["config"]) for e in doc["benchmarks"]}
    expected = {"numpy-f32", "numba-f32", "torch-f32", "jax-f32"} - {
        f"{name}-f32" for name in doc["skipped"]
    }
    assert {"numpy-f32"} <= expected  # NumPy never skips
    assert found == {(v, c) for v in expected for c in ("adam", "adam-bn")}
    for e in doc["benchmarks"]:
        info = e["extra_info"]
        assert e["group"] == "chapter6"
        assert info["iterations"] == 20 and info["smoke"] is True
        assert all(np.isfinite(info["loss_after"])) and e["stats"]["median"] > 0
    # The same initial parameters everywhere: one loss before training.
    before = {
        round(e["extra_info"]["loss_before"][0], 3)
        for e in doc["benchmarks"]
        if e["params"]["config"] == "adam"
    }
    assert len(before) == 1, before
    if expected & {"torch-f32", "jax-f32"}:  # a peer ran: the ratio line
        assert re.search(
            r"adam-bn: xpnet best \S+ / best peer \S+ = [\d.]+x", proc.stdout
        )
    if (_shared_data() / "fashion-mnist").is_dir():
        assert {e["extra_info"]["data"] for e in doc["benchmarks"]} == {"fashion-mnist"}


def test_chapter6_rejects_an_unknown_contender():
    proc = _run(["bench/chapter6.py", "--contenders", "numpy,tensorflow", "--out", "x"])
    assert proc.returncode == 2 and "tensorflow" in proc.stderr
    assert "Traceback" not in proc.stderr
