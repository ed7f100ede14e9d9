"""A run directory is enough to continue a run: the checkpoint records the
folder its data came from, and ``--resume RUN`` (and the command printed after
Ctrl-C, exactly as printed) reuses it."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import ROOT, TRAIN, assert_one_line_error, train

from nn.training.checkpoint import load_checkpoint, save_checkpoint
from nn.training.metrics import METRICS_NAME, read_metrics

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def linked_copy(fashion: Path, folder: Path) -> Path:
    """A folder of links to the real Fashion-MNIST files (which may be deleted)."""
    folder.mkdir(parents=True)
    for name in FILES:
        (folder / name).symlink_to(fashion / name)
    return folder


def short_run(out, data, env, *extra):
    return train("--dataset", "fashion-mnist", "--data-dir", data, "--iters", 20,
                 "--eval-every", 10, "--seed", 1, "--device", "cpu", "--quiet",
                 "--out", out, *extra, env=env)  # fmt: skip


@pytest.mark.realdata
def test_resume_without_data_dir_reads_the_recorded_folder(cli_env, fashion, tmp_path):
    data = linked_copy(fashion, tmp_path / "my data")
    out = tmp_path / "run"
    assert short_run(out, data, cli_env).returncode == 0
    ckpt = load_checkpoint(out)
    assert ckpt.data_dir == str(data.resolve()) and ckpt.dataset == "fashion-mnist"
    # cli_env has no $XPNET_DATA_DIR and an empty cache: only the record helps.
    proc = train("--resume", out, "--iters", 30, "--device", "cpu", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert "resuming at iteration 20" in proc.stdout
    assert load_checkpoint(out).iteration == 30
    # Again: the run is finished, so it says so and touches nothing.
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    proc = train("--resume", out, "--device", "cpu", env=cli_env)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.splitlines()[-1]
    assert last.startswith(
        f"nothing to do: the run in {out} already finished at iteration 30 "
        "(train acc 0."
    ) and last.endswith("give a larger --iters or --epochs to train it further")
    assert "ms/iteration" not in proc.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.realdata
def test_explicit_data_dir_wins_and_is_recorded(cli_env, fashion, tmp_path):
    first = linked_copy(fashion, tmp_path / "first")
    second = linked_copy(fashion, tmp_path / "second")
    out = tmp_path / "run"
    assert short_run(out, first, cli_env).returncode == 0
    for name in FILES:
        (first / name).unlink()  # the recorded folder no longer has the data
    proc = train("--resume", out, "--iters", 30, "--data-dir", second,
                 "--device", "cpu", "--quiet", env=cli_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert load_checkpoint(out).data_dir == str(second.resolve())


@pytest.mark.realdata
def test_recorded_folder_gone_says_so_and_names_the_flag(cli_env, fashion, tmp_path):
    data = linked_copy(fashion, tmp_path / "data")
    out = tmp_path / "run"
    assert short_run(out, data, cli_env).returncode == 0
    for name in FILES:
        (data / name).unlink()
    data.rmdir()
    proc = train("--resume", out, "--iters", 30, env=cli_env)
    err = assert_one_line_error(proc, 2, str(data.resolve()), "is gone", "--data-dir")
    assert len(err) < 300, err
    assert load_checkpoint(out).iteration == 20  # untouched


@pytest.mark.realdata
def test_checkpoint_without_the_record_still_resumes(cli_env, fashion, tmp_path):
    out = tmp_path / "run"
    assert short_run(out, fashion, cli_env).returncode == 0
    old = load_checkpoint(out)
    old.data_dir = None  # as written before the folder was recorded
    save_checkpoint(out, old)
    assert load_checkpoint(out).data_dir is None
    proc = train("--resume", out, "--iters", 30, "--data-dir", fashion,
                 "--device", "cpu", "--quiet", env=cli_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert load_checkpoint(out).data_dir == str(fashion.resolve())


@pytest.mark.realdata
@pytest.mark.slow
def test_command_printed_after_ctrl_c_works_as_printed(cli_env, fashion, tmp_path):
    data = linked_copy(fashion, tmp_path / "data")
    out = tmp_path / "a run"  # a space: the printed command must quote it
    argv = [sys.executable, str(TRAIN), "--iters", 1500, "--eval-every", 50,
            "--seed", 4, "--device", "cpu", "--out", out,
            "--dataset", "fashion-mnist", "--data-dir", data]  # fmt: skip
    proc = subprocess.Popen(
        list(map(str, argv)), env=cli_env, cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        metrics = out / METRICS_NAME
        if metrics.is_file() and metrics.read_text().count("\n") > 120:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    printed = stderr.strip().split("continue with: ", 1)[1]
    command = shlex.split(printed)
    assert command[:2] == ["python", "train.py"] and command[2:] == [
        "--resume",
        str(out),
    ]
    # Exactly the printed command; only "python" becomes this interpreter.
    done = subprocess.run(
        [sys.executable, *command[1:]], env=cli_env, cwd=ROOT,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("final train acc")
    assert read_metrics(out / METRICS_NAME).eval_iteration[-1] == 1500
