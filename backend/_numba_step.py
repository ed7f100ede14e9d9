"""The fused TwoLayerNet SGD step: forward, backward and update in one compiled call.

Imported only by the Numba backend (it imports numba at module level).

Layout of the work (N rows, D inputs, H hidden, C classes):

1. One parallel loop over the rows of the batch does everything that is per
   row: the row's list of non-zero inputs, ``a1 = x @ W1 + b1`` from that
   list, the activation, ``a2 = h @ W2 + b2``, softmax, the row's loss, and
   the backward pass down to ``da1`` (the first layer's dx is never formed).
2. One parallel loop over blocks of W1's rows accumulates ``dW1 = x.T @ da1``
   from the same non-zero lists and applies ``W1 -= lr * dW1`` in place; the
   other tasks compute ``dW2``, ``db2``, ``db1`` and update W2, b2, b1.

Skipping the zero pixels (about 80 % of an MNIST image) gives the dense
result whenever W1 and da1 are finite; if either holds an inf or NaN the
kernel takes the dense loops, so that NaN spreads exactly as ``0 * inf``
does in the dense products. Every sum over the batch runs in row order inside
one task, so results do not depend on the number of threads.

Precision: the per-row losses are summed in float64. The other sums stay in
the params' dtype, like BLAS's; ``x @ W1`` adds its products in groups of four
before they reach the accumulator.

Performance notes: the loop bodies live in small ``@njit`` helpers called
from ``prange``. Column indices are unsigned: Numba's wrap-around test for a
possibly negative index stops LLVM from vectorising the H-wide inner loops.
Scratch arrays come from :func:`workspace` and are reused across calls.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: W1 rows per task of the backward loop.
BLOCK = 64

#: Status codes returned by the kernel next to the loss.
OK, BAD_LABEL = 0, 1


@njit(cache=True)
def _has_nonfinite(a):
    """True if the 2-D array ``a`` holds an inf or a NaN (no early exit: vectorises)."""
    bad = False
    for k in range(a.shape[0]):
        for j in range(a.shape[1]):
            v = a[k, j]
            bad |= (v - v) != 0
    return bad


@njit(cache=True)
def _nonzero_lists(xi, nzi, bptri, dense):
    """Indices of the non-zeros of row ``xi`` (all indices if ``dense``) into
    ``nzi``, in order; ``bptri[b]`` is where block b of BLOCK columns starts.
    -> count."""
    cnt = 0
    for k in range(xi.shape[0]):
        nzi[cnt] = k  # branch-free compaction: kept only if x is non-zero
        cnt += (xi[k] != 0) | dense
    # Block starts by one merge pass over the sorted list.
    p = 0
    nblocks = bptri.shape[0] - 1
    for b in range(nblocks):
        bptri[b] = p
        end = (b + 1) * BLOCK
        while p < cnt and nzi[p] < end:
            p += 1
    bptri[nblocks] = cnt
    return cnt


@njit(cache=True)
def _sparse_row_times(xi, nzi, cnt, W1, acc, zero):
    """acc = xi @ W1 over the ``cnt`` columns listed in ``nzi``. acc: (H,)."""
    h_size = acc.shape[0]
    for j in range(h_size):
        acc[j] = zero
    # Four inputs per pass over acc: a quarter of its loads and stores, which
    # otherwise bound the loop.
    c4 = cnt - cnt % 4
    for p in range(0, c4, 4):
        k0, k1, k2, k3 = nzi[p], nzi[p + 1], nzi[p + 2], nzi[p + 3]
        v0, v1, v2, v3 = xi[k0], xi[k1], xi[k2], xi[k3]
        for j in range(h_size):
            acc[j] += (v0 * W1[k0, j] + v1 * W1[k1, j]) + (
                v2 * W1[k2, j] + v3 * W1[k3, j]
            )
    for p in range(c4, cnt):
        k = nzi[p]
        v = xi[k]
        for j in range(h_size):
            acc[j] += v * W1[k, j]


@njit(cache=True)
def _row_step(xi, label, ti, use_onehot, W1, b1, W2, W2T, b2, sigmoid, consts,
              nzi, bptri, hi, dyi, dai, dense):  # fmt: skip
    """Forward and backward of one row down to da1. -> (row loss, da1 non-finite).

    Fills hi (H,) with the activations, dyi (C,) with (y - t) / N and dai (H,)
    with the gradient at the first layer's output.
    """
    zero, one, delta, inv_n = consts[0], consts[1], consts[2], consts[3]
    h_size = hi.shape[0]
    c_size = dyi.shape[0]
    cnt = _nonzero_lists(xi, nzi, bptri, dense)
    _sparse_row_times(xi, nzi, cnt, W1, hi, zero)
    # Branches on sigmoid/onehot stay outside the loops, which then vectorise.
    if sigmoid:
        for j in range(h_size):
            a = hi[j] + b1[j]
            # The same branches as nn.functions.sigmoid: exp never overflows.
            e = np.exp(-abs(a))
            hi[j] = one / (one + e) if a >= 0 else e / (one + e)
    else:
        for j in range(h_size):
            a = hi[j] + b1[j]
            hi[j] = zero if a <= 0 else a
    for c in range(c_size):
        dyi[c] = zero
    h2 = h_size - h_size % 2
    for j in range(0, h2, 2):
        hv0, hv1 = hi[j], hi[j + 1]
        for c in range(c_size):
            dyi[c] += hv0 * W2[j, c] + hv1 * W2[j + 1, c]
    for j in range(h2, h_size):
        hv = hi[j]
        for c in range(c_size):
            dyi[c] += hv * W2[j, c]
    # Softmax, overflow-safe; a NaN or +inf score makes the row NaN, as in NumPy.
    m = dyi[0] + b2[0]
    for c in range(c_size):
        dyi[c] += b2[c]
        if dyi[c] > m:
            m = dyi[c]
    s = zero
    for c in range(c_size):
        e = np.exp(dyi[c] - m)
        dyi[c] = e
        s += e
    for c in range(c_size):
        dyi[c] = dyi[c] / s
    loss = 0.0
    if use_onehot:
        for c in range(c_size):
            loss -= ti[c] * np.log(dyi[c] + delta)
            dyi[c] = (dyi[c] - ti[c]) * inv_n
    else:
        y = dyi[label]
        loss = -np.log(y + delta)
        for c in range(c_size):
            dyi[c] = dyi[c] * inv_n
        dyi[label] = (y - one) * inv_n
    # dh = dy @ W2.T with W2T = W2.T contiguous: H-wide vector updates rather
    # than H serial dot products of length C.
    for j in range(h_size):
        dai[j] = zero
    for c in range(c_size):
        g = dyi[c]
        for j in range(h_size):
            dai[j] += g * W2T[c, j]
    if sigmoid:
        for j in range(h_size):
            dai[j] = dai[j] * (one - hi[j]) * hi[j]
    else:
        for j in range(h_size):
            # ReLU blocks where a1 <= 0, which is where h is 0.
            dai[j] = zero if hi[j] == 0 else dai[j]
    bad = False
    for j in range(h_size):
        bad |= (dai[j] - dai[j]) != 0
    return loss, bad


@njit(cache=True)
def _update_w1_block(b, x, nz, bptr, da1, W1, lr, dense, acc):
    """W1[rows of block b] -= lr * (x.T @ da1)[same rows]. acc: (D, H) scratch."""
    n, d = x.shape
    h_size = W1.shape[1]
    k0 = b * BLOCK
    k1 = min(d, k0 + BLOCK)
    for k in range(k0, k1):
        for j in range(h_size):
            acc[k, j] = 0
    touched = np.zeros(BLOCK, np.bool_)
    for i in range(n):
        if dense:
            for k in range(k0, k1):
                v = x[i, k]
                for j in range(h_size):
                    acc[k, j] += v * da1[i, j]
            continue
        for p in range(bptr[i, b], bptr[i, b + 1]):
            k = nz[i, p]
            v = x[i, k]
            touched[k - k0] = True
            for j in range(h_size):
                acc[k, j] += v * da1[i, j]
    for k in range(k0, k1):
        # An untouched row has dW1 = 0 and keeps its value exactly.
        if dense or touched[k - k0]:
            for j in range(h_size):
                W1[k, j] -= lr * acc[k, j]


@njit(cache=True)
def _update_small(h, dy, da1, b1, W2, b2, lr, dW2):
    """b1, W2, b2 -= lr * (sum(da1, 0), h.T @ dy, sum(dy, 0)). dW2: (H, C) scratch."""
    n, c_size = dy.shape
    h_size = h.shape[1]
    db1 = np.zeros(h_size, h.dtype)
    db2 = np.zeros(c_size, h.dtype)
    dW2[:] = 0
    for i in range(n):
        for j in range(h_size):
            db1[j] += da1[i, j]
        for c in range(c_size):
            db2[c] += dy[i, c]
        for j in range(h_size):
            hv = h[i, j]
            for c in range(c_size):
                dW2[j, c] += hv * dy[i, c]
    for j in range(h_size):
        b1[j] -= lr * db1[j]
        for c in range(c_size):
            W2[j, c] -= lr * dW2[j, c]
    for c in range(c_size):
        b2[c] -= lr * db2[c]


def workspace(n: int, d: int, h_size: int, c_size: int, dtype) -> tuple:
    """Scratch arrays for :func:`sgd_step` on (n, d) inputs; reusable across calls.

    Allocating them inside the kernel costs more than the rest of a step at
    batch 100 (the large ones go back to the OS on free and fault in again).
    """
    nblocks = (d + BLOCK - 1) // BLOCK
    return (
        np.empty((n, d), np.uint32),  # nz: row i's non-zero column indices
        np.empty((n, nblocks + 1), np.int64),  # bptr: block starts in nz
        np.empty((n, h_size), dtype),  # h: hidden activations
        np.empty((n, h_size), dtype),  # da1: gradient at the first layer's output
        np.empty((n, c_size), dtype),  # dy: (y - t) / N
        np.empty((d, h_size), dtype),  # acc: dW1
        np.empty((c_size, h_size), dtype),  # W2T: W2 transposed
        np.empty((h_size, c_size), dtype),  # dW2
        np.empty(n, np.float64),  # row_loss
        np.empty(n, np.bool_),  # row_bad: da1 row holds inf or NaN
    )


@njit(cache=True, parallel=True)
def sgd_step(x, labels, onehot, use_onehot, W1, b1, W2, b2, lr, sigmoid, consts, ws):
    """One SGD step of Affine-activation-Affine-SoftmaxWithLoss, params in place.

    Parameters
    ----------
    x : (N, D) float, C-contiguous, the params' dtype
    labels : (N,) int64 class labels (ignored when ``use_onehot``)
    onehot : (N, C) float targets of the params' dtype (used if ``use_onehot``)
    use_onehot : bool
    W1, b1, W2, b2 : (D, H), (H,), (H, C), (C,) float, updated in place
    lr : float scalar of the params' dtype
    sigmoid : bool, the hidden activation is sigmoid (else ReLU)
    consts : (4,) float of the params' dtype: 0, 1, the log's delta 1e-7, 1/N
    ws : tuple from :func:`workspace` for these shapes

    Returns ``(loss, status)``: the float64 mean loss before the update and
    ``OK``, or ``BAD_LABEL`` (nothing updated) if a label is outside [0, C).
    """
    n, d = x.shape
    c_size = W2.shape[1]
    if not use_onehot:
        for i in range(n):
            if labels[i] < 0 or labels[i] >= c_size:
                return 0.0, BAD_LABEL
    nz, bptr, h, da1, dy, acc, W2T, dW2, row_loss, row_bad = ws
    dense_fw = _has_nonfinite(W1)
    nblocks = bptr.shape[1] - 1
    W2T[:] = W2.T
    for i in prange(n):
        label = 0 if use_onehot else labels[i]
        ti = onehot[i] if use_onehot else dy[i]
        row_loss[i], row_bad[i] = _row_step(
            x[i], label, ti, use_onehot, W1, b1, W2, W2T, b2, sigmoid, consts,
            nz[i], bptr[i], h[i], dy[i], da1[i], dense_fw,
        )  # fmt: skip
    dense_bw = dense_fw or row_bad.any()
    for task in prange(nblocks + 1):
        if task < nblocks:
            _update_w1_block(task, x, nz, bptr, da1, W1, lr, dense_bw, acc)
        else:
            _update_small(h, dy, da1, b1, W2, b2, lr, dW2)
    total = 0.0
    for i in range(n):
        total += row_loss[i]
    return total / n, OK
