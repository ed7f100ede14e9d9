"""Perturbed losses of the first layer (``W1``, ``b1``) for the Numba kernel.

For hidden unit j and entry q (sample n = rows[q], input value v = values[q]),
the two perturbed samples have unit j's pre-activation a ± v·h; everything
else in the forward pass is as unperturbed. Both functions return
diff[j, q] = l(+) - l(-), the two per-sample losses of ``SoftmaxWithLoss``
before the batch mean. Each unit is one parallel iteration; its entries are
taken in blocks, and within a block in runs of one sample, so that the inner
loops are plain elementwise maps over contiguous arrays (compiled to SIMD
without fastmath) and every exp and log goes through ``vexp``/``vlog``.

Scores are exponentiated as exp(score - m) with m the *unperturbed* row
maximum: softmax(s) = exp(s - m) / sum(exp(s - m)) for every m, so this is
the same softmax (only its rounding differs), and score - m <= |dz·w| stays
far below exp's overflow.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from backend.constants import CE_DELTA, H
from backend.numba.mvec import vexp, vlog

_JIT = {"cache": True, "nogil": True}

#: Entries per block: 2 x 256 perturbed samples x 10 classes of scores (40 kB)
#: stay in the L2 cache.
BLOCK = 256


@nb.njit(**_JIT)
def _run_end(rows, q, q1):
    """First index after q (< q1) whose entry belongs to another sample."""
    n = rows[q]
    while q < q1 and rows[q] == n:
        q += 1
    return q


# The elementwise loops below run over whole slices from index 0, so that
# Numba can drop its negative-index wraparound and LLVM can vectorise them.


@nb.njit(**_JIT, inline="always")
def _affine(out, s, x, w):
    """out = s + x·w."""
    for i in range(out.shape[0]):
        out[i] = s + x[i] * w


@nb.njit(**_JIT, inline="always")
def _accumulate(out, x):
    """out += x."""
    for i in range(out.shape[0]):
        out[i] += x[i]


@nb.njit(**_JIT, inline="always")
def _scaled_gather(out, a, ia, b, ib):
    """out = a[ia]·b[ib]."""
    for i in range(out.shape[0]):
        out[i] = a[ia[i]] * b[ib[i]]


@nb.njit(**_JIT, inline="always")
def _sigmoid_at(out, g, f, z, positive):
    """out = sigmoid(a + s) - z from g = exp(-|a|) and f = exp(∓s) (for a >= 0,
    ``positive``: 1 / (1 + g·f)) or f = exp(±s) (a < 0: u / (1 + u), u = g·f)."""
    if positive:
        for i in range(out.shape[0]):
            out[i] = 1.0 / (1.0 + g * f[i]) - z
    else:
        for i in range(out.shape[0]):
            u = g * f[i]
            out[i] = u / (1.0 + u) - z


@nb.njit(**_JIT)
def _losses(e, k_total, slot_n, tgt, total, probs, out):
    """Cross-entropy of k_total perturbed samples (sample slot_n[k] each) from
    e[c * k_total + k] = exp(score_c - m): out[k] = -sum_t w_t log(e_t /
    sum_c e_c + 1e-7), as ``SoftmaxWithLoss`` computes it."""
    t_ptr, t_col, t_val = tgt
    total[:k_total] = e[:k_total]
    for c in range(1, e.shape[0] // k_total):
        _accumulate(total[:k_total], e[c * k_total : (c + 1) * k_total])
    i = 0
    for k in range(k_total):
        n = slot_n[k]
        for kk in range(t_ptr[n], t_ptr[n + 1]):
            probs[i] = e[t_col[kk] * k_total + k] / total[k] + CE_DELTA
            i += 1
    vlog(probs, i)
    i = 0
    for k in range(k_total):
        n = slot_n[k]
        loss = 0.0
        for kk in range(t_ptr[n], t_ptr[n + 1]):
            loss -= t_val[kk] * probs[i]
            i += 1
        out[k] = loss


@nb.njit(**_JIT, parallel=True)
def sigmoid_differences(a1, g, z1, shifted, W2, rows, up, down, tgt, scratch):
    """diff (M, P) of the sigmoid network.

    a1, z1 (N, M) hidden pre-activation and output; g (N, M) = exp(-|a1|) as
    ``nn.functions.sigmoid`` computes it; shifted (N, C) unperturbed scores
    minus their row maximum; rows (P,) sample of each entry (sorted); up,
    down (P,) = exp(values·h), exp(-values·h); tgt CSR target weights;
    scratch: most target entries of one sample.
    """
    m, c_total = W2.shape
    p_total = rows.shape[0]
    diff = np.empty((m, p_total))
    for j in nb.prange(m):
        dz = np.empty(2 * BLOCK)
        e = np.empty(c_total * 2 * BLOCK)
        slot_n = np.empty(2 * BLOCK, dtype=np.int64)
        total, loss = np.empty(2 * BLOCK), np.empty(2 * BLOCK)
        probs = np.empty(2 * BLOCK * scratch)
        for q0 in range(0, p_total, BLOCK):
            q1 = min(p_total, q0 + BLOCK)
            kq = q1 - q0
            k_total = 2 * kq  # slot k < kq: entry q0 + k moved up; kq + k: down
            q = q0
            while q < q1:
                r1 = _run_end(rows, q, q1)
                n = rows[q]
                # sigmoid(a ± v·h) by exp(-(a ± v·h)) = exp(-a)·exp(∓v·h), or
                # for a < 0 exp(a ± v·h) = exp(a)·exp(±v·h) in the e / (1 + e)
                # branch, the two overflow-free forms nn.functions.sigmoid uses.
                lo, hi = q - q0, r1 - q0
                gj, zj, pos = g[n, j], z1[n, j], a1[n, j] >= 0
                _sigmoid_at(dz[lo:hi], gj, down[q:r1] if pos else up[q:r1], zj, pos)
                _sigmoid_at(
                    dz[kq + lo : kq + hi], gj, up[q:r1] if pos else down[q:r1], zj, pos
                )
                # The second affine layer at the new activation: only unit j's
                # term of each score moves, by dz·W2[j, c].
                for c in range(c_total):
                    s, w, off = shifted[n, c], W2[j, c], c * k_total
                    _affine(e[off + lo : off + hi], s, dz[lo:hi], w)
                    _affine(
                        e[off + kq + lo : off + kq + hi], s, dz[kq + lo : kq + hi], w
                    )
                slot_n[lo:hi] = n
                slot_n[kq + lo : kq + hi] = n
                q = r1
            vexp(e, c_total * k_total)
            _losses(e[: c_total * k_total], k_total, slot_n, tgt, total, probs, loss)
            for r in range(kq):
                diff[j, q0 + r] = loss[r] - loss[kq + r]
    return diff


@nb.njit(**_JIT, parallel=True)
def relu_differences(
    a1, z1, shifted, e_base, W2, rows, values, uniq, which, base, tgt, scratch
):
    """diff (M, P) of the ReLU network.

    As ``sigmoid_differences``; e_base (N, C) = exp(shifted); values (P,)
    each entry's input value, uniq (U,) the distinct ones and which (P,) each
    entry's index in uniq; base (N,) the unperturbed per-sample losses.
    """
    m, c_total = W2.shape
    p_total, u_total = rows.shape[0], uniq.shape[0]
    diff = np.empty((m, p_total))
    for j in nb.prange(m):
        # f[c, 2u + s] = exp(±v_u·h·W2[j, c]) (s = 0: +, 1: -): one exp per
        # distinct input value, class and sign, shared by every sample.
        f = np.empty((c_total, 2 * u_total))
        for c in range(c_total):
            for u in range(u_total):
                step = uniq[u] * H
                f[c, 2 * u] = step * W2[j, c]
                f[c, 2 * u + 1] = -step * W2[j, c]
        vexp(f.ravel(), f.size)
        e = np.empty(c_total * 2 * BLOCK)
        slot_q = np.empty(2 * BLOCK, dtype=np.int64)
        slot_n = np.empty(2 * BLOCK, dtype=np.int64)
        slot_kind = np.empty(2 * BLOCK, dtype=np.int64)
        slot_sign = np.empty(2 * BLOCK, dtype=np.int64)
        slot_dz = np.empty(2 * BLOCK)
        crossing = np.empty(2 * BLOCK, dtype=np.int64)
        total, loss = np.empty(2 * BLOCK), np.empty(2 * BLOCK)
        probs = np.empty(2 * BLOCK * scratch)
        for q0 in range(0, p_total, BLOCK):
            q1 = min(p_total, q0 + BLOCK)
            count = n_crossing = 0
            for q in range(q0, q1):
                diff[j, q] = 0.0
                n, a = rows[q], a1[rows[q], j]
                for sign in range(2):
                    step = values[q] * H if sign == 0 else -(values[q] * H)
                    moved = a + step
                    if a <= 0 and moved <= 0:
                        continue  # the unit's output stays 0: l = base, cancels
                    slot_q[count], slot_n[count], slot_sign[count] = q, n, sign
                    # relu(a + s) - relu(a) = s exactly when both are > 0: the
                    # shared factor f applies; else (crossing zero) the Relu
                    # layer's output is taken in full (slot_dz, patched below).
                    slot_kind[count] = 2 * which[q] + sign
                    slot_dz[count] = np.nan
                    if not (a > 0 and moved > 0):
                        slot_dz[count] = (0.0 if moved <= 0 else moved) - z1[n, j]
                        crossing[n_crossing] = count
                        n_crossing += 1
                    count += 1
            if count == 0:
                continue
            for c in range(c_total):
                # exp(shifted + s·w) = exp(shifted)·exp(s·w)
                _scaled_gather(
                    e[c * count : (c + 1) * count],
                    e_base[:, c],
                    slot_n,
                    f[c],
                    slot_kind,
                )
            for i in range(n_crossing):
                k = crossing[i]
                for c in range(c_total):
                    arg = shifted[slot_n[k], c] + slot_dz[k] * W2[j, c]
                    e[c * count + k] = np.exp(arg)
            _losses(e[: c_total * count], count, slot_n, tgt, total, probs, loss)
            for k in range(count):
                # l(+) - l(-) = (l(+) - base) - (l(-) - base), a side left at
                # base contributing 0; each difference is exact (Sterbenz).
                moved_by = loss[k] - base[slot_n[k]]
                diff[j, slot_q[k]] += moved_by if slot_sign[k] == 0 else -moved_by
    return diff
