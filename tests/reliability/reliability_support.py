"""Helpers shared by the reliability tests: IDX writing, tree hashes, child runs."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

try:
    from hypothesis import HealthCheck
except ImportError:  # only the fuzz tests need Hypothesis, and they skip without it
    HealthCheck = None

ROOT = Path(__file__).resolve().parents[2]
TRAIN_PY = ROOT / "train.py"
FAULT_RUNNER = Path(__file__).with_name("fault_runner.py")
#: IDX type codes -> big-endian dtypes (the format's table, written out again here
#: so that the tests do not trust nn.data.idx's own table).
IDX_TYPES = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
CODE_OF = {np.dtype(v).str.lstrip("<>|="): k for k, v in IDX_TYPES.items()}
#: Hypothesis settings of every fuzz test: deterministic, no deadline, no database.
FUZZ_SETTINGS = dict(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
    if HealthCheck
    else [],
)
#: Environment variables the library reads; the tests start from none of them.
LIBRARY_ENV = ("XPNET_DATA_DIR", "XPNET_MNIST_MIRROR", "XPNET_BACKEND")


def idx_bytes(arr: np.ndarray) -> bytes:
    """The uncompressed IDX encoding of ``arr`` (any IDX element type)."""
    dtype = np.dtype(arr.dtype).newbyteorder(">")
    code = CODE_OF[np.dtype(arr.dtype).str.lstrip("<>|=")]
    head = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(
        f">{arr.ndim}I", *arr.shape
    )
    return head + np.ascontiguousarray(arr, dtype=dtype).tobytes()


def write_idx(path: Path, arr: np.ndarray, compress: bool = True) -> Path:
    """Write ``arr`` as an IDX file (gzip-compressed by default). -> path."""
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def tree_digest(*roots: Path) -> dict[str, str]:
    """{relative path: sha256 (or 'dir')} of every file under ``roots``."""
    out = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        for path in sorted([root, *root.rglob("*")]):
            key = f"{root.name}/{path.relative_to(root)}"
            if path.is_dir():
                out[key] = "dir"
            else:
                out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def child_env(cache: Path, **extra: str) -> dict[str, str]:
    """The environment of a child process: no library settings, given cache."""
    env = {k: v for k, v in os.environ.items() if k not in LIBRARY_ENV}
    env.update(XDG_CACHE_HOME=str(cache), MPLBACKEND="Agg", **extra)
    return env


def train_command(*args: str, faults: bool = False) -> list[str]:
    """``python train.py args`` or, with ``faults``, the fault-injecting runner."""
    script = FAULT_RUNNER if faults else TRAIN_PY
    return [sys.executable, str(script), *map(str, args)]


def run_train(*args, env, faults=False, timeout=60.0) -> subprocess.CompletedProcess:
    """Run the CLI in a child process to completion; text output captured."""
    return subprocess.run(
        train_command(*args, faults=faults),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def tiny_train_args(data_dir: Path, out: Path, **flags) -> list[str]:
    """Flags of a short, deterministic Fashion-MNIST run on ``data_dir``.

    ``flags`` override the defaults; None drops a flag, True gives it alone.
    """
    base = {
        "device": "numpy",
        "dataset": "fashion-mnist",
        "data-dir": data_dir,
        "hidden-size": 8,
        "iters": 60,
        "batch-size": 10,
        "eval-every": 5,
        "seed": 7,
        "out": out,
    }
    base.update({k.replace("_", "-"): v for k, v in flags.items()})
    args = []
    for key, value in base.items():
        if value is not None:
            args += [f"--{key}"] + ([] if value is True else [str(value)])
    return [*args, "--quiet"]


def reference_parse(raw: bytes):
    """The array an IDX file holds, or None if it is not a valid IDX file."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            return None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_TYPES or raw[3] == 0:
        return None
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        return None
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(IDX_TYPES[raw[2]])
    if len(raw) != 4 + 4 * ndim + dtype.itemsize * math.prod(shape):
        return None
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(shape)


def touch_marker(path: str) -> None:
    """Create ``path``: the payload of the hostile pickles that name this helper."""
    Path(path).touch()


