"""The command-line tools with ``--device cuda``, end to end, on the CuPy stand-in.

Each tool runs unchanged in a subprocess started through
``tests/cupy_standin/run.py``, which only registers the stand-in as the
``cupy`` backend first (the library has no test switch). The data are small
synthetic IDX files, so these run everywhere in seconds; ``test_gpu_report``
runs the same commands through ``bench/gpu_report.py``.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nn.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "tests" / "cupy_standin" / "run.py"
STANDIN_GPU = "xpnet CuPy stand-in (host)"


def _gpu_report():
    spec = importlib.util.spec_from_file_location(
        "gpu_report_cli", ROOT / "bench" / "gpu_report_cli.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Synthetic Fashion-MNIST / MNIST IDX files and book-shaped weights."""
    folder = tmp_path_factory.mktemp("synthetic")
    _gpu_report().synthetic_data(folder, train=300, test=100)
    return folder


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    env["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg"))
    for var in ("XPNET_BACKEND", "XPNET_DATA_DIR", "XPNET_SAMPLE_WEIGHT"):
        env.pop(var, None)
    return env


def run(*args, env, on_gpu=True, timeout=120):
    prefix = [sys.executable] + ([str(RUNNER)] if on_gpu else [])
    return subprocess.run(
        prefix + [str(a) for a in args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def train(data, *args, env, on_gpu=True):
    fashion = ["--dataset", "fashion-mnist", "--data-dir", data / "fashion-mnist"]
    if "--resume" not in args:  # random labels: nothing to learn, on purpose
        fashion.append("--allow-not-learning")
    return run(ROOT / "train.py", *fashion, *args, env=env, on_gpu=on_gpu)


def test_train_and_resume_on_the_gpu_bit_for_bit(data, env, tmp_path):
    """(Checkpoints crossing devices: ``test_gpu_report``'s CLI part.)"""
    common = ["--seed", 5, "--eval-every", 10, "--batch-size", 20]
    straight, part = tmp_path / "straight", tmp_path / "part"
    proc = train(data, "--device", "cuda", "--iters", 40, "--out", straight, *common,
                 env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("backend: cupy") and STANDIN_GPU in first
    ck = load_checkpoint(straight)  # written from device arrays, read as NumPy
    assert ck.iteration == 40 and all(type(v) is np.ndarray for v in ck.params.values())

    # Resuming on the GPU is bit for bit an uninterrupted run.
    proc = train(data, "--device", "cuda", "--iters", 20, "--out", part, "--quiet",
                 *common, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = train(data, "--resume", part, "--iters", 40, "--device", "cuda", "--quiet",
                 env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    a, b = ck.params, load_checkpoint(part).params
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_ctrl_c_on_the_gpu_saves_a_checkpoint(data, env, tmp_path):
    out = tmp_path / "run"
    argv = [sys.executable, RUNNER, ROOT / "train.py", "--device", "cuda",
            "--dataset", "fashion-mnist", "--data-dir", data / "fashion-mnist",
            "--iters", 100000, "--eval-every", 15, "--batch-size", 20, "--seed", 4,
            "--allow-not-learning", "--out", out]  # fmt: skip
    proc = subprocess.Popen(
        [str(a) for a in argv], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    metrics = out / "metrics.csv"
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.is_file() and metrics.read_text().count("\n") > 40:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and f"--resume {out}" in stderr
    assert 0 < load_checkpoint(out).iteration < 100000


def test_divergence_on_the_gpu_stops_with_one_line(data, env, tmp_path):
    out = tmp_path / "run"
    proc = train(data, "--device", "cuda", "--lr", "1e20", "--iters", 60,
                 "--eval-every", 20, "--batch-size", 20, "--seed", 1, "--out", out,
                 env=env)  # fmt: skip
    assert proc.returncode == 1
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "training diverged" in err and "the loss is nan" in err
    ck = load_checkpoint(out)
    assert all(np.isfinite(v).all() for v in ck.params.values())


def test_inference_on_the_gpu_equals_the_cpu(data, env):
    args = ["-m", "nn.inference", "--weights", data / "book" / "sample_weight.pkl",
            "--data-dir", data / "mnist", "--no-download"]  # fmt: skip
    gpu = run(*args, "--device", "cuda", env=env)
    cpu = run(*args, "--device", "numpy", env=env, on_gpu=False)
    assert gpu.returncode == 0 and cpu.returncode == 0, gpu.stderr + cpu.stderr
    assert gpu.stdout.startswith("backend: cupy") and STANDIN_GPU in gpu.stdout

    def accuracy(text):
        return next(w for w in text.split() if w.startswith("Accuracy:"))

    assert accuracy(gpu.stdout) == accuracy(cpu.stdout)


@pytest.mark.realdata
def test_inference_on_the_gpu_gives_the_books_figure(shared_data, env):
    proc = run("-m", "nn.inference", "--device", "cuda", "--weights",
               shared_data / "book" / "sample_weight.pkl", "--data-dir",
               shared_data / "mnist", "--no-download", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Accuracy:0.9352 (9352/10000 correct)" in proc.stdout
