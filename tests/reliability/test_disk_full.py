"""A full disk mid-run: one clear line, exit code 1, the previous checkpoint kept.

fault_runner.py makes one file-system event of a short real run fail with
ENOSPC (after writing half its bytes, as a full disk does): a checkpoint
write, its fsync or rename, a metrics append, the data cache. The run must
stop with ``train.py: error: cannot write to ...: No space left on device``
(or carry on, for the optional data cache), leave no temporary file, keep
the previous checkpoint loadable, and ``--resume`` once there is space again
must end exactly like the uninterrupted run.
"""

from __future__ import annotations

import numpy as np
import pytest
from reliability_support import (
    check_faulted_run,
    child_env,
    fault_points,
    finish_and_compare,
    run_train,
    tiny_train_args,
)

from nn.training.checkpoint import load_checkpoint

#: Runs whose disk fills up at a chosen file-system event, by kind of event.
DISK_FULL_PLAN = {"file-write": 3, "os.write": 2, "fsync": 2, "replace": 1}
DISK_FULL_POINTS = sum(DISK_FULL_PLAN.values())
SEED = 28


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("index", range(DISK_FULL_POINTS))
def test_disk_full_is_a_clear_error_and_keeps_the_checkpoint(
    index, tiny_data, reference_run, tmp_path
):
    out, cache = tmp_path / "run", tmp_path / "cache"
    kind, event = fault_points(DISK_FULL_PLAN, reference_run["events"], SEED)[index]
    env = child_env(
        cache,
        XPNET_FAULT_NO_PLOTS="1",
        XPNET_FAULT="enospc",
        XPNET_FAULT_KIND=kind,
        XPNET_FAULT_AT=str(event),
    )
    proc = run_train(*tiny_train_args(tiny_data, out), env=env, faults=True)
    if proc.returncode == 0:
        # Only the folder's own fsync after a rename is best effort by design.
        assert kind == "fsync", proc.stderr
        final = load_checkpoint(out)
        for key, value in reference_run["params"].items():
            np.testing.assert_array_equal(final.params[key], value)
        return
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"train.py: error: cannot write to {out}")
    assert "No space left on device" in lines[0]
    _, temps = check_faulted_run(out, reference_run)
    assert temps == [], "a failed atomic write left its temporary file"
    finish_and_compare(out, tiny_data, cache, reference_run)
