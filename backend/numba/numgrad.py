"""Fast numerical gradient of the two-layer network, compiled with Numba.

The same central differences as ``backend.numgrad`` (read its docstring for
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

from backend.constants import CE_DELTA, H
from backend.numgrad import Batch, distinct_inputs

_JIT = {"cache": True, "nogil": True}


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


@nb.njit(**_JIT)
def _pre_activations(a1, j, rows, values, pre, arg):
    """Unit j's pre-activation for each entry q moved up (pre[2q]) and down
    (pre[2q + 1]) by values[q]·h, and the sigmoid's exponent -|pre| in arg."""
    for q in range(rows.shape[0]):
        step = values[q] * H  # x_i·(W1[i, j] ± h) - x_i·W1[i, j]
        pre[2 * q] = a1[rows[q], j] + step
        pre[2 * q + 1] = a1[rows[q], j] - step
    for k in range(pre.shape[0]):
        arg[k] = -abs(pre[k])


@nb.njit(**_JIT)
def _moved_scores(pre, exp_arg, sigmoid, j, rows, z1, a2, W2, scores, moved):
    """Scores minus their row maximum for each perturbed sample whose unit j
    output changes; ``moved[k]`` says which. -> rows of ``scores`` written."""
    count = 0
    w = W2[j]
    for k in range(pre.shape[0]):
        n, a = rows[k >> 1], pre[k]
        if sigmoid:  # nn.functions.sigmoid, with exp_arg = exp(-|a|)
            e = exp_arg[k]
            z = 1.0 / (1.0 + e) if a >= 0 else e / (1.0 + e)
        else:  # the Relu layer
            z = 0.0 if a <= 0 else a
        dz = z - z1[n, j]
        moved[k] = dz != 0.0  # else everything after the unit is unchanged
        if dz == 0.0:
            continue
        # The second affine layer at the new activation: only unit j's term
        # of the sum moves.
        top = -np.inf
        for c in range(a2.shape[1]):
            s_c = a2[n, c] + dz * w[c]
            scores[count, c] = s_c
            top = max(top, s_c)
        for c in range(a2.shape[1]):
            scores[count, c] -= top
        count += 1
    return count


@nb.njit(**_JIT)
def _probabilities(e, moved, rows, t_ptr, t_col, out):
    """y_c + 1e-7 = e_c / sum(e) + 1e-7 of each moved sample's target classes,
    in order, from e = exp(scores - max). -> entries of ``out`` written."""
    i = r = 0
    for k in range(moved.shape[0]):
        if moved[k]:
            n = rows[k >> 1]
            total = 0.0
            for c in range(e.shape[1]):
                total += e[r, c]
            for kk in range(t_ptr[n], t_ptr[n + 1]):
                out[i] = e[r, t_col[kk]] / total + CE_DELTA
                i += 1
            r += 1
    return i


@nb.njit(**_JIT)
def _accumulate(log_p, moved, rows, base, t_ptr, t_val, pixel, entry, j, gW1_t, gb1):
    """Cross-entropy of each perturbed sample from log(y + 1e-7), l(+) - l(-)
    per entry, summed into row j of W1.T (through pixel/entry) and, for the
    last N entries (input 1), into b1[j]."""
    i = 0
    diff = np.empty(rows.shape[0])
    for q in range(rows.shape[0]):
        n = rows[q]
        plus = minus = base[n]
        if moved[2 * q]:
            plus = 0.0
            for kk in range(t_ptr[n], t_ptr[n + 1]):
                plus -= t_val[kk] * log_p[i]
                i += 1
        if moved[2 * q + 1]:
            minus = 0.0
            for kk in range(t_ptr[n], t_ptr[n + 1]):
                minus -= t_val[kk] * log_p[i]
                i += 1
        diff[q] = plus - minus
    for k in range(pixel.shape[0]):
        gW1_t[j, pixel[k]] += diff[entry[k]]
    acc = 0.0
    for q in range(rows.shape[0] - base.shape[0], rows.shape[0]):
        acc += diff[q]
    gb1[j] = acc


def _first_layer_columns(columns, ctx, gW1_t, gb1):
    """W1[:, j] (as row j of gW1_t) and b1[j] sums for each j of ``columns``,
    with this thread's own scratch. The exponentials and logs run through
    NumPy's vectorised ufuncs, several times faster than scalar libm calls in
    compiled loops."""
    batch, rows, values, base, tgt, pixel, entry = ctx
    t_ptr, t_col, t_val = tgt
    sigmoid = batch.activation == "sigmoid"
    size = 2 * rows.shape[0]
    pre, arg = np.empty(size), np.empty(size)
    moved = np.empty(size, dtype=np.bool_)
    scores = np.empty((size, batch.a2.shape[1]))
    probs = np.empty(size * int(np.max(np.diff(t_ptr))))
    for j in columns:
        _pre_activations(batch.a1, j, rows, values, pre, arg)
        if sigmoid:
            np.exp(arg, out=arg)
        count = _moved_scores(
            pre, arg, sigmoid, j, rows, batch.z1, batch.a2, batch.W2, scores, moved
        )
        np.exp(scores[:count], out=scores[:count])
        used = _probabilities(scores, moved, rows, t_ptr, t_col, probs)
        np.log(probs[:used], out=probs[:used])
        _accumulate(probs, moved, rows, base, t_ptr, t_val, pixel, entry, j, gW1_t, gb1)


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


def two_layer_numerical_gradient(params, x, t, activation: str, forward) -> dict:
    """Central-difference gradients of ``TwoLayerNet.loss`` at ``params``.

    params: ``W1`` (D, M), ``b1`` (M,), ``W2`` (M, C), ``b2`` (C,) host float
    arrays; x: (N, D) or (N, ...); t: (N,) integer labels or (N, C) targets;
    activation: "relu" or "sigmoid" (the compiled kernels' choice); forward:
    the network's own activation, for the unperturbed forward pass.
    -> ``{name: array}`` like ``params``.
    """
    batch = Batch(np, params, x, t, activation, forward, _matmul)
    tgt = _sparse_targets(batch.target)
    base, top, e, top_without, total_without = _base_losses(batch.a2, *tgt)
    rows, values, pixel, entry = distinct_inputs(np, batch.x, by_pixel=False)
    # b1[j] moves unit j as an input of 1 would: N more entries, one per sample.
    rows = np.concatenate([rows, np.arange(batch.n)])
    values = np.concatenate([values, np.ones(batch.n)])
    ctx = (batch, rows, values, base, tgt, pixel, entry)
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
    pieces = (top, e, top_without, total_without)
    gW2, gb2 = _second_layer(batch.a2, batch.z1, pieces, tgt)
    scale = 1.0 / (batch.n * 2 * H)  # L = sum / N, then (L(+) - L(-)) / 2h
    grads = {"W1": gW1_t.T, "b1": gb1, "W2": gW2, "b2": gb2}
    return {k: (g * scale).astype(params[k].dtype) for k, g in grads.items()}
