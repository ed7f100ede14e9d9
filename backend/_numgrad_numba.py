"""Fast numerical gradient of the two-layer network, compiled with Numba.

The same central differences as ``backend._numgrad`` (read its docstring for
what is reused and why that is exact), run in parallel over parameters: each
thread owns whole columns of ``W1`` and its own scratch arrays, so no two
threads write to the same place. For one column j, jitted loops build every
perturbed sample's scores in one pass; the exponentials and logs of all of
them then go through NumPy's vectorised ufuncs in one call each (several
times faster than scalar libm calls in a compiled loop); jitted loops finish
the softmax, the cross-entropy and the sums. Both the jitted stages (``nogil``)
and the ufuncs release the GIL, so a plain thread pool keeps every core busy.
Perturbing one logit (``W2``, ``b2``) reuses the other logits' exponentials
whenever the row maximum is unchanged: one exponential and a log per sample.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from backend._base import CE_DELTA, H
from backend._numgrad import Batch, activation_function, distinct_inputs

_JIT = {"cache": True, "nogil": True}
#: Entries (distinct input values of a sample) per block of work; measured on
#: this machine, blocks small enough for the L2 cache were no faster.
ENTRIES_PER_BLOCK = 1 << 15


@nb.njit(**_JIT)
def _matmul(a, b):
    """a (N, K) @ b (K, M), skipping zeros of ``a`` (most pixels). A BLAS call
    here would leave OpenBLAS threads spinning against the kernels' threads."""
    out = np.zeros((a.shape[0], b.shape[1]))
    for n in range(a.shape[0]):
        for k in range(a.shape[1]):
            if a[n, k] != 0.0:
                for j in range(b.shape[1]):
                    out[n, j] += a[n, k] * b[k, j]
    return out


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
def _softmax_pieces(a2):
    """Softmax pieces of the unperturbed scores (N, C): top (N,) row maxima,
    e (N, C) = exp(a2 - top), and top_without (N, C) / total_without (N, C):
    the maximum of a2 and the sum of e over the other classes (summed
    directly, never by subtraction)."""
    n_total, c_total = a2.shape
    top = np.empty(n_total)
    e = np.empty((n_total, c_total))
    top_without = np.empty((n_total, c_total))
    total_without = np.empty((n_total, c_total))
    for n in range(n_total):
        top[n] = a2[n].max()
        for c in range(c_total):
            d = a2[n, c] - top[n]
            e[n, c] = 1.0 if d == 0.0 else np.exp(d)
        for c in range(c_total):
            m, s = -np.inf, 0.0
            for k in range(c_total):
                if k != c:
                    m = max(m, a2[n, k])
                    s += e[n, k]
            top_without[n, c] = m
            total_without[n, c] = s
    return top, e, top_without, total_without


@nb.njit(**_JIT)
def _pre_activations(a1e, values, pre, arg):
    """Unit j's pre-activation a1e (Q,) moved up (pre[:Q]) and down (pre[Q:])
    by values·h, and the sigmoid's exponent -|pre| in arg."""
    q_total = a1e.shape[0]
    for q in range(q_total):
        step = values[q] * H  # x_i·(W1[i, j] ± h) - x_i·W1[i, j]
        pre[q] = a1e[q] + step
        pre[q_total + q] = a1e[q] - step
    for k in range(pre.shape[0]):
        arg[k] = -abs(pre[k])


@nb.njit(**_JIT)
def _perturbed_scores(pre, exp_arg, sigmoid, z1e, a2e, w, dz, top, scores):
    """Scores (C, 2Q) minus their maximum over classes, for every perturbed
    sample; classes first so every loop runs over long contiguous rows."""
    q_total, c_total = z1e.shape[0], a2e.shape[0]
    for k in range(pre.shape[0]):
        a = pre[k]
        if sigmoid:  # nn.functions.sigmoid: 1 / (1 + e) or e / (1 + e)
            e = exp_arg[k]
            z = (1.0 if a >= 0 else e) / (1.0 + e)
        else:  # the Relu layer
            z = 0.0 if a <= 0 else a
        dz[k] = z
    for q in range(q_total):
        dz[q] -= z1e[q]
        dz[q_total + q] -= z1e[q]
    top[:] = -np.inf
    for c in range(c_total):
        # The second affine layer at the new activation: only unit j's term
        # of the sum moves.
        w_c, row, base = w[c], scores[c], a2e[c]
        for half in range(2):
            off = half * q_total
            for q in range(q_total):
                s = base[q] + dz[off + q] * w_c
                row[off + q] = s
                top[off + q] = s if s > top[off + q] else top[off + q]
    for c in range(c_total):
        for k in range(top.shape[0]):
            scores[c, k] -= top[k]


@nb.njit(**_JIT)
def _probabilities(e, labels, dense, total, out):
    """y + 1e-7 from e = exp(scores - max) (C, 2Q): of the label class (out
    (1, 2Q)) or, for ``dense`` targets, of every class (out (C, 2Q))."""
    q_total = labels.shape[0]
    total[:] = e[0]
    for c in range(1, e.shape[0]):
        for k in range(total.shape[0]):
            total[k] += e[c, k]
    if dense:
        for c in range(e.shape[0]):
            for k in range(total.shape[0]):
                out[c, k] = e[c, k] / total[k] + CE_DELTA
    else:
        for half in range(2):
            for q in range(q_total):
                k = half * q_total + q
                out[0, k] = e[labels[q], k] / total[k] + CE_DELTA


