"""Settings, data and bookkeeping shared by every benchmark in ``bench/``.

Sizes come from `settings`: the book's sizes by default, tiny ones in
smoke mode (``XPNET_BENCH_SMOKE=1`` or ``pytest bench --bench-smoke``), which
exists so that ``tests/test_bench_smoke.py`` can run every benchmark body in
seconds. Real Fashion-MNIST is used when it is found (see `data_dir`),
else synthetic MNIST-like images, and each result says which.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest
from torch_reference import import_torch

# PyTorch's OpenMP runtime reads OMP_WAIT_POLICY once, when it loads, and
# ``import backend`` sets it to PASSIVE for Numba's sake. Load PyTorch (when
# installed) first, so that its rows run as they would for a PyTorch user.
# XPNET_BENCH_PRELOAD_TORCH=0: not at all (a process that never runs PyTorch,
# such as bench/gpu_peers.py's xpnet and JAX workers).
if os.environ.get("XPNET_BENCH_PRELOAD_TORCH", "1") != "0":
    import_torch()

import backend as B  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BACKEND_NAMES = ("numpy", "numba", "cupy")
DTYPES = ("float32", "float64")
SMOKE_ENV = "XPNET_BENCH_SMOKE"
DATA_ENV = "XPNET_BENCH_DATA"


@dataclass(frozen=True)
class Settings:
    """Problem sizes and repetition counts of one benchmark session."""

    smoke: bool
    input_size: int = 784
    hidden_size: int = 50
    output_size: int = 10
    batch_size: int = 100
    #: Batch sizes of the scaling sweeps (kernels and the SGD step).
    batch_sweep: tuple[int, ...] = (10, 100, 1000)
    #: Iterations of the "train-1000" group.
    run_iters: int = 1000
    #: Iterations of chapter 5's loop (evaluating every train_size / batch).
    ch5_iters: int = 10_000
    #: Rows of the train / test sets used (None: all of them).
    train_rows: int | None = None
    test_rows: int | None = None
    #: Rounds of the benchmarks that take seconds per call (pedantic mode).
    long_rounds: int = 1
    run_rounds: int = 3

    def sweep_batch(self, full_batch: int | None) -> int:
        """This session's batch for the full run's sweep batch ``full_batch``
        (None: the book's batch). Smoke mode maps the sweep onto its own."""
        if full_batch is None:
            return self.batch_size
        if not self.smoke:
            return full_batch
        i = FULL_BATCH_SWEEP.index(full_batch)
        return self.batch_sweep[min(i, len(self.batch_sweep) - 1)]

    def label(self, batch: int | None = None) -> str:
        """'784-50-10 b100': the network and batch size, for tables."""
        b = self.batch_size if batch is None else batch
        return f"{self.input_size}-{self.hidden_size}-{self.output_size} b{b}"


#: The full run's settings: test ids and parameters are always named after them.
FULL = Settings(smoke=False)
FULL_BATCH_SWEEP = FULL.batch_sweep
SMOKE = Settings(
    smoke=True,
    hidden_size=4,
    batch_size=8,
    batch_sweep=(4, 8, 16),
    run_iters=20,
    ch5_iters=30,
    train_rows=240,
    test_rows=40,
)


def smoke_requested(config=None) -> bool:
    """True under ``--bench-smoke`` or ``XPNET_BENCH_SMOKE=1``."""
    if config is not None and config.getoption("bench_smoke", default=False):
        return True
    return os.environ.get(SMOKE_ENV, "") not in ("", "0")


def settings(config=None) -> Settings:
    """The sizes of this session: the book's, or tiny ones in smoke mode."""
    return SMOKE if smoke_requested(config) else FULL


def backend_or_skip(name: str) -> B.Backend:
    """The backend ``name``, or a pytest skip that quotes why it is unavailable."""
    try:
        return B.get_backend(name)
    except B.BackendUnavailableError as exc:
        pytest.skip(f"{name} backend unavailable: {exc}")


# -- data ------------------------------------------------------------------
@dataclass
class BenchData:
    """Host arrays: x float32 in [0, 1] of shape (N, 784), t int64 labels (N,)."""

    x_train: np.ndarray
    t_train: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray
    source: str


def data_dir(config=None) -> Path:
    """The Fashion-MNIST folder: ``--bench-data-dir``, ``$XPNET_BENCH_DATA``,
    ``$XPNET_SHARED_DATA/fashion-mnist``, else ``../shared/data/fashion-mnist``."""
    given = config.getoption("bench_data_dir", default=None) if config else None
    given = given or os.environ.get(DATA_ENV)
    if given:
        return Path(given)
    shared = os.environ.get("XPNET_SHARED_DATA")
    base = Path(shared) if shared else ROOT.parent / "shared" / "data"
    return base / "fashion-mnist"


def synthetic_mnist(n: int, input_size: int, seed: int) -> tuple[np.ndarray, ...]:
    """MNIST-like (n, input_size) float32 images and (n,) labels.

    Pixels are multiples of 1/255 and about half of them are exactly zero, as
    in Fashion-MNIST: the fast numerical gradient skips zero pixels, so the
    fraction of zeros matters for its timing.
    """
    rng = np.random.default_rng(seed)
    x = np.floor(rng.random((n, input_size)) * 256).astype(np.float32) / 255
    x[rng.random((n, input_size)) < 0.5] = 0
    return x, rng.integers(0, 10, n, dtype=np.int64)


def as_pixels(x: np.ndarray) -> np.ndarray:
    """The uint8 pixels k of float32 images x = k / 255 (as load_mnist gives),
    so that ``x == k.astype(float32) / 255`` bit for bit; checked."""
    from nn.data.mnist import PIXEL_SCALE

    pixels = np.rint(x * PIXEL_SCALE).astype(np.uint8)
    if not np.array_equal(pixels.astype(np.float32) / np.float32(PIXEL_SCALE), x):
        raise ValueError("images are not multiples of 1/255; no uint8 pixels")
    return pixels


def _real_data(path: Path):
    import nn

    loader = getattr(nn, "load_mnist", None)
    if loader is None:
        return None, "nn.load_mnist is not available"
    if not path.is_dir():
        return None, f"{path} not found (set {DATA_ENV})"
    try:
        (xtr, ttr), (xte, tte) = loader(
            normalize=True,
            flatten=True,
            one_hot_label=False,
            dataset="fashion-mnist",
            data_dir=str(path),
            download=False,
        )
    except Exception as exc:  # any loader failure falls back, with the reason
        return None, f"load_mnist failed: {type(exc).__name__}: {exc}"
    return (xtr, ttr, xte, tte), None


@functools.lru_cache(maxsize=4)
def load_data(path: Path, s: Settings) -> BenchData:
    """Fashion-MNIST from ``path`` when it loads, else synthetic data (same shapes)."""
    arrays, why_not = _real_data(path)
    if arrays is not None:
        source = "fashion-mnist"
    elif os.environ.get("XPNET_REQUIRE_DATA") == "1":
        # CI: the real-data path must never silently stop running.
        raise RuntimeError(
            f"real Fashion-MNIST required (XPNET_REQUIRE_DATA=1) but {why_not}"
        )
    else:
        xtr, ttr = synthetic_mnist(s.train_rows or 60_000, s.input_size, seed=1)
        xte, tte = synthetic_mnist(s.test_rows or 10_000, s.input_size, seed=2)
        arrays = (xtr, ttr, xte, tte)
        source = f"synthetic ({why_not})"
    xtr, ttr, xte, tte = (np.asarray(a) for a in arrays)
    return BenchData(
        np.ascontiguousarray(xtr[: s.train_rows], dtype=np.float32),
        np.asarray(ttr[: s.train_rows], dtype=np.int64),
        np.ascontiguousarray(xte[: s.test_rows], dtype=np.float32),
        np.asarray(tte[: s.test_rows], dtype=np.int64),
        source,
    )


def batches(data: BenchData, batch: int, count: int = 16, seed: int = 0):
    """``count`` distinct (x, t) batches of the training set, as host arrays.

    Timed steps cycle through them so no step reuses a cache-hot batch.
    """
    rng = np.random.default_rng(seed)
    n = data.x_train.shape[0]
    out = []
    for _ in range(count):
        idx = rng.choice(n, batch, replace=n < batch)
        out.append((data.x_train[idx], data.t_train[idx]))
    return out


# -- what each result records ---------------------------------------------
def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def versions() -> dict:
    """Versions of Python and the array libraries (read without importing them)."""
    out = {"python": platform.python_version()}
    dists = ("numpy", "numba", "intel-cmplr-lib-rt", "scipy", "cupy-cuda13x")
    for dist in (*dists, "cupy-cuda12x", "torch"):
        v = _version(dist)
        if v:
            out[dist] = v
    return out


def blas_info() -> list[dict]:
    """Loaded BLAS/OpenMP pools (threadpoolctl, when installed): kernel and threads."""
    try:
        import threadpoolctl
    except ImportError:
        return [{"note": "threadpoolctl not installed"}]
    keep = ("user_api", "internal_api", "num_threads", "architecture", "version")
    return [{k: d[k] for k in keep if k in d} for d in threadpoolctl.threadpool_info()]


def thread_counts(backend_name: str | None = None, torch_module=None) -> dict:
    """Thread counts that matter for this result."""
    out = {"cpu_count": os.cpu_count()}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        if var in os.environ:
            out[var] = os.environ[var]
    if "OMP_WAIT_POLICY" in os.environ:
        out["OMP_WAIT_POLICY"] = os.environ["OMP_WAIT_POLICY"]
    if backend_name == "numba" or "numba" in sys.modules:
        import numba

        from backend.numba import mvec

        out["numba"] = numba.get_num_threads()
        # The vector exp/log the compiled kernels call: "svml 8", "libmvec 4", ...
        out["numba_math"] = f"{mvec.EXP_LIBRARY} {mvec.EXP_LANES}"
        try:
            out["numba_layer"] = numba.threading_layer()
        except ValueError:  # no parallel region has run yet
            pass
    if torch_module is not None:
        import torch_reference

        out["torch"] = torch_module.get_num_threads()
        out["torch_omp_wait_policy"] = torch_reference.OMP_WAIT_POLICY_AT_LOAD
    return out


def record(
    benchmark, group: str, variant: str, s: Settings, torch_module=None, **fields
) -> None:
    """Set the benchmark's group and fill ``extra_info`` for the report.

    ``fields`` should include ``backend``, ``dtype`` and ``size`` (the label of
    the compared configuration); ``baseline=True`` marks the row that the
    other rows of the same group and size are divided by; ``reference="torch"``
    marks PyTorch's row for the second ratio column.
    """
    benchmark.group = group
    info = benchmark.extra_info
    info["variant"] = variant
    info.update(fields)
    info.setdefault("size", s.label(fields.get("batch_size")))
    info.setdefault("input_size", s.input_size)
    info.setdefault("hidden_size", s.hidden_size)
    info.setdefault("output_size", s.output_size)
    info.setdefault("batch_size", s.batch_size)
    info["smoke"] = s.smoke
    info["threads"] = thread_counts(fields.get("backend"), torch_module)
    info["blas"] = blas_info()
    info["openblas_env"] = {
        k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    }
    info["versions"] = versions()
    info["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    # Other processes on the machine: runnable tasks averaged over 1 minute.
    info["loadavg_1min"] = round(os.getloadavg()[0], 2)


#: Seconds to pause before warming up, so that the worker threads of the
#: previous benchmark's library (OpenBLAS, PyTorch's OpenMP) stop spinning.
SETTLE_SECONDS = 0.2


def two_layer_net(be, s: Settings, dtype: str, hidden=None, activation="relu"):
    """The benchmarks' ``TwoLayerNet`` on backend ``be``: the session's sizes
    (``hidden`` overriding the hidden size), seeded with 0."""
    import nn

    return nn.TwoLayerNet(
        s.input_size,
        hidden or s.hidden_size,
        s.output_size,
        activation=activation,
        backend=be,
        dtype=dtype,
        rng=0,
    )


def warm_up(fn, calls: int = 3) -> None:
    """Settle, then call ``fn`` a few times before timing: JIT compiles, CUDA
    context creation and a fresh process's page faults on its first large
    temporaries happen here, not in the timed rounds."""
    time.sleep(SETTLE_SECONDS)
    for _ in range(calls):
        fn()


def settings_dict(s: Settings) -> dict:
    """The settings as plain data (for extra_info and reports)."""
    return asdict(s)
