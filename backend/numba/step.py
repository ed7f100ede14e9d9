"""The TwoLayerNet SGD step: BLAS for the two large products, Numba for the rest.

Imported only by the Numba backend (it imports numba at module level).

A step (N rows, D inputs, H hidden, C classes) is three calls:

1. ``h = x @ W1`` by BLAS (``np.matmul`` into a scratch array);
2. `middle`, one serial compiled call for everything small: bias and
   activation, scores, softmax, the loss, ``dy = (y - t) / N``, the gradient
   ``da1`` at the first layer's output, and the updates of b1, W2 and b2;
3. ``dW1 = x.T @ da1`` by BLAS, then ``W1 -= lr * dW1`` in place.

Why this split (issue 5: keep whichever route is faster per shape). Measured
at 784-50-10, batch 100, float32 on the 2-core machine, medians of
interleaved rounds (scratch timeit scripts; the machine was busy, so only
ratios within one run count):

- The two D x H products are 96 % of the multiply-adds and BLAS runs them
  near the core's peak (100x784 @ 784x50: 66 us on 2 threads, 104 us on one).
  The earlier fully compiled step, which skipped zero pixels instead, lost to
  the plain NumPy step: 1331 us (row-parallel) and 1241 us (serial) against
  NumPy's 732 us and this split's 451 us on Fashion-MNIST, which is half
  non-zero; at MNIST's 20 % non-zero it still lost (ratio 1.35 to NumPy).
- The small work (H x C products, softmax, sums over the batch) is about 25
  NumPy calls per step, each with its fixed cost and temporaries; as one
  compiled call it takes about 30 us. It runs on one thread: at this size a
  parallel region's fork and join costs more than it saves, and under load
  its workers wait for a core (with BLAS on one thread, the old parallel
  step was then 11.5 ms against NumPy's 1.6 ms; this split took 0.83 ms).
- The scores ``h @ W2`` are formed with the batch as the inner, vectorised
  loop (transposed scratch): with the C = 10 classes innermost the loop
  vectorises poorly and costs 3x more (25 vs 7 us).

No fastmath: NaN and inf propagate as in the NumPy step (the products are the
same BLAS calls). The per-row losses are summed in float64.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Status codes returned by `middle` next to the loss.
OK, BAD_LABEL = 0, 1


@njit(cache=True)
def activate_row(hi, b1, sigmoid, zero, one):
    """hi = act(hi + b1) in place; hi: (H,). The formulas of nn.functions and
    the layers: sigmoid never overflows, ReLU keeps a NaN (it is not <= 0)."""
    h_size = hi.shape[0]
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


@njit(cache=True)
def _activate(h, b1, hT, sigmoid, zero, one):
    """h = act(h + b1) in place, and hT = h.T. h: (N, H); hT: (H, N)."""
    n, h_size = h.shape
    for i in range(n):
        hi = h[i]
        activate_row(hi, b1, sigmoid, zero, one)
        for j in range(h_size):
            hT[j, i] = hi[j]


@njit(cache=True)
def _scores(hT, W2, b2, sT):
    """sT = (h @ W2 + b2).T with the batch as the inner, vectorised loop.

    hT: (H, N); W2: (H, C); b2: (C,); sT: (C, N).
    """
    h_size, n = hT.shape
    for c in range(W2.shape[1]):
        sc = sT[c]
        for i in range(n):
            sc[i] = 0
        for j in range(h_size):
            w = W2[j, c]
            hj = hT[j]
            for i in range(n):
                sc[i] += w * hj[i]
        for i in range(n):
            sc[i] += b2[c]


@njit(cache=True)
def _softmax_loss_row(sT, i, label, ti, use_onehot, consts, dyi):
    """dyi = (softmax(sT[:, i]) - t_i) / N; -> the row's loss (float64).

    Overflow-safe; a NaN or +inf score makes the row NaN, as in NumPy.
    """
    zero, one, delta, inv_n = consts[0], consts[1], consts[2], consts[3]
    c_size = dyi.shape[0]
    m = sT[0, i]
    for c in range(c_size):
        dyi[c] = sT[c, i]
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
    return loss


@njit(cache=True)
def _backward_update(h, dy, W2, b1, b2, lr, sigmoid, zero, one, da1, dW2T):
    """da1 = (dy @ W2.T) * act'(h); then b1, W2, b2 -= lr * their gradients.

    h, da1: (N, H); dy: (N, C); dW2T: (C, H) scratch. Every H-wide loop is
    innermost (vectorised); W2 is read before it is updated.
    """
    n, h_size = h.shape
    c_size = dy.shape[1]
    W2T = np.ascontiguousarray(W2.T)
    db1 = np.zeros(h_size, h.dtype)
    db2 = np.zeros(c_size, h.dtype)
    dW2T[:] = 0
    for i in range(n):
        hi, dai = h[i], da1[i]
        for j in range(h_size):
            dai[j] = 0
        for c in range(c_size):
            g = dy[i, c]
            db2[c] += g
            for j in range(h_size):
                dai[j] += g * W2T[c, j]
                dW2T[c, j] += g * hi[j]
        if sigmoid:
            for j in range(h_size):
                dai[j] = dai[j] * (one - hi[j]) * hi[j]
        else:
            for j in range(h_size):
                # ReLU blocks where a1 <= 0, which is where h is 0.
                dai[j] = zero if hi[j] == 0 else dai[j]
        for j in range(h_size):
            db1[j] += dai[j]
    for j in range(h_size):
        b1[j] -= lr * db1[j]
        for c in range(c_size):
            W2[j, c] -= lr * dW2T[c, j]
    for c in range(c_size):
        b2[c] -= lr * db2[c]


@njit(cache=True)
def middle(h, labels, onehot, use_onehot, b1, W2, b2, lr, sigmoid, consts, ws):
    """All of the step between the two BLAS products, on one thread.

    Parameters
    ----------
    h : (N, H) float, ``x @ W1`` on entry, the activations on return
    labels : (N,) int64 class labels (ignored when ``use_onehot``)
    onehot : (N, C) float targets of the params' dtype (used if ``use_onehot``)
    use_onehot : bool
    b1, W2, b2 : (H,), (H, C), (C,) float, updated in place
    lr : float scalar of the params' dtype
    sigmoid : bool, the hidden activation is sigmoid (else ReLU)
    consts : (4,) float of the params' dtype: 0, 1, the log's delta 1e-7, 1/N
    ws : tuple from `workspace`; ``ws[0]`` receives da1 (N, H)

    Returns ``(loss, status)``: the float64 mean loss before the update and
    ``OK``, or ``BAD_LABEL`` (nothing updated) if a label is outside [0, C).
    """
    n = h.shape[0]
    c_size = W2.shape[1]
    if not use_onehot:
        for i in range(n):
            if labels[i] < 0 or labels[i] >= c_size:
                return 0.0, BAD_LABEL
    da1, hT, sT, dy, dW2T = ws[0], ws[1], ws[2], ws[3], ws[4]
    zero, one = consts[0], consts[1]
    _activate(h, b1, hT, sigmoid, zero, one)
    _scores(hT, W2, b2, sT)
    total = 0.0
    for i in range(n):
        label = 0 if use_onehot else labels[i]
        ti = onehot[i] if use_onehot else dy[i]
        total += _softmax_loss_row(sT, i, label, ti, use_onehot, consts, dy[i])
    _backward_update(h, dy, W2, b1, b2, lr, sigmoid, zero, one, da1, dW2T)
    return total / n, OK


@njit(cache=True)
def update_w1(W1, dW1, lr):
    """W1 -= lr * dW1 in place, one pass (the same rounding as SGD.update)."""
    for k in range(W1.shape[0]):
        for j in range(W1.shape[1]):
            W1[k, j] -= lr * dW1[k, j]


def workspace(n: int, d: int, h_size: int, c_size: int, dtype) -> tuple:
    """Scratch arrays for one step on (n, d) inputs; reusable across calls.

    -> (h (N, H), dW1 (D, H), the tuple ``ws`` for `middle`).
    Allocating them per step costs page faults: the large ones go back to the
    OS on free and fault in again.
    """
    ws = (
        np.empty((n, h_size), dtype),  # da1: gradient at the first layer's output
        np.empty((h_size, n), dtype),  # hT: activations, transposed
        np.empty((c_size, n), dtype),  # sT: scores, transposed
        np.empty((n, c_size), dtype),  # dy: (y - t) / N
        np.empty((c_size, h_size), dtype),  # dW2T: dW2 transposed
    )
    return np.empty((n, h_size), dtype), np.empty((d, h_size), dtype), ws


def sgd_step(x, labels, onehot, use_onehot, W1, b1, W2, b2, lr, sigmoid, consts, ws):
    """One SGD step of Affine-activation-Affine-SoftmaxWithLoss, params in place.

    x: (N, D) C-contiguous in the params' dtype; ``ws`` from `workspace`;
    the other arguments as for `middle`. -> ``(loss, status)`` as there.
    """
    h, dW1, mid = ws
    np.matmul(x, W1, out=h)
    loss, status = middle(h, labels, onehot, use_onehot, b1, W2, b2, lr, sigmoid,
                          consts, mid)  # fmt: skip
    if status == OK:
        np.matmul(x.T, mid[0], out=dW1)
        update_w1(W1, dW1, lr)
    return loss, status
