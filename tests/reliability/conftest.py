"""Fixtures of the reliability tests: a clean environment and a tiny real dataset."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from reliability_support import (
    LIBRARY_ENV,
    child_env,
    run_train,
    tiny_train_args,
    write_idx,
)

import nn.data.mnist as mnist
from nn.data.idx import read_idx
from nn.training.checkpoint import load_checkpoint
from nn.training.metrics import METRICS_NAME, read_metrics

#: Samples kept from the real Fashion-MNIST files for the tiny training runs.
TINY_TRAIN, TINY_TEST = 300, 100


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    """No library settings from the developer's shell; a private, empty cache."""
    for var in LIBRARY_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {})


@pytest.fixture(scope="session")
def tiny_data(shared_data, tmp_path_factory):
    """A folder of real Fashion-MNIST IDX .gz files cut to 300 train / 100 test.

    Written from the shared data, so the tiny training runs use real images
    but finish in a fraction of a second.
    """
    src = shared_data / "fashion-mnist"
    out = tmp_path_factory.mktemp("tiny-fashion")
    for prefix, n in (("train", TINY_TRAIN), ("t10k", TINY_TEST)):
        for kind, ndim in (("images", 3), ("labels", 1)):
            name = f"{prefix}-{kind}-idx{ndim}-ubyte.gz"
            write_idx(out / name, np.asarray(read_idx(src / name)[:n]))
    return out


@pytest.fixture(scope="session")
def reference_run(tiny_data, tmp_path_factory):
    """An uninterrupted tiny run: its final weights, losses, evaluations, events.

    -> dict with ``params`` {name: array}, ``metrics`` (nn.training.metrics.Metrics),
    ``events`` ({kind: count} of fault_runner.py's file-system events) and
    ``seconds``.
    """
    tmp = tmp_path_factory.mktemp("reference")
    env = child_env(
        tmp / "cache", XPNET_FAULT_NO_PLOTS="1", XPNET_FAULT_COUNT=str(tmp / "count")
    )
    start = time.perf_counter()
    proc = run_train(*tiny_train_args(tiny_data, tmp / "run"), env=env, faults=True)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    ckpt = load_checkpoint(tmp / "run")
    return {
        "params": ckpt.params,
        "iteration": ckpt.iteration,
        "metrics": read_metrics(tmp / "run" / METRICS_NAME),
        "events": json.loads((tmp / "count").read_text()),
        "seconds": seconds,
    }
