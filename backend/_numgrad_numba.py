"""Fast numerical gradient of the two-layer network, compiled with Numba.

The same central differences as ``backend._numgrad`` (read its docstring for
what is reused and why that is exact), as scalar loops compiled to machine
code and run in parallel over parameters: each thread owns whole columns of
``W1`` (rows of ``W2``) and its own scratch arrays, so no two threads write
to the same place. Per perturbed sample it costs one activation, C multiply-
adds for the moved unit's share of the scores, C exponentials and one log;
perturbing one logit (``W2``, ``b2``) reuses the other logits' exponentials
whenever the row maximum is unchanged, so it costs one exponential and a log.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from backend._base import CE_DELTA, H
from backend._numgrad import Batch, activation_function, distinct_inputs

_JIT = {"cache": True, "nogil": True}


@nb.njit(**_JIT, inline="always")
def _activate(a, sigmoid):
    """``nn.functions.sigmoid`` (exp(-|a|) form) or the ``Relu`` layer."""
    if sigmoid:
        e = np.exp(-abs(a))
        return 1.0 / (1.0 + e) if a >= 0 else e / (1.0 + e)
    return 0.0 if a <= 0 else a


@nb.njit(**_JIT)
def _sample_loss(scores, n, t_ptr, t_col, t_val, e):
    """Softmax (row maximum subtracted) and cross-entropy with its 1e-7 of one
    sample's scores (C,); ``e`` (C,) is scratch. -> -sum_c t_c log(y_c + 1e-7)."""
    c_total = scores.shape[0]
    top = scores[0]
    for c in range(1, c_total):
        if scores[c] > top:
            top = scores[c]
    total = 0.0
    for c in range(c_total):
        d = scores[c] - top
        e[c] = 1.0 if d == 0.0 else np.exp(d)  # exp(0) is exactly 1
        total += e[c]
    loss = 0.0
    for k in range(t_ptr[n], t_ptr[n + 1]):
        loss -= t_val[k] * np.log(e[t_col[k]] / total + CE_DELTA)
    return loss


@nb.njit(**_JIT)
def _base_losses(a2, t_ptr, t_col, t_val):
    """Unperturbed per-sample losses and softmax pieces of the scores (N, C).

    -> loss (N,), top (N,) row maxima, e (N, C) exp(a2 - top), and
    top_without (N, C) / total_without (N, C): the maximum and the sum of e
    over the other classes (summed directly, never by subtraction).
    """
    n_total, c_total = a2.shape
    loss = np.empty(n_total)
    top = np.empty(n_total)
    e = np.empty((n_total, c_total))
    top_without = np.empty((n_total, c_total))
    total_without = np.empty((n_total, c_total))
    for n in range(n_total):
        loss[n] = _sample_loss(a2[n], n, t_ptr, t_col, t_val, e[n])
        top[n] = a2[n].max()
        for c in range(c_total):
            m, s = -np.inf, 0.0
            for k in range(c_total):
                if k != c:
                    m = max(m, a2[n, k])
                    s += e[n, k]
            top_without[n, c] = m
            total_without[n, c] = s
    return loss, top, e, top_without, total_without


@nb.njit(**_JIT, inline="always")
def _unit_moved_loss(pre, n, j, z1, a2, W2, base, sigmoid, t_ptr, t_col, t_val, s, e):
    """Loss of sample n when hidden unit j's pre-activation is ``pre``."""
    dz = _activate(pre, sigmoid) - z1[n, j]
    if dz == 0.0:  # the unit's output is unchanged, so is everything after it
        return base[n]
    for c in range(a2.shape[1]):
        # The second affine layer at the new activation: only unit j's term moves.
        s[c] = a2[n, c] + dz * W2[j, c]
    return _sample_loss(s, n, t_ptr, t_col, t_val, e)


@nb.njit(**_JIT, parallel=True)
def _first_layer(a1, z1, a2, W2, base, rows, values, pixel, entry, tgt, sigmoid, d):
    """Sums over the batch of l(+) - l(-) for every W1[i, j] and b1[j].

    rows/values (P,): each sample's distinct non-zero inputs; pixel/entry (E,):
    each non-zero pixel's column and entry; d: D. -> (D, M) and (M,), unscaled.
    """
    t_ptr, t_col, t_val = tgt
    n_total, m_total = a1.shape
    c_total = a2.shape[1]
    gW1 = np.zeros((d, m_total))
    gb1 = np.zeros(m_total)
    for j in nb.prange(m_total):
        s, e = np.empty(c_total), np.empty(c_total)
        diff = np.empty(rows.shape[0])
        for p in range(rows.shape[0]):
            n = rows[p]
            step = values[p] * H  # x_i·(W1[i, j] ± h) - x_i·W1[i, j]
            plus = _unit_moved_loss(
                a1[n, j] + step,
                n,
                j,
                z1,
                a2,
                W2,
                base,
                sigmoid,
                t_ptr,
                t_col,
                t_val,
                s,
                e,
            )
            minus = _unit_moved_loss(
                a1[n, j] - step,
                n,
                j,
                z1,
                a2,
                W2,
                base,
                sigmoid,
                t_ptr,
                t_col,
                t_val,
                s,
                e,
            )
            diff[p] = plus - minus
        for k in range(pixel.shape[0]):
            gW1[pixel[k], j] += diff[entry[k]]
        acc = 0.0
        for n in range(n_total):
            plus = _unit_moved_loss(
                a1[n, j] + H, n, j, z1, a2, W2, base, sigmoid, t_ptr, t_col, t_val, s, e
            )
            minus = _unit_moved_loss(
                a1[n, j] - H, n, j, z1, a2, W2, base, sigmoid, t_ptr, t_col, t_val, s, e
            )
            acc += plus - minus
        gb1[j] = acc
    return gW1, gb1


