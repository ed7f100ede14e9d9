"""The Numba backend: NumPy arrays, Numba-jitted CPU kernels.

Numba is imported only when this backend is instantiated, so ``import
backend`` works without it. The kernels live in ``kernels`` (softmax,
cross-entropy, a small matmul) and ``step`` (the TwoLayerNet SGD step:
BLAS products around one compiled call); they are compiled on first use and
cached on disk (``cache=True``).
Threads: Numba's pool, sized by ``NUMBA_NUM_THREADS``, used only by kernels
big enough to repay a fork and join; BLAS is never called from inside a
parallel region. ``OMP_WAIT_POLICY`` defaults to PASSIVE, set in
``backend/__init__.py`` before Numba's OpenMP runtime can load.
"""

from __future__ import annotations

import threading

import numpy as np

from backend.base import Backend, BackendUnavailableError
from backend.constants import CE_DELTA
from backend.numba.network_kernels import NetworkKernels

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

#: At or below this many multiply-adds (N*K*M) the jitted matmul beats
#: np.matmul (measured: 0.6 vs 0.8 us at (4, 5) @ (5, 3)), because it skips
#: np.matmul's fixed call cost. Above it BLAS's blocked SIMD kernels win:
#: (16, 16) @ (16, 16) 1.3 vs 1.0 us, (100, 50) @ (50, 10) 15 vs 2.5 us,
#: (100, 784) @ (784, 50) 381 vs 53 us, x.T @ dout (784, 100) @ (100, 50)
#: 598 vs 42 us. (The SGD step, too, leaves its two large products to BLAS.)
_SMALL_MATMUL = 1024

#: Below this many elements softmax and softmax-with-loss run on one thread:
#: a parallel region's fork and join costs more than such rows take, and on a
#: busy 2-core machine its workers may wait for a core (the layer-by-layer
#: gradient at batch 100 calls softmax-with-loss on 100 x 10 scores).
_SMALL_SOFTMAX = 16384


MISSING_NUMBA = 'the numba backend needs Numba: pip install "xpnet[numba]"'


def _import_numba():
    try:
        import numba
    except ImportError as exc:
        raise BackendUnavailableError(MISSING_NUMBA) from exc
    if getattr(numba, "__file__", None) is None:
        # A folder named numba on sys.path (a namespace package), not Numba.
        raise BackendUnavailableError(f"{MISSING_NUMBA} (found only {numba!r})")
    return numba


def _labels_or_onehot(t, n: int, c: int, dtype, check_range: bool = True):
    """(labels int64 (N,) or None, one-hot (N, C) of dtype or None) from t."""
    if t.shape == (n, c):
        return None, np.ascontiguousarray(t, dtype=dtype)
    if t.shape != (n,):
        raise ValueError(
            f"targets of shape {t.shape} do not match scores of shape {(n, c)}; "
            "pass (N,) labels or (N, C) one-hot"
        )
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"labels must be integers, got dtype {t.dtype}; pass t.astype(int) "
            "or one-hot targets of the same shape as the scores"
        )
    labels = np.ascontiguousarray(t, dtype=np.int64)
    if check_range and n and (labels.min() < 0 or labels.max() >= c):
        _bad_labels(labels, c)
    return labels, None


def _bad_labels(labels, c: int):
    raise ValueError(
        f"labels must lie in [0, {c}); got values from {labels.min()} to {labels.max()}"
    )


