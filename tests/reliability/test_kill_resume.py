"""SIGKILL during training never costs more than the steps since the last checkpoint.

Short real runs (Fashion-MNIST cut to 300 images, hidden size 8, 60 steps,
a checkpoint every 5) are killed with SIGKILL, either at a chosen file-system
event (fault_runner.py: in the middle of a checkpoint's bytes, just before
its rename, in a metrics append, ...) or after a random delay. Each time the
run directory holds only a loadable checkpoint, a metrics file whose rows
all equal the uninterrupted run's, and at most a hidden temporary file; and
``--resume`` finishes with bit-for-bit the uninterrupted run's final weights
and exactly its metrics rows.
"""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest
from reliability_support import (
    assert_rows_match,
    check_faulted_run,
    child_env,
    fault_points,
    finish_and_compare,
    run_train,
    tiny_train_args,
    train_command,
)

from nn.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
from nn.training.metrics import METRICS_NAME, read_metrics

#: Runs killed at a chosen file-system event, by kind of event (see fault_runner).
KILL_PLAN = {"file-write": 4, "os.write": 2, "fsync": 2, "replace": 2}
KILL_POINTS = sum(KILL_PLAN.values())
#: Runs killed after a random delay (README table).
RANDOM_KILLS = 6
#: Seconds fault_runner sleeps at every file-system event in the random-kill
#: runs, so that a tiny run outlasts the random delay before its kill.
EVENT_DELAY = 0.02
KILLED_RUNS = KILL_POINTS + RANDOM_KILLS
#: Damage done to metrics.csv before a resume (README table).
METRICS_DAMAGE = ["random bytes", "cut mid-row", "garbage mid-file", "rows deleted"]
SEED = 20261122


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("index", range(KILL_POINTS))
def test_kill_at_a_file_event_then_resume(index, tiny_data, reference_run, tmp_path):
    kind, event = fault_points(KILL_PLAN, reference_run["events"], SEED)[index]
    out = tmp_path / "run"
    env = child_env(
        tmp_path / "cache",
        XPNET_FAULT_NO_PLOTS="1",
        XPNET_FAULT="kill",
        XPNET_FAULT_KIND=kind,
        XPNET_FAULT_AT=str(event),
    )
    proc = subprocess.run(
        train_command(*tiny_train_args(tiny_data, out), faults=True),
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    check_faulted_run(out, reference_run)
    finish_and_compare(out, tiny_data, tmp_path / "cache", reference_run)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_kill_at_random_moments_then_resume(tiny_data, reference_run, tmp_path):
    rng = np.random.default_rng(SEED)
    killed = []
    for i in range(RANDOM_KILLS):
        out, cache = tmp_path / f"run{i}", tmp_path / f"cache{i}"
        env = child_env(
            cache, XPNET_FAULT_NO_PLOTS="1", XPNET_FAULT_DELAY=str(EVENT_DELAY)
        )
        proc = subprocess.Popen(
            train_command(*tiny_train_args(tiny_data, out), faults=True),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        # Kill after the first checkpoint, at a random point of the training.
        while not (out / CHECKPOINT_NAME).exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "the run never wrote a checkpoint"
            time.sleep(0.002)
        # Each event sleeps EVENT_DELAY, so the run lasts at least this long
        # after its first checkpoint, whatever the machine's speed.
        stretched = EVENT_DELAY * sum(reference_run["events"].values())
        time.sleep(rng.uniform(0, 0.8 * stretched))
        proc.send_signal(signal.SIGKILL)
        killed.append(proc.wait(timeout=60) == -signal.SIGKILL)
        check_faulted_run(out, reference_run)
        finish_and_compare(out, tiny_data, cache, reference_run)
    # Most kills must land while the run is still going, or nothing was tested.
    assert sum(killed) >= RANDOM_KILLS // 2, killed


def damage_metrics(original: bytes, damage: str) -> bytes:
    """``original`` metrics bytes damaged as ``damage`` (one of METRICS_DAMAGE)."""
    rng = np.random.default_rng(SEED)
    if damage == "random bytes":
        return rng.bytes(3000)
    if damage == "cut mid-row":
        return original[:-7]
    if damage == "garbage mid-file":
        mid = len(original) // 2
        return original[:mid] + rng.bytes(60) + original[mid + 60 :]
    lines = original.splitlines(keepends=True)  # header and rows 3, 4, 20 deleted
    return b"".join(line for i, line in enumerate(lines) if i not in (0, 4, 5, 21))


def complete_lines(data: bytes) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    return text[: text.rfind("\n") + 1].split("\n")[:-1]


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("damage", METRICS_DAMAGE)
def test_resume_survives_a_damaged_metrics_file(
    damage, tiny_data, reference_run, tmp_path
):
    out, cache = tmp_path / "run", tmp_path / "cache"
    env = child_env(cache, XPNET_FAULT_NO_PLOTS="1")
    first = run_train(*tiny_train_args(tiny_data, out, iters=30), env=env, faults=True)
    assert first.returncode == 0, first.stderr
    metrics = out / METRICS_NAME
    original = metrics.read_bytes()
    damaged = damage_metrics(original, damage)
    metrics.write_bytes(damaged)
    args = ["--device", "numpy", "--data-dir", tiny_data, "--resume", out]
    proc = run_train(*args, "--iters", "60", "--quiet", env=env, faults=True)
    assert proc.returncode == 0, proc.stderr
    final = load_checkpoint(out)
    for key, value in reference_run["params"].items():
        np.testing.assert_array_equal(final.params[key], value, err_msg=key)
    # Every row of the uninterrupted run is there, once, with its exact values.
    rows = read_metrics(metrics)
    assert_rows_match(rows, reference_run["metrics"], complete=True)
    # Rows that survived the damage are kept as they were (elapsed times too).
    new_lines = set(metrics.read_text().splitlines())
    survived = set(complete_lines(damaged)) & set(complete_lines(original))
    assert survived <= new_lines
    # The damaged original is kept aside, and one warning line says so.
    assert (out / (METRICS_NAME + ".damaged")).read_bytes() == damaged
    warnings = [x for x in proc.stderr.splitlines() if x.startswith("warning:")]
    assert len(warnings) == 1, proc.stderr
    assert "was damaged" in warnings[0] and f"{METRICS_NAME}.damaged" in warnings[0]
    assert "Traceback" not in proc.stderr
