"""Helpers shared by the reliability tests: IDX writing, tree hashes, child runs."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TRAIN_PY = ROOT / "train.py"
FAULT_RUNNER = Path(__file__).with_name("fault_runner.py")
#: IDX type codes -> big-endian dtypes (the format's table, written out again here
#: so that the tests do not trust nn.idx's own table).
IDX_TYPES = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
CODE_OF = {np.dtype(v).str.lstrip("<>|="): k for k, v in IDX_TYPES.items()}
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
    """Flags of a short, deterministic Fashion-MNIST run on ``data_dir``."""
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
            args += [f"--{key}", str(value)]
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
