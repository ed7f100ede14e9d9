"""Launch the fused kernels of ``backend/cupy/softmax.cu`` on CuPy arrays.

The kernels are bound to an array module ``xp``: CuPy on a GPU, or in tests a
stand-in whose ``RawModule`` runs the same source compiled for the host. This
module therefore never imports CuPy itself and never waits for the device:
every call only queues a launch on the current stream.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np

#: The CUDA C source, shipped as package data beside this module.
SOURCE_PATH = Path(__file__).resolve().with_name("softmax.cu")

#: Threads per block; one thread owns one row.
THREADS_PER_BLOCK = 128
#: Upper bound on the grid; the kernels' grid-stride loops cover further rows.
MAX_BLOCKS = 4096
#: Widest row the one-thread-per-row kernels take. Wider rows (not this
#: project's 10 classes) go to CuPy's own block-parallel reductions instead.
MAX_FUSED_COLS = 1024

#: Kernel name suffix per floating dtype; other dtypes use the generic code.
DTYPE_SUFFIX = {"float32": "f32", "float64": "f64"}

#: Argument types of each ``extern "C"`` kernel in softmax.cu, ``T`` being the
#: floating type of the suffix. The tests compile host launchers from this table,
#: so a mismatch with the source is a compile error there.
SIGNATURES = {
    "softmax_rows": ("const T*", "T*", "long long", "long long"),
    "softmax_xent_labels": (
        "const T*",
        "const long long*",
        "T*",
        "T*",
        "long long",
        "long long",
        "long long",
    ),
    "softmax_xent_onehot": (
        "const T*",
        "const T*",
        "T*",
        "T*",
        "long long",
        "long long",
        "long long",
    ),
    "xent_backward_labels": (
        "const T*",
        "const long long*",
        "T*",
        "long long",
        "long long",
        "T",
    ),
    "xent_backward_onehot": (
        "const T*",
        "const T*",
        "T*",
        "long long",
        "long long",
        "T",
    ),
}


def kernel_names() -> list[str]:
    """Every entry point of softmax.cu, e.g. ``softmax_rows_f32``."""
    return [f"{k}_{s}" for k in SIGNATURES for s in DTYPE_SUFFIX.values()]


def launch_shape(
    rows: int, threads: int = THREADS_PER_BLOCK, max_blocks: int = MAX_BLOCKS
) -> tuple[tuple[int], tuple[int]]:
    """``(grid, block)`` for ``rows`` rows: enough blocks for one thread per
    row, capped at ``max_blocks`` (the grid-stride loop does the rest)."""
    blocks = max(1, min(max_blocks, -(-rows // threads)))
    return (blocks,), (threads,)


class FusedSoftmax:
    """Softmax and softmax-with-loss, one kernel launch per call, on ``xp`` arrays.

    Call `supports` first; the callers fall back to the generic ``xp``
    code for other dtypes or shapes. The module is compiled (by NVRTC, through
    ``xp.RawModule``) on first use, not at construction.
    """

    def __init__(self, xp):
        self.xp = xp
        self._module = None
        self._functions: dict[str, object] = {}
        #: Number of kernel launches so far (host-side bookkeeping for tests).
        self.launches = 0

    def supports(self, x, ndim: int | None = None) -> bool:
        """True for float32/float64 ``x`` with 1..MAX_FUSED_COLS columns
        (and ``ndim`` dimensions when given)."""
        if x.dtype.name not in DTYPE_SUFFIX or x.ndim == 0:
            return False
        if ndim is not None and x.ndim != ndim:
            return False
        return 1 <= x.shape[-1] <= MAX_FUSED_COLS

    def _function(self, name: str, dtype):
        key = f"{name}_{DTYPE_SUFFIX[dtype.name]}"
        if key not in self._functions:
            if self._module is None:
                self._module = self.xp.RawModule(code=SOURCE_PATH.read_text())
            self._functions[key] = self._module.get_function(key)
        return self._functions[key]

    def _launch(self, name: str, rows: int, dtype, *args) -> None:
        if rows == 0:
            return
        grid, block = launch_shape(rows)
        self._function(name, dtype)(grid, block, args)
        self.launches += 1

    def softmax(self, x):
        """Softmax over the last axis. x: (..., C) float32/64 -> same shape, dtype."""
        xp = self.xp
        cols = x.shape[-1]
        x2 = xp.ascontiguousarray(x).reshape(-1, cols)
        y = xp.empty(x2.shape, dtype=x2.dtype)
        rows = x2.shape[0]
        self._launch(
            "softmax_rows", rows, x2.dtype, x2, y, np.int64(rows), np.int64(cols)
        )
        return y.reshape(x.shape)

    def softmax_cross_entropy(self, x, t):
        """x: (N, C) float; t: (N,) integer labels or (N, C) targets.

        Returns ``(loss, y)``: the mean of -log(y[n, t_n] + 1e-7) (one-hot:
        -sum t * log(y + 1e-7)) as a 0-d array, and y = softmax(x) (N, C).
        """
        loss_rows, y = self.cross_entropy_rows(x, t)
        return loss_rows.mean(), y

    def softmax_cross_entropy_batched(self, x, t):
        """The loss of many score batches against one target batch, one launch.

        x: (P, N, C) float, e.g. the scores of P perturbed networks; t: (N,)
        labels or (N, C) one-hot. Returns ``(losses, y)``: (P,) mean losses,
        each computed as `softmax_cross_entropy` would, and y (P, N, C).
        """
        loss_rows, y = self.cross_entropy_rows(x, t)
        return loss_rows.mean(axis=-1), y

    def cross_entropy_rows(self, x, t):
        """Per-row losses. x: (..., N, C); t: (N,) or (N, C) -> ((..., N), y)."""
        xp = self.xp
        x = xp.ascontiguousarray(x)
        rows, cols, period = x.size // x.shape[-1], x.shape[-1], x.shape[-2]
        y = xp.empty(x.shape, dtype=x.dtype)
        loss_rows = xp.empty(x.shape[:-1], dtype=x.dtype)
        shape = (np.int64(rows), np.int64(cols), np.int64(period))
        _check_targets(t, period, cols, x.shape)
        if t.ndim == 2:
            t = xp.ascontiguousarray(t.astype(x.dtype, copy=False))
            name = "softmax_xent_onehot"
        else:
            t = xp.ascontiguousarray(_labels(t).astype(np.int64, copy=False))
            name = "softmax_xent_labels"
        self._launch(name, rows, x.dtype, x, t, y, loss_rows, *shape)
        return loss_rows, y

    def softmax_cross_entropy_backward(self, y, t, dout=1.0):
        """(y - t) * dout / N for y: (N, C) and t: (N,) labels or (N, C) targets.

        A number ``dout`` is folded into the kernel's scale; a device array
        ``dout`` (0-d) is multiplied afterwards, so it is never read on the host.
        """
        xp = self.xp
        y = xp.ascontiguousarray(y)
        rows, cols = y.shape
        if type(dout).__module__ == "numpy" and getattr(dout, "ndim", None) == 0:
            dout = dout.item()  # a host 0-d array is a number, not a device array
        on_host = isinstance(dout, numbers.Number)
        scale = y.dtype.type((dout if on_host else 1.0) / max(rows, 1))
        _check_targets(t, rows, cols, y.shape)
        dx = xp.empty(y.shape, dtype=y.dtype)
        shape = (np.int64(rows), np.int64(cols))
        if t.ndim == y.ndim:
            t = xp.ascontiguousarray(t.astype(y.dtype, copy=False))
            self._launch("xent_backward_onehot", rows, y.dtype, y, t, dx, *shape, scale)
        else:
            t = xp.ascontiguousarray(_labels(t).astype(np.int64, copy=False))
            self._launch("xent_backward_labels", rows, y.dtype, y, t, dx, *shape, scale)
        return dx if on_host else dx * dout


def _check_targets(t, rows: int, cols: int, scores_shape) -> None:
    # The kernels index t without bounds checks: a wrong shape must never get there.
    if t.shape not in ((rows,), (rows, cols)):
        raise ValueError(
            f"targets of shape {t.shape} do not fit scores of shape {scores_shape}; "
            f"pass ({rows},) labels or ({rows}, {cols}) one-hot rows"
        )


def _labels(t):
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"labels must be integers, got dtype {t.dtype}; pass t.astype(int) "
            "or one-hot targets of the same shape as the scores"
        )
    return t