@nb.njit(**_JIT)
def _loss_differences(log_p, weight, target, dense, diff):
    """Cross-entropy of each perturbed sample from log(y + 1e-7) (1 or C,
    2Q), and l(+) - l(-) of each entry into ``diff`` (Q,)."""
    q_total = diff.shape[0]
    for q in range(q_total):
        if dense:
            plus = minus = 0.0
            for c in range(target.shape[0]):
                plus -= target[c, q] * log_p[c, q]
                minus -= target[c, q] * log_p[c, q_total + q]
        else:
            plus = -weight[q] * log_p[0, q]
            minus = -weight[q] * log_p[0, q_total + q]
        diff[q] = plus - minus


@nb.njit(**_JIT)
def _accumulate(diff, pixel, entry, j, n_b1, gW1_t, gb1):
    """Sum the entries' l(+) - l(-) into row j of W1.T (through pixel/entry)
    and, for the last ``n_b1`` entries (input 1), into b1[j]."""
    for k in range(pixel.shape[0]):
        gW1_t[j, pixel[k]] += diff[entry[k]]
    acc = 0.0
    for q in range(diff.shape[0] - n_b1, diff.shape[0]):
        acc += diff[q]
    gb1[j] = acc


def _first_layer_columns(columns, ctx, gW1_t, gb1):
    """W1[:, j] (as row j of gW1_t) and b1[j] sums for each j of ``columns``,
    with this thread's own scratch. The exponentials and logs run through
    NumPy's vectorised ufuncs, several times faster than scalar libm calls in
    compiled loops."""
    batch, per_entry, values, pixel, entry = ctx
    a1e, z1e, a2e, labels, weight, target = per_entry
    dense = batch.labels is None
    sigmoid = batch.activation == "sigmoid"
    q_total, c_total = values.shape[0], a2e.shape[0]
    width = min(q_total, max(256, ENTRIES_PER_BLOCK))
    pre, arg, dz, top = (np.empty(2 * width) for _ in range(4))
    scores = np.empty((c_total, 2 * width))
    probs = np.empty((c_total if dense else 1, 2 * width))
    diff = np.empty(q_total)
    for j in columns:
        for q0 in range(0, q_total, width):
            q1 = min(q_total, q0 + width)
            k = 2 * (q1 - q0)
            p, a, s, y = pre[:k], arg[:k], scores[:, :k], probs[:, :k]
            _pre_activations(a1e[j, q0:q1], values[q0:q1], p, a)
            if sigmoid:
                np.exp(a, out=a)
            _perturbed_scores(
                p,
                a,
                sigmoid,
                z1e[j, q0:q1],
                a2e[:, q0:q1],
                batch.W2[j],
                dz[:k],
                top[:k],
                s,
            )
            np.exp(s, out=s)
            _probabilities(s, labels[q0:q1], dense, top[:k], y)
            np.log(y, out=y)
            _loss_differences(y, weight[q0:q1], target[:, q0:q1], dense, diff[q0:q1])
        _accumulate(diff, pixel, entry, j, batch.n, gW1_t, gb1)


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


_pools: dict[int, ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``workers`` threads (the jitted stages and NumPy's
    ufuncs release the GIL, so the threads really run in parallel)."""
    if workers not in _pools:
        _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="numgrad")
    return _pools[workers]


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
    batch = Batch(
        np, params, x, t, activation, activation_function(activation), _matmul
    )
    tgt = _sparse_targets(batch.target)
    pieces = _softmax_pieces(batch.a2)
    rows, values, pixel, entry = distinct_inputs(np, batch.x, by_pixel=False)
    # b1[j] moves unit j as an input of 1 would: N more entries, one per sample.
    rows = np.concatenate([rows, np.arange(batch.n)])
    values = np.concatenate([values, np.ones(batch.n)])
    labels = batch.labels[rows] if batch.labels is not None else rows
    weight = batch.label_weight[rows] if batch.labels is not None else values
    per_entry = (  # everything indexed by entry, entries on the last axis
        np.ascontiguousarray(batch.a1[rows].T),
        np.ascontiguousarray(batch.z1[rows].T),
        np.ascontiguousarray(batch.a2[rows].T),
        labels,
        weight,
        np.ascontiguousarray(batch.target[rows].T),
    )
    ctx = (batch, per_entry, values, pixel, entry)
    d, m = batch.W1.shape
    gW1_t, gb1 = np.zeros((m, d)), np.zeros(m)
    workers = max(1, min(nb.get_num_threads(), m))
    # Each thread owns the columns j = k, k + workers, ... and their outputs.
    jobs = [
        _pool(workers).submit(
            _first_layer_columns, range(k, m, workers), ctx, gW1_t, gb1
        )
        for k in range(workers)
    ]
    for job in jobs:
        job.result()
    gW2, gb2 = _second_layer(batch.a2, batch.z1, pieces, tgt)
    scale = 1.0 / (batch.n * 2 * H)  # L = sum / N, then (L(+) - L(-)) / 2h
    grads = {"W1": gW1_t.T, "b1": gb1, "W2": gW2, "b2": gb2}
    return {k: (g * scale).astype(params[k].dtype) for k, g in grads.items()}
