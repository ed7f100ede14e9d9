"""Numba kernels: softmax, fused softmax cross-entropy, a small matmul.

Imported only by the Numba backend (it imports numba at module level). The
row kernels come in a row-parallel and a serial form; the backend picks by
size. Each kernel writes into an output the caller allocates, so nothing the size of the
batch is allocated here. ``fastmath`` stays off: NaN and inf propagate as in
NumPy. Scalars (0, 1, the log's delta) come in the array's dtype, so float32
work stays float32.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _softmax_row(xi, yi, zero):
    """yi = softmax(xi) for one row; overflow-safe (the row maximum is subtracted).

    A NaN or +inf in the row makes the whole row NaN, as NumPy's max does.
    """
    m = xi[0]
    for c in range(1, xi.shape[0]):
        if xi[c] > m or xi[c] != xi[c]:
            m = xi[c]
    s = zero
    for c in range(xi.shape[0]):
        e = np.exp(xi[c] - m)
        yi[c] = e
        s += e
    for c in range(xi.shape[0]):
        yi[c] = yi[c] / s


@njit(cache=True, parallel=True)
def softmax_rows(x, y, zero):
    """y[i] = softmax(x[i]) for each row, rows in parallel. x, y: (N, C)."""
    for i in prange(x.shape[0]):
        _softmax_row(x[i], y[i], zero)


@njit(cache=True)
def softmax_rows_serial(x, y, zero):
    """As `softmax_rows` without threads (small inputs: no fork/join cost)."""
    for i in range(x.shape[0]):
        _softmax_row(x[i], y[i], zero)


@njit(cache=True)
def _ce_labels_row(x, labels, y, consts, i):
    """Row i: y[i] = softmax(x[i]); -> -log(y[i, t_i] + delta)."""
    _softmax_row(x[i], y[i], consts[0])
    return -np.log(y[i, labels[i]] + consts[1])


@njit(cache=True)
def _ce_onehot_row(x, t, y, consts, i):
    """Row i: y[i] = softmax(x[i]); -> -sum(t[i] * log(y[i] + delta))."""
    _softmax_row(x[i], y[i], consts[0])
    s = 0.0
    for c in range(x.shape[1]):
        s -= t[i, c] * np.log(y[i, c] + consts[1])
    return s


@njit(cache=True)
def _mean(row_loss):
    """Mean of the per-row losses, summed in row order in float64."""
    total = 0.0
    for i in range(row_loss.shape[0]):
        total += row_loss[i]
    return total / row_loss.shape[0]


@njit(cache=True, parallel=True)
def softmax_cross_entropy_labels(x, labels, y, consts):
    """y = softmax(x) row-wise and the mean of -log(y[i, t_i] + delta).

    x, y: (N, C); labels: (N,) int64 in [0, C) (checked by the caller);
    consts: (zero, delta). Returns the float64 mean loss. Rows in parallel.
    """
    row_loss = np.empty(x.shape[0], np.float64)
    for i in prange(x.shape[0]):
        row_loss[i] = _ce_labels_row(x, labels, y, consts, i)
    return _mean(row_loss)


@njit(cache=True)
def softmax_cross_entropy_labels_serial(x, labels, y, consts):
    """As `softmax_cross_entropy_labels` on one thread (small inputs)."""
    row_loss = np.empty(x.shape[0], np.float64)
    for i in range(x.shape[0]):
        row_loss[i] = _ce_labels_row(x, labels, y, consts, i)
    return _mean(row_loss)


@njit(cache=True, parallel=True)
def softmax_cross_entropy_onehot(x, t, y, consts):
    """y = softmax(x) row-wise and the mean over rows of -sum(t * log(y + delta)).

    x, t, y: (N, C); consts: (zero, delta). Returns the float64 mean loss.
    Rows in parallel.
    """
    row_loss = np.empty(x.shape[0], np.float64)
    for i in prange(x.shape[0]):
        row_loss[i] = _ce_onehot_row(x, t, y, consts, i)
    return _mean(row_loss)


@njit(cache=True)
def softmax_cross_entropy_onehot_serial(x, t, y, consts):
    """As `softmax_cross_entropy_onehot` on one thread (small inputs)."""
    row_loss = np.empty(x.shape[0], np.float64)
    for i in range(x.shape[0]):
        row_loss[i] = _ce_onehot_row(x, t, y, consts, i)
    return _mean(row_loss)


@njit(cache=True)
def softmax_cross_entropy_backward_labels(y, labels, scale, one, dx):
    """dx = (y - onehot(labels)) * scale. y, dx: (N, C); labels: (N,) int64."""
    for i in range(y.shape[0]):
        for c in range(y.shape[1]):
            dx[i, c] = y[i, c] * scale
        dx[i, labels[i]] = (y[i, labels[i]] - one) * scale


@njit(cache=True)
def softmax_cross_entropy_backward_onehot(y, t, scale, dx):
    """dx = (y - t) * scale. y, t, dx: (N, C)."""
    for i in range(y.shape[0]):
        for c in range(y.shape[1]):
            dx[i, c] = (y[i, c] - t[i, c]) * scale


@njit(cache=True)
def matmul_small(a, b, out, zero):
    """out = a @ b by rows, for products too small for BLAS's call overhead.

    a: (N, K), b: (K, M), out: (N, M), all C-contiguous. Row i of out is built
    as sum over k of a[i, k] * b[k] (M-wide SIMD updates).
    """
    n, kk = a.shape
    m = b.shape[1]
    for i in range(n):
        for j in range(m):
            out[i, j] = zero
        for k in range(kk):
            v = a[i, k]
            for j in range(m):
                out[i, j] += v * b[k, j]


@njit(cache=True)
def gather_scaled(x, rows, scale, out):
    """out[i] = x[rows[i]] / scale, divided in float32, then cast to out's dtype.

    x: (N, D) uint8, C-contiguous; rows: (B,) int64, negative ones counting
    from the end as in NumPy; scale: float32; out: (B, D) float. One pass
    reads the 1-byte pixels and writes the floats (NumPy needs a gather, a
    cast and a division). Returns -1, or the position in ``rows`` of the
    first index outside [-N, N) (then ``out`` is partly written).
    """
    n = x.shape[0]
    for i in range(rows.shape[0]):
        r = rows[i]
        if r < 0:
            r += n
        if r < 0 or r >= n:
            return i
        src = x[r]
        dst = out[i]
        for k in range(src.shape[0]):
            dst[k] = np.float32(src[k]) / scale
    return -1