@nb.njit(**_JIT, inline="always")
def _logit_moved_loss(value, n, c, a2, pieces, tgt, s, e):
    """Loss of sample n when its score c becomes ``value``."""
    t_ptr, t_col, t_val = tgt
    top, e_base, top_without, total_without = pieces
    if max(top_without[n, c], value) == top[n]:
        # Same row maximum: the other classes' exp terms are exactly the
        # unperturbed ones, so only class c's is recomputed.
        d = value - top[n]
        e_c = 1.0 if d == 0.0 else np.exp(d)
        total = total_without[n, c] + e_c
        loss = 0.0
        for k in range(t_ptr[n], t_ptr[n + 1]):
            col = t_col[k]
            y = (e_c if col == c else e_base[n, col]) / total
            loss -= t_val[k] * np.log(y + CE_DELTA)
        return loss
    for k in range(a2.shape[1]):
        s[k] = a2[n, k]
    s[c] = value
    return _sample_loss(s, n, t_ptr, t_col, t_val, e)


@nb.njit(**_JIT, parallel=True)
def _second_layer(a2, z1, pieces, tgt):
    """Sums over the batch of l(+) - l(-) for every W2[j, c] and b2[c].

    -> (M, C) and (C,), unscaled.
    """
    n_total, c_total = a2.shape
    m_total = z1.shape[1]
    gW2 = np.zeros((m_total, c_total))
    gb2 = np.zeros(c_total)
    for j in nb.prange(m_total + 1):  # row m_total stands for b2 (input 1)
        s, e = np.empty(c_total), np.empty(c_total)
        for c in range(c_total):
            acc = 0.0
            for n in range(n_total):
                shift = H if j == m_total else z1[n, j] * H
                if shift == 0.0:  # a silent unit: no score moves
                    continue
                plus = _logit_moved_loss(a2[n, c] + shift, n, c, a2, pieces, tgt, s, e)
                minus = _logit_moved_loss(a2[n, c] - shift, n, c, a2, pieces, tgt, s, e)
                acc += plus - minus
            if j == m_total:
                gb2[c] = acc
            else:
                gW2[j, c] = acc
    return gW2, gb2


def _sparse_targets(target):
    """(N, C) target weights -> CSR (row pointers, columns, values) of non-zeros."""
    rows, cols = np.nonzero(target)
    ptr = np.zeros(target.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=target.shape[0]), out=ptr[1:])
    return ptr, cols.astype(np.int64), target[rows, cols]


def two_layer_numerical_gradient(params, x, t, activation: str) -> dict:
    """Central-difference gradients of ``TwoLayerNet.loss`` at ``params``.

    params: ``W1`` (D, M), ``b1`` (M,), ``W2`` (M, C), ``b2`` (C,) host float
    arrays; x: (N, D) or (N, ...); t: (N,) integer labels or (N, C) targets;
    activation: "relu" or "sigmoid". -> ``{name: array}`` like ``params``.
    """
    batch = Batch(np, params, x, t, activation, activation_function(activation))
    tgt = _sparse_targets(batch.target)
    base, top, e, top_without, total_without = _base_losses(batch.a2, *tgt)
    rows, values, pixel, entry = distinct_inputs(np, batch.x)
    gW1, gb1 = _first_layer(
        batch.a1,
        batch.z1,
        batch.a2,
        batch.W2,
        base,
        rows,
        values,
        pixel,
        entry,
        tgt,
        activation == "sigmoid",
        batch.W1.shape[0],
    )
    pieces = (top, e, top_without, total_without)
    gW2, gb2 = _second_layer(batch.a2, batch.z1, pieces, tgt)
    scale = 1.0 / (batch.n * 2 * H)  # L = sum / N, then (L(+) - L(-)) / 2h
    grads = {"W1": gW1, "b1": gb1, "W2": gW2, "b2": gb2}
    return {k: (g * scale).astype(params[k].dtype) for k, g in grads.items()}
