"""train.py end to end: real Fashion-MNIST runs, resume, Ctrl-C, bad input."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import backend as B
from nn.training.checkpoint import CHECKPOINT_NAME, FORMAT_VERSION, load_checkpoint
from nn.training.metrics import METRICS_NAME, read_metrics
from nn.training.progress import SilentReporter
from nn.training.trainer import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[3]
TRAIN = ROOT / "train.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory):
    """Environment for train.py: a private data cache, headless matplotlib."""
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    env["MPLBACKEND"] = "Agg"
    env.pop("XPNET_DATA_DIR", None)
    env.pop("XPNET_BACKEND", None)
    return env


@pytest.fixture(scope="session")
def fashion(shared_data):
    path = shared_data / "fashion-mnist"
    assert (path / "train-images-idx3-ubyte.gz").is_file(), f"{path} is incomplete"
    return path


def train(*args, env, timeout=180, data=None) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(TRAIN), *map(str, args)]
    if data is not None:
        argv += ["--dataset", "fashion-mnist", "--data-dir", str(data)]
    return subprocess.run(
        argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(proc, code: int, *needles: str) -> str:
    assert proc.returncode == code, proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("train.py: error: ")
    for needle in needles:
        assert needle in err
    return err


def snapshot(folder: Path) -> dict:
    """{relative path: sha256} of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def checkpoint_params(out: Path) -> dict:
    return load_checkpoint(out).params


# -- flags and bad input (no data needed) -----------------------------------


def test_help_documents_every_flag_with_its_default(cli_env):
    proc = train("--help", env=cli_env)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for flag in (
        "--device", "--dataset", "--data-dir", "--hidden-size", "--activation",
        "--iters", "--epochs", "--batch-size", "--lr", "--grad", "--dtype",
        "--seed", "--eval-every", "--out", "--resume", "--quiet",
        "--hidden-sizes", "--optimizer", "--weight-init", "--weight-decay",
        "--dropout", "--batchnorm",
    ):  # fmt: skip
        assert flag in text
    for default in (
        "(default: auto)", "(default: 50)", "(default: 10000)", "(default: 100)",
        "(default: 0.1)", "default: float32", "default: relu", "(default: backprop)",
        "default: one epoch",
    ):  # fmt: skip
        assert default in text
    assert "{auto,cpu,numba,cuda,numpy,cupy}" in text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--iters", "0"], "--iters: must be at least 1"),
        (["--batch-size", "-5"], "--batch-size: must be at least 1"),
        (["--hidden-size", "x"], "--hidden-size: 'x' is not an integer"),
        (["--lr", "abc"], "--lr: 'abc' is not a number"),
        (["--lr", "-1"], "--lr: must be a positive number"),
        (["--lr", "nan"], "--lr: must be a positive number"),
        (["--eval-every", "0"], "--eval-every: must be at least 1"),
        (["--seed", "-3"], "--seed: must be non-negative"),
        (["--device", "tpu"], "--device: invalid choice: 'tpu'"),
        (["--dataset", "cifar"], "--dataset: invalid choice"),
        (["--iters", "5", "--epochs", "1"], "not allowed with argument"),
        (["--resume"], "--resume without RUN needs --out"),
        (["--hidden-sizes", "100,0"], "--hidden-sizes: every hidden layer width"),
        (["--hidden-sizes", "100,x"], "--hidden-sizes: '100,x' is not a comma"),
        (["--hidden-sizes", ""], "--hidden-sizes: '' is not a comma"),
        (["--hidden-size", "5", "--hidden-sizes", "5,5"], "not allowed with"),
        (["--optimizer", "adamw"], "--optimizer: invalid choice: 'adamw'"),
        (["--weight-init", "lecun"], "--weight-init: 'lecun' is neither a number"),
        (["--weight-init", "-1"], "--weight-init: must be a positive number"),
        (["--weight-decay", "-0.1"], "--weight-decay: must be a number >= 0"),
        (["--dropout", "1"], "--dropout: must be a number in [0, 1)"),
        (["--dropout", "-0.5"], "--dropout: must be a number in [0, 1)"),
        (["--batchnorm", "--batch-size", "1"], "batchnorm needs a batch size of 2"),
    ],
)
def test_bad_flags_give_one_line_and_exit_2(cli_env, tmp_path, args, needle):
    out = [] if args == ["--resume"] else ["--out", tmp_path / "run"]
    proc = train(*args, *out, env=cli_env)
    assert_one_line_error(proc, 2, needle)
    assert not (tmp_path / "run").exists()