def fault_points(plan: dict, events: dict, seed: int) -> list[tuple[str, int]]:
    """(kind, k) fault points: ``plan[kind]`` of each kind, one drawn at random
    in each equal slice of that kind's ``events[kind]`` events."""
    rng = np.random.default_rng(seed)
    points = []
    for kind, count in plan.items():
        for i, offset in enumerate(rng.random(count)):
            points.append((kind, 1 + int((i + offset) / count * (events[kind] - 1))))
    return points


#: Files a run directory may hold after a fault: the run's own files, and the
#: hidden temporary file of an atomic write that a SIGKILL cut short (never
#: read by anything, replaced by the next write).
RUN_FILES = {"checkpoint.npz", "metrics.csv", "loss.png", "accuracy.png"}
TEMP_FILE = re.compile(r"^\.(checkpoint\.npz|metrics\.csv)\.[^/]+\.tmp$")


def check_faulted_run(out: Path, reference: dict) -> tuple[int | None, list[str]]:
    """Assert that a run cut short left only trustworthy files.

    The checkpoint, if any, loads and holds finite weights of the right
    shapes at an evaluation iteration; every complete metrics row equals the
    uninterrupted run's row. -> (checkpoint iteration or None, temp files).
    """
    from nn.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
    from nn.training.metrics import METRICS_NAME, read_metrics

    if not out.exists():
        return None, []
    names = sorted(p.name for p in out.iterdir())
    temps = [n for n in names if TEMP_FILE.match(n)]
    assert set(names) - set(temps) <= RUN_FILES, names
    iteration = None
    if (out / CHECKPOINT_NAME).exists():
        ckpt = load_checkpoint(out)
        iteration = ckpt.iteration
        ref_eval = reference["metrics"].eval_iteration
        assert iteration in ref_eval, (iteration, ref_eval)
        for key, value in reference["params"].items():
            assert ckpt.params[key].shape == value.shape
            assert np.isfinite(ckpt.params[key]).all()
    if (out / METRICS_NAME).exists():
        assert_rows_match(read_metrics(out / METRICS_NAME), reference["metrics"])
    return iteration, temps


def assert_rows_match(got, ref, complete: bool = False) -> None:
    """Every row of metrics ``got`` equals the reference's row of its iteration.

    ``complete``: also every reference row is present, exactly once.
    """
    ref_loss = dict(zip(ref.iteration, ref.loss, strict=True))
    for it, loss in zip(got.iteration, got.loss, strict=True):
        assert ref_loss[it] == loss, (it, loss, ref_loss[it])
    ref_eval = {
        it: (a, b)
        for it, a, b in zip(
            ref.eval_iteration, ref.train_acc, ref.test_acc, strict=True
        )
    }
    for it, a, b in zip(got.eval_iteration, got.train_acc, got.test_acc, strict=True):
        assert ref_eval[it] == (a, b), it
    if complete:
        assert got.iteration == ref.iteration
        assert got.eval_iteration == ref.eval_iteration


def finish_and_compare(out: Path, data_dir: Path, cache: Path, reference: dict):
    """Resume the run in ``out`` (or start it over if it has no checkpoint) and
    assert that it ends exactly as the uninterrupted reference run."""
    from nn.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
    from nn.training.metrics import METRICS_NAME, read_metrics

    env = child_env(cache, XPNET_FAULT_NO_PLOTS="1")
    if (out / CHECKPOINT_NAME).exists():
        args = ["--device", "numpy", "--data-dir", data_dir, "--resume", out, "--quiet"]
    else:
        args = tiny_train_args(data_dir, out)
    proc = run_train(*args, env=env, faults=True)
    assert proc.returncode == 0, proc.stderr
    # A kill never damages the metrics rows a checkpoint has seen.
    assert "warning:" not in proc.stderr, proc.stderr
    assert not (out / (METRICS_NAME + ".damaged")).exists()
    final = load_checkpoint(out)
    assert final.iteration == reference["iteration"]
    for key, value in reference["params"].items():
        np.testing.assert_array_equal(final.params[key], value, err_msg=key)
    assert_rows_match(read_metrics(out / METRICS_NAME), reference["metrics"], True)