class NumbaBackend(NetworkKernels, Backend):
    """Host NumPy arrays with jitted kernels where they beat NumPy."""

    name = "numba"
    xp = np
    on_host = True

    def __init__(self):
        self.numba = _import_numba()
        from backend.numba import accuracy, kernels, layers, step, updates

        self._k = kernels
        self._layers = layers
        self._updates = updates
        self._step = step
        self._accuracy = accuracy
        self._empty_onehot = {dt: np.empty((0, 0), dt) for dt in _FLOATS}
        self._empty_labels = np.empty(0, np.int64)
        self._local = threading.local()  # per-thread scratch of the fused step

    def describe(self) -> str:
        threads = self.numba.config.NUMBA_NUM_THREADS
        return (
            f"numba ({self.numba.__version__}, numpy {np.__version__}, CPU, "
            f"{threads} threads)"
        )

    def scaled_rows(self, x, rows, scale, dtype):
        """``x[rows] / scale`` as in the base class; uint8 pixels go through
        one compiled pass (gather, cast and divide): 34 us against NumPy's
        52 us for a batch of 100 Fashion-MNIST rows, and the gather reads a
        quarter of the bytes that the float32 images would need.
        """
        dtype = np.dtype(dtype)
        if x.dtype != np.uint8 or x.ndim != 2 or dtype not in _FLOATS:
            return super().scaled_rows(x, rows, scale, dtype)
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(x.shape[0]))
        rows = np.asarray(rows)
        if rows.ndim != 1 or rows.dtype.kind not in "iu":
            return super().scaled_rows(x, rows, scale, dtype)
        out = np.empty((rows.shape[0], x.shape[1]), dtype)
        bad = self._k.gather_scaled(
            np.ascontiguousarray(x),
            rows.astype(np.int64, copy=False),
            np.float32(scale),
            out,
        )
        if bad >= 0:
            raise IndexError(
                f"index {rows[bad]} is out of bounds for axis 0 with size {x.shape[0]}"
            )
        return out

    # -- kernels ----------------------------------------------------------
    def matmul(self, a, b):
        """a: (N, K) @ b: (K, M) -> (N, M).

        Tiny products (N*K*M up to ``_SMALL_MATMUL``) run in a jitted loop,
        which skips np.matmul's fixed call cost; everything else goes to
        BLAS, which is 2-15x faster on this network's shapes (see
        ``_SMALL_MATMUL`` for the measurements).
        """
        if (
            a.ndim == 2
            and b.ndim == 2
            and a.dtype == b.dtype
            and a.dtype in _FLOATS
            and a.shape[1] == b.shape[0]
            and a.shape[0] * a.shape[1] * b.shape[1] <= _SMALL_MATMUL
        ):
            out = np.empty((a.shape[0], b.shape[1]), a.dtype)
            self._k.matmul_small(
                np.ascontiguousarray(a), np.ascontiguousarray(b), out, a.dtype.type(0)
            )
            return out
        return np.matmul(a, b)

    def softmax(self, x):
        """Softmax over the last axis of (D,) or (N, D); overflow-safe, row-parallel."""
        if x.dtype not in _FLOATS or x.ndim not in (1, 2) or x.size == 0:
            return super().softmax(x)
        x2 = np.ascontiguousarray(x.reshape(1, -1) if x.ndim == 1 else x)
        y = np.empty_like(x2)
        kernel = (
            self._k.softmax_rows_serial
            if x2.size < _SMALL_SOFTMAX
            else self._k.softmax_rows
        )
        kernel(x2, y, x.dtype.type(0))
        return y.reshape(x.shape)

    def softmax_cross_entropy(self, x, t):
        """Fused softmax and the book's cross-entropy, one pass over each row.

        x: (N, C) float scores; t: (N,) integer labels in [0, C) or (N, C)
        one-hot. Returns ``(loss, y)``: the mean loss (0-d, x's dtype) and
        y = softmax(x). The per-row losses are summed in float64.
        """
        if x.dtype not in _FLOATS or x.ndim != 2 or x.shape[0] == 0:
            return super().softmax_cross_entropy(x, t)
        n, c = x.shape
        x = np.ascontiguousarray(x)
        labels, onehot = _labels_or_onehot(t, n, c, x.dtype)
        y = np.empty_like(x)
        consts = np.array([0, CE_DELTA], x.dtype)
        k = self._k
        small = x.size < _SMALL_SOFTMAX
        if labels is not None:
            kernel = (
                k.softmax_cross_entropy_labels_serial
                if small
                else k.softmax_cross_entropy_labels
            )
            loss = kernel(x, labels, y, consts)
        else:
            kernel = (
                k.softmax_cross_entropy_onehot_serial
                if small
                else k.softmax_cross_entropy_onehot
            )
            loss = kernel(x, onehot, y, consts)
        return np.asarray(loss, dtype=x.dtype), y

    def softmax_cross_entropy_backward(self, y, t, dout=1.0):
        """Gradient of the mean loss w.r.t. the scores: (y - t) / N, times dout."""
        scale = dout / y.shape[0] if y.shape[0] else None
        if (
            y.dtype not in _FLOATS
            or y.ndim != 2
            or scale is None
            or np.ndim(scale) != 0
            or np.result_type(y, scale) != y.dtype
        ):
            return super().softmax_cross_entropy_backward(y, t, dout)
        n, c = y.shape
        y = np.ascontiguousarray(y)
        labels, onehot = _labels_or_onehot(t, n, c, y.dtype)
        dx = np.empty_like(y)
        scale = y.dtype.type(scale)
        if labels is not None:
            self._k.softmax_cross_entropy_backward_labels(
                y, labels, scale, y.dtype.type(1), dx
            )
        else:
            self._k.softmax_cross_entropy_backward_onehot(y, onehot, scale, dx)
        return dx

    def numerical_gradient(self, f, x):
        """Central differences of ``f`` at every element of ``x`` (any shape).

        This is the generic loop of the base class, unchanged: ``f`` is an
        arbitrary Python function, which compiled code cannot call, so each
        element costs two Python calls of ``f``. ``x`` is perturbed in place
        and restored exactly. (A compiled gradient for the TwoLayerNet loss is
        ``two_layer_numerical_gradient``, a separate kernel.)
        """
        return super().numerical_gradient(f, x)

    def serial_blas(self):
        """BLAS on the calling thread (``backend.numba.blas`` says why)."""
        from backend.numba.blas import serial_blas

        return serial_blas()

    def two_layer_numerical_gradient(self, params, x, t, activation, forward):
        """The compiled, parameter-parallel kernel of :mod:`backend.numba.numgrad`;
        arguments and result as in :class:`backend.base.Backend`."""
        from backend.numba.numgrad import two_layer_numerical_gradient as fast

        return fast(params, x, t, activation, forward)

    def two_layer_count_correct(self, params, x, t, activation):
        """Rows of x whose arg-max score is their label, and whether some
        hidden unit fired (a Relu input not <= 0) on some row; or None.

        The products go to BLAS in chunks and the rest runs compiled
        (``accuracy`` says why, with measurements). params as for
        :meth:`two_layer_sgd_step`; x: (N, D) of the params' dtype; t: (N,)
        integer labels or (N, C) one-hot. -> ``(int, bool)``, or None for the
        layer-by-layer path to handle when x or t is of another kind (another
        dtype or shape, float labels).
        """
        W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
        dtype = W1.dtype
        if (
            activation not in ("relu", "sigmoid")
            or dtype not in _FLOATS
            or any(p.dtype != dtype for p in (b1, W2, b2))
            or x.dtype != dtype
            or x.ndim != 2
            or x.shape[0] == 0
            or x.shape[1] != W1.shape[0]
        ):
            return None
        n, c = x.shape[0], W2.shape[1]
        if t.shape == (n,) and t.dtype.kind in "iu":
            labels = np.ascontiguousarray(t, dtype=np.int64)
        elif t.shape == (n, c):
            labels = np.argmax(t, axis=1)
        else:
            return None
        return self._accuracy.count_correct(
            np.ascontiguousarray(x),
            labels,
            *(np.ascontiguousarray(p) for p in (W1, b1, W2, b2)),
            activation == "sigmoid",
        )

    def two_layer_sgd_step(self, params, x, t, lr, activation):
        """One SGD step of TwoLayerNet: forward, backward, update.

        The two large products go to BLAS and everything else runs in one
        serial compiled call (``step`` says why, with measurements).

        params: {"W1": (D, H), "b1": (H,), "W2": (H, C), "b2": (C,)}, one
        float dtype, C-contiguous, updated in place; x: (N, ...) flattened to
        (N, D) and cast to the params' dtype; t: (N,) int labels or (N, C)
        one-hot; activation: "relu" or "sigmoid". Returns the mean loss
        before the update as a 0-d array of the params' dtype. The result
        equals ``TwoLayerNet.gradient`` followed by ``SGD.update`` up to
        float rounding (sums run in another order).
        """
        W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
        dtype = W1.dtype
        for key, p in (("W1", W1), ("b1", b1), ("W2", W2), ("b2", b2)):
            if p.dtype != dtype or dtype not in _FLOATS or not p.flags.c_contiguous:
                raise TypeError(
                    f"fused step needs C-contiguous float32/float64 params of one "
                    f"dtype; {key} is {p.dtype}, contiguous={p.flags.c_contiguous}"
                )
        if activation not in ("relu", "sigmoid"):
            raise ValueError(
                f"unknown activation {activation!r}; choose 'relu' or 'sigmoid'"
            )
        n = x.shape[0]
        if n == 0:
            raise ValueError("empty batch: x has no rows")
        x = np.ascontiguousarray(x.reshape(n, -1), dtype=dtype)
        if x.shape[1] != W1.shape[0]:
            raise ValueError(
                f"x has {x.shape[1]} features per row but W1 expects {W1.shape[0]}"
            )
        # The kernel checks the label range itself (cheaper than min/max here).
        labels, onehot = _labels_or_onehot(t, n, W2.shape[1], dtype, False)
        use_onehot = onehot is not None
        key = (x.shape, W1.shape[1], W2.shape[1], dtype)
        ws = getattr(self._local, "workspaces", None)
        if ws is None:
            ws = self._local.workspaces = {}
        if key not in ws:
            # One set of scratch arrays per shape and thread; old shapes are
            # dropped so that varying batch sizes do not pile up memory.
            ws.clear()
            consts = np.array([0, 1, CE_DELTA, 1.0 / n], dtype)
            ws[key] = (self._step.workspace(n, x.shape[1], *key[1:]), consts)
        scratch, consts = ws[key]
        loss, status = self._step.sgd_step(
            x,
            self._empty_labels if use_onehot else labels,
            onehot if use_onehot else self._empty_onehot[dtype],
            use_onehot,
            W1,
            b1,
            W2,
            b2,
            dtype.type(lr),
            activation == "sigmoid",
            consts,
            scratch,
        )
        if status != self._step.OK:
            _bad_labels(labels, W2.shape[1])
        return np.asarray(loss, dtype=dtype)


#: What the shim's registry instantiates for this backend.
BACKEND = NumbaBackend