def test_missing_data_dir(cli_env, tmp_path):
    proc = train(
        "--data-dir", tmp_path / "nope", "--out", tmp_path / "run", env=cli_env
    )
    assert_one_line_error(proc, 2, "--data-dir", "does not exist")
    assert not (tmp_path / "run").exists()


def test_unwritable_out(cli_env, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep me")
    proc = train("--out", blocker / "run", env=cli_env)
    assert_one_line_error(proc, 2, "--out", "not writable")
    proc = train("--out", blocker, env=cli_env)
    assert_one_line_error(proc, 2, "is not a directory")
    assert blocker.read_text() == "keep me"


def make_run(out: Path, features: int = 784, hidden: int = 8) -> None:
    """A small finished run in ``out`` (synthetic data), for the resume checks."""
    rng = np.random.default_rng(0)
    x = rng.random((40, features), dtype=np.float32)
    t = rng.integers(0, 10, 40)
    t[:10] = np.arange(10)
    Trainer(
        (x, t),
        (x, t),
        TrainConfig(iters=4, hidden_size=hidden, seed=1),
        out_dir=out,
        reporter=SilentReporter(),
    ).fit()


def test_out_holding_a_run_is_refused_without_resume(cli_env, tmp_path):
    make_run(tmp_path)
    before = snapshot(tmp_path)
    proc = train("--out", tmp_path, env=cli_env)
    assert_one_line_error(proc, 2, "already holds a run", f"--resume {tmp_path}")
    assert snapshot(tmp_path) == before


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _newer_version(path: Path) -> None:
    with np.load(path) as data:
        arrays = dict(data)
    arrays["format_version"] = np.int64(FORMAT_VERSION + 1)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize(
    ("damage", "extra", "needle"),
    [
        (_truncate, [], "truncated or corrupt"),
        (_newer_version, [], "newer than this xpnet"),
        (None, ["--hidden-size", "50"], "--hidden-size 50 differs"),
        (None, ["--lr", "0.5"], "--lr 0.5 differs"),
        (None, ["--optimizer", "adam"], "--optimizer adam differs"),
        (None, ["--hidden-sizes", "8,8"], "--hidden-sizes 8,8 differs"),
        (None, ["--batchnorm"], "--batchnorm True differs"),
        (None, ["--dropout", "0.5"], "--dropout 0.5 differs"),
    ],
)
def test_bad_resume_checkpoint(cli_env, tmp_path, damage, extra, needle):
    make_run(tmp_path)
    if damage is not None:
        damage(tmp_path / CHECKPOINT_NAME)
    before = snapshot(tmp_path)
    proc = train("--resume", tmp_path, *extra, env=cli_env)
    assert_one_line_error(proc, 2, "--resume" if damage else needle, needle)
    assert snapshot(tmp_path) == before


def test_explicit_cuda_without_gpu_fails_and_never_falls_back(cli_env, tmp_path):
    # The real CuPy, as the child process sees it: the backend registry of this
    # process may hold the tests' stand-in.
    from backend.cupy import CuPyBackend

    try:
        CuPyBackend()
        pytest.skip("a usable CUDA GPU is present")
    except B.BackendUnavailableError as exc:
        reason = str(exc)
    proc = train("--device", "cuda", "--out", tmp_path / "run", env=cli_env)
    assert_one_line_error(proc, 1, "--device cuda:", reason)
    assert proc.stdout == "" and not (tmp_path / "run").exists()


# -- real runs on Fashion-MNIST ----------------------------------------------


@pytest.mark.realdata
def test_short_run_end_to_end(cli_env, fashion, tmp_path):
    out = tmp_path / "run"
    proc = train("--iters", 200, "--eval-every", 100, "--seed", 5, "--out", out,
                 env=cli_env, data=fashion)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("backend: ") for line in lines) == 1
    assert "--device auto" in lines[0]  # auto says what it chose and why
    evals = [line for line in lines if "train acc, test acc |" in line]
    assert len(evals) == 3  # iterations 0, 100, 200
    summary = lines[-1]
    assert summary.startswith("final train acc") and "200 iterations" in summary
    assert "ms/iteration" in summary and summary.endswith(f"-> {out}")
    m = read_metrics(out / METRICS_NAME)
    assert m.iteration == list(range(1, 201)) and m.eval_iteration == [0, 100, 200]
    assert 0.6 < m.test_acc[-1] < 0.9 and m.loss[-1] < m.loss[0]
    assert f"{m.test_acc[-1]:.4f}" in summary
    ckpt = load_checkpoint(out)
    assert (ckpt.iteration, ckpt.dataset) == (200, "fashion-mnist")
    assert ckpt.config["seed"] == 5 and ckpt.params["W1"].shape == (784, 50)
    for name in ("loss.png", "accuracy.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC


@pytest.mark.realdata
def test_quiet_prints_only_the_summary(cli_env, fashion, tmp_path):
    proc = train("--epochs", 1, "--batch-size", 6000, "--quiet", "--device", "cpu",
                 "--out", tmp_path / "q", env=cli_env, data=fashion)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    (line,) = proc.stdout.splitlines()
    assert line.startswith("final train acc") and "10 iterations" in line


@pytest.mark.realdata
@pytest.mark.slow
def test_resume_is_bit_for_bit(cli_env, fashion, tmp_path):
    common = ["--device", "cpu", "--seed", 11, "--eval-every", 40, "--quiet"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert train(*common, "--iters", 150, "--out", full, env=cli_env,
                 data=fashion).returncode == 0  # fmt: skip
    assert train(*common, "--iters", 70, "--out", part, env=cli_env,
                 data=fashion).returncode == 0  # fmt: skip
    proc = train("--resume", part, "--iters", 150, "--quiet", "--device", "cpu",
                 env=cli_env, data=fashion)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    a, b = checkpoint_params(full), checkpoint_params(part)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    ma, mb = read_metrics(full / METRICS_NAME), read_metrics(part / METRICS_NAME)
    assert ma.loss == mb.loss and len(mb.loss) == 150


@pytest.mark.realdata
@pytest.mark.slow
def test_ctrl_c_saves_and_resume_finishes_identically(cli_env, fashion, tmp_path):
    out = tmp_path / "run"
    argv = [sys.executable, str(TRAIN), "--iters", 100000, "--eval-every", 50,
            "--seed", 4, "--device", "cpu", "--out", out,
            "--dataset", "fashion-mnist", "--data-dir", fashion]  # fmt: skip
    proc = subprocess.Popen(
        list(map(str, argv)), env=cli_env, cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    metrics = out / METRICS_NAME
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.is_file() and metrics.read_text().count("\n") > 120:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and f"--resume {out}" in stderr
    ckpt = load_checkpoint(out)
    m = read_metrics(out / METRICS_NAME)
    stopped = ckpt.iteration
    assert 0 < stopped < 100000 and m.iteration[-1] == stopped
    assert m.iteration == list(range(1, stopped + 1))
    target = stopped + 30
    resumed = train("--resume", out, "--iters", target, "--quiet", "--device", "cpu",
                    env=cli_env, data=fashion)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    ref = tmp_path / "ref"
    proc = train("--iters", target, "--eval-every", 50, "--seed", 4, "--device", "cpu",
                 "--quiet", "--out", ref, env=cli_env, data=fashion)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    a, b = checkpoint_params(ref), checkpoint_params(out)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("lr", "needle"),
    [
        pytest.param("10", "every hidden ReLU unit is dead", marks=pytest.mark.slow),
        ("1e20", "the loss is nan"),
    ],
)
def test_divergence_stops_and_keeps_last_good_checkpoint(
    cli_env, fashion, tmp_path, lr, needle
):
    out = tmp_path / "run"
    # lr 10: all 50 ReLUs are dead by iteration 500 (measured with seed 1).
    args = ["--lr", lr, "--iters", 1200, "--eval-every", 100, "--seed", 1]
    proc = train(*args, "--device", "cpu", "--out", out, env=cli_env, data=fashion)
    assert_one_line_error(proc, 1, "training diverged", needle, "--lr")
    ckpt = load_checkpoint(out)
    assert ckpt.iteration < 1200
    assert all(np.isfinite(v).all() for v in ckpt.params.values())
    assert f"(iteration {ckpt.iteration})" in proc.stderr


@pytest.mark.realdata
def test_numerical_gradient_runs(cli_env, fashion, tmp_path):
    proc = train("--grad", "numerical", "--iters", 2, "--hidden-size", 4,
                 "--batch-size", 10, "--device", "cpu", "--quiet", "--out",
                 tmp_path / "n", env=cli_env, data=fashion)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ckpt = load_checkpoint(tmp_path / "n")
    assert ckpt.config["grad"] == "numerical" and ckpt.iteration == 2


@pytest.mark.realdata
@pytest.mark.slow
def test_default_run_converges(cli_env, fashion, tmp_path):
    """The book's default configuration (784-50-10 ReLU, batch 100, lr 0.1,
    float32, --device auto) on Fashion-MNIST, cut to 4000 of its 10000 steps
    to keep the suite fast. Measured with seed 0: test accuracy 0.859 here
    (numpy 0.8594, numba 0.8602), 0.869 after the full 10000 steps.
    Evaluating less often leaves the trajectory unchanged (evaluations draw no
    random numbers).
    """
    out = tmp_path / "run"
    proc = train("--seed", 0, "--iters", 4000, "--eval-every", 5000, "--quiet",
                 "--out", out, env=cli_env, data=fashion, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    m = read_metrics(out / METRICS_NAME)
    assert m.eval_iteration == [0, 4000]
    assert m.test_acc[0] < 0.2
    assert m.test_acc[-1] >= 0.845 and m.train_acc[-1] >= 0.86


@pytest.mark.realdata
def test_batch_size_comparison_example(cli_env, fashion, tmp_path):
    png = tmp_path / "cmp.png"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "batch_size_comparison.py"),
         "--iters", "60", "--device", "cpu", "--dataset", "fashion-mnist",
         "--data-dir", str(fashion), "--out", str(png)],
        env=cli_env, cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("batch")]
    assert [line.split(":")[0].split()[-1] for line in lines] == ["10", "100"]
    assert png.read_bytes()[:8] == PNG_MAGIC


