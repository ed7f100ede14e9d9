"""Training checkpoints as ``.npz`` files that load without pickle, on any backend.

A checkpoint holds host NumPy copies of the weights (so one saved on the GPU
loads on the CPU and back), the training history, and a JSON ``meta`` record:
format version, iteration, config, optimizer state, the batch sampler's RNG
state, dataset and backend names. A chapter 6 run adds host arrays in
``buffers`` (the optimizer's state arrays, Batch Normalization's running
statistics) and a JSON ``network`` record (the Dropout generators' seeds and
counters), new in format version 2 (version 1 files still load).
Writes are atomic (see :mod:`nn.data.fileio`).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nn.data.fileio import atomic_write

#: Version of the layout written by :func:`save_checkpoint`; bump on changes.
#: 2 adds ``buffers`` and ``network`` (empty for chapter 5's runs).
FORMAT_VERSION = 2
#: Name of the checkpoint inside a run directory.
CHECKPOINT_NAME = "checkpoint.npz"

_PARAM_PREFIX = "param."
_HISTORY_PREFIX = "history."
_BUFFER_PREFIX = "buffer."


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, too new, or does not fit the network."""


@dataclass
class Checkpoint:
    """Everything needed to continue a run exactly where it stopped.

    ``params``: host arrays by name (``W1`` (D, H), ``b1`` (H,), ...);
    ``history``: host 1-d arrays (``loss`` per iteration, ``eval_iteration``,
    ``train_acc``, ``test_acc``, ``eval_elapsed``); ``rng_state``: the
    ``bit_generator.state`` dict of the batch sampler.
    """

    params: dict
    iteration: int
    config: dict
    optimizer: dict
    rng_state: dict
    dataset: str
    backend: str
    elapsed: float = 0.0
    history: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    buffers: dict = field(default_factory=dict)
    network: dict = field(default_factory=dict)

    def check_params(self, expected_shapes: dict) -> None:
        """Raise :class:`CheckpointError` unless the weights have these shapes.

        expected_shapes: ``{name: shape}`` of the network to load into.
        """
        if set(self.params) != set(expected_shapes):
            raise CheckpointError(
                f"checkpoint holds parameters {sorted(self.params)} but the network "
                f"has {sorted(expected_shapes)}; it was saved from another network"
            )
        for name, shape in expected_shapes.items():
            got = tuple(self.params[name].shape)
            if got != tuple(shape):
                raise CheckpointError(
                    f"checkpoint parameter {name} has shape {got} but the network "
                    f"expects {tuple(shape)}; it was saved from another network shape"
                )


def resolve_path(path: str | os.PathLike) -> Path:
    """A checkpoint file from a path to it or to a run directory holding one."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` to ``path`` (a file or run directory) atomically. -> the file."""
    path = resolve_path(path)
    version = FORMAT_VERSION
    meta = {
        "format_version": version,
        "iteration": int(ckpt.iteration),
        "config": ckpt.config,
        "optimizer": ckpt.optimizer,
        "rng_state": ckpt.rng_state,
        "dataset": ckpt.dataset,
        "backend": ckpt.backend,
        "elapsed": float(ckpt.elapsed),
    }
    if ckpt.network:
        meta["network"] = ckpt.network
    arrays = {
        "format_version": np.asarray(version, dtype=np.int64),
        # JSON rather than pickle: RNG states hold 128-bit integers, which
        # JSON keeps exactly and np.load(allow_pickle=False) can read.
        "meta": np.asarray(json.dumps(meta)),
    }
    for name, value in ckpt.params.items():
        arrays[_PARAM_PREFIX + name] = np.asarray(value)
    for name, value in ckpt.history.items():
        arrays[_HISTORY_PREFIX + name] = np.asarray(value)
    for name, value in ckpt.buffers.items():
        arrays[_BUFFER_PREFIX + name] = np.asarray(value)
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`, never unpickling.

    Raises :class:`CheckpointError` with a one-line reason for a missing,
    truncated or foreign file and for a newer format version.
    """
    path = resolve_path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    # MemoryError: an .npy header inside the zip can declare any shape, and NumPy
    # allocates it before finding that the data is not there.
    except (
        OSError,
        ValueError,
        EOFError,
        KeyError,
        zipfile.BadZipFile,
        MemoryError,
    ) as exc:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or corrupt: {exc}); "
            "resume from another checkpoint or start a new run"
        ) from None
    if "meta" not in arrays or "format_version" not in arrays:
        raise CheckpointError(f"{path} is not an xpnet checkpoint (no 'meta' record)")
    version = int(arrays["format_version"])
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}, newer than this "
            f"xpnet reads ({FORMAT_VERSION}); upgrade xpnet to load it"
        )
    try:
        meta = json.loads(str(arrays["meta"]))
        return Checkpoint(
            params=_with_prefix(arrays, _PARAM_PREFIX),
            iteration=int(meta["iteration"]),
            config=dict(meta["config"]),
            optimizer=dict(meta["optimizer"]),
            rng_state=dict(meta["rng_state"]),
            dataset=str(meta["dataset"]),
            backend=str(meta["backend"]),
            elapsed=float(meta.get("elapsed", 0.0)),
            history=_with_prefix(arrays, _HISTORY_PREFIX),
            format_version=version,
            buffers=_with_prefix(arrays, _BUFFER_PREFIX),
            network=dict(meta.get("network", {})),
        )
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise CheckpointError(
            f"{path} has a damaged 'meta' record ({type(exc).__name__}: {exc})"
        ) from None


def _with_prefix(arrays: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