CH6_FLAGS = ["--hidden-sizes", "32,32", "--optimizer", "adam", "--weight-init", "he",
             "--weight-decay", "0.0001", "--dropout", "0.1", "--batchnorm"]  # fmt: skip


@pytest.mark.realdata
def test_chapter6_flags_train_and_resume_bit_for_bit(cli_env, fashion, tmp_path):
    common = [*CH6_FLAGS, "--device", "cpu", "--seed", 4, "--eval-every", 30,
              "--batch-size", 50, "--quiet"]  # fmt: skip
    full, part = tmp_path / "full", tmp_path / "part"
    proc = train(*common, "--iters", 60, "--out", full, env=cli_env, data=fashion)
    assert proc.returncode == 0, proc.stderr
    m = read_metrics(full / METRICS_NAME)
    assert m.test_acc[-1] > 0.5 and m.loss[-1] < m.loss[0]  # 60 Adam steps learn
    ckpt = load_checkpoint(full)
    assert ckpt.config["optimizer"] == "adam" and ckpt.config["lr"] == 0.001
    assert ckpt.params["W3"].shape == (32, 10) and "gamma2" in ckpt.params
    assert train(*common, "--iters", 25, "--out", part, env=cli_env,
                 data=fashion).returncode == 0  # fmt: skip
    proc = train("--resume", part, "--iters", 60, "--quiet", "--device", "cpu",
                 "--optimizer", "adam", env=cli_env, data=fashion)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    a, b = checkpoint_params(full), checkpoint_params(part)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    ma, mb = read_metrics(full / METRICS_NAME), read_metrics(part / METRICS_NAME)
    assert ma.loss == mb.loss and len(mb.loss) == 60
