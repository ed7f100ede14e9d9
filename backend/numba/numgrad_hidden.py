"""Perturbed losses of the first layer (``W1``, ``b1``) for the Numba kernel.

Entries: for each sample n, its distinct non-zero input values v in
increasing order and then 1.0 (the input ``b1`` sees), entries seg[n] to
seg[n + 1] - 1. Perturbing W1[i, j] (or b1[j]) by ±h moves only unit j's
pre-activation, a ± v·h, in each sample with x[n, i] = v; everything else in
the forward pass is as unperturbed. Each unit is one parallel iteration and
takes the batch sample by sample: the entries of one sample are plain
elementwise maps over contiguous slices (compiled to SIMD without fastmath),
and every exp and log goes through ``vexp``/``vlog``.

Exact identities used, besides those of ``backend.numgrad`` (softmax with the
*unperturbed* row maximum m as its shift; exp(x + y) = exp(x)·exp(y)):

* l(+) - l(-) = -sum_t w_t log(p+_t + δ) + sum_t w_t log(p-_t + δ)
  = sum_t w_t log((p-_t + δ) / (p+_t + δ)), log a - log b = log(a / b):
  one log per target entry and input value instead of two;
* p + δ = e_t / T + δ = (e_t + δ·T) / T, so the ratio is
  (e-_t + δ·T-)·T+ / ((e+_t + δ·T+)·T-), one division instead of five.

Only rounding changes (a few ulp of the ratio, which is within 1e-5 of 1: the
difference comes out more accurate than as two losses of size ~2 subtracted).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from backend.constants import CE_DELTA, H
from backend.numba.mvec import vexp, vlog

_JIT = {"cache": True, "nogil": True}

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
def _scaled_gather(out, s, f, which):
    """out = s·f[which]."""
    for i in range(out.shape[0]):
        out[i] = s * f[which[i]]


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


@nb.njit(**_JIT, inline="always")
def _ratio(out, e_up, t_up, e_down, t_down):
    """out = (p-_t + δ) / (p+_t + δ) with p = e / T, as (e- + δT-)·T+ /
    ((e+ + δT+)·T-)."""
    for i in range(out.shape[0]):
        out[i] = ((e_down[i] + CE_DELTA * t_down[i]) * t_up[i]) / (
            (e_up[i] + CE_DELTA * t_up[i]) * t_down[i]
        )


@nb.njit(**_JIT, inline="always")
def _add_scaled(out, w, x):
    """out += w·x."""
    for i in range(out.shape[0]):
        out[i] += w * x[i]


@nb.njit(**_JIT, inline="always")
def _pair_differences(e, k, c_total, n, tgt, total, ratio, out):
    """out[:k] += l(+) - l(-) of sample n at k input values, from
    e[c·2k + i] = exp(score_c - m) moved up (i < k) and down (k + i)."""
    t_ptr, t_col, t_val = tgt
    k2 = 2 * k
    total[:k2] = e[:k2]
    for c in range(1, c_total):
        _accumulate(total[:k2], e[c * k2 : (c + 1) * k2])
    for kk in range(t_ptr[n], t_ptr[n + 1]):
        col = t_col[kk] * k2
        _ratio(
            ratio[:k], e[col : col + k], total[:k], e[col + k : col + k2], total[k:k2]
        )
        vlog(ratio, k)
        _add_scaled(out[:k], t_val[kk], ratio[:k])


@nb.njit(**_JIT)
def _longest(seg):
    """The most entries of one sample."""
    k = 0
    for n in range(seg.shape[0] - 1):
        k = max(k, seg[n + 1] - seg[n])
    return k


@nb.njit(**_JIT, inline="always")
def _scatter_unit(diff, seg, pixel, entry, out_row):
    """W1[:, j]'s row of sums from the unit's entry differences; -> b1[j]'s."""
    for i in range(out_row.shape[0]):
        out_row[i] = 0.0
    for k in range(pixel.shape[0]):
        out_row[pixel[k]] += diff[entry[k]]
    acc = 0.0
    for n in range(seg.shape[0] - 1):
        acc += diff[seg[n + 1] - 1]  # each sample's last entry: b1's input 1
    return acc


@nb.njit(**_JIT, parallel=True)
def sigmoid_first_layer(a1, g, z1, shifted, W2, seg, up, down, tgt, pixel, entry, d):
    """Unscaled sums of l(+) - l(-) over the batch for W1 (as W1.T, (M, D))
    and b1 (M,) of the sigmoid network.

    a1, z1 (N, M) hidden pre-activation and output; g (N, M) = exp(-|a1|) as
    ``nn.functions.sigmoid`` computes it; shifted (N, C) unperturbed scores
    minus their row maximum; seg (N + 1,) each sample's entries; up, down
    (P,) = exp(values·h), exp(-values·h); tgt CSR target weights; pixel,
    entry (E,) each non-zero pixel's column and entry; d inputs.
    """
    m, c_total = W2.shape
    n_total = a1.shape[0]
    k_max = _longest(seg)
    # No array expressions here: the caller schedules this function's
    # parallel loops one iteration at a time.
    gW1_t, gb1 = np.empty((m, d)), np.empty(m)
    for j in nb.prange(m):
        dz = np.empty(2 * k_max)
        e = np.empty(c_total * 2 * k_max)
        total, ratio = np.empty(2 * k_max), np.empty(k_max)
        diff = np.zeros(seg[n_total])  # in the loop: not a parallel expression
        for n in range(n_total):
            if tgt[0][n + 1] == tgt[0][n]:
                continue  # an all-zero target row has no loss term: l(+) = l(-)
            q0, q1 = seg[n], seg[n + 1]
            k = q1 - q0
            k2 = 2 * k
            # sigmoid(a ± v·h) by exp(-(a ± v·h)) = exp(-a)·exp(∓v·h), or for
            # a < 0 exp(a ± v·h) = exp(a)·exp(±v·h) in the e / (1 + e) branch:
            # the two overflow-free forms nn.functions.sigmoid uses.
            gj, zj, pos = g[n, j], z1[n, j], a1[n, j] >= 0
            _sigmoid_at(dz[:k], gj, down[q0:q1] if pos else up[q0:q1], zj, pos)
            _sigmoid_at(dz[k:k2], gj, up[q0:q1] if pos else down[q0:q1], zj, pos)
            # The second affine layer at the new activation: only unit j's
            # term of each score moves, by dz·W2[j, c].
            for c in range(c_total):
                _affine(e[c * k2 : (c + 1) * k2], shifted[n, c], dz[:k2], W2[j, c])
            vexp(e, c_total * k2)
            _pair_differences(e, k, c_total, n, tgt, total, ratio, diff[q0:q1])
        gb1[j] = _scatter_unit(diff, seg, pixel, entry, gW1_t[j])
    return gW1_t, gb1


@nb.njit(**_JIT, parallel=True)
def relu_first_layer(
    a1, z1, shifted, e_base, W2, seg, values, uniq, which, tgt, pixel, entry, d
):
    """As ``sigmoid_first_layer`` for the ReLU network; e_base (N, C) =
    exp(shifted); values (P,) each entry's input value, uniq (U,) the
    distinct ones and which (P,) each entry's index in uniq.

    Where a > 0 and a ± v·h > 0, relu(a ± v·h) - relu(a) = ±v·h (relu is the
    identity on positives), so exp(score_c - m ± v·h·W2[j, c]) =
    e_base[n, c]·exp(±v·h·W2[j, c]): the second factor is one exponential per
    distinct value, class and sign, shared by every sample. Where a <= 0 and
    a ± v·h <= 0 the unit's output stays 0 (that side's loss is the
    unperturbed one); a side that crosses zero is evaluated in full.
    """
    m, c_total = W2.shape
    n_total, u_total = a1.shape[0], uniq.shape[0]
    k_max = _longest(seg)
    # No array expressions here: the caller schedules this function's
    # parallel loops one iteration at a time.
    gW1_t, gb1 = np.empty((m, d)), np.empty(m)
    for j in nb.prange(m):
        # f_up[c, u], f_down[c, u] = exp(±v_u·h·W2[j, c])
        f_up, f_down = np.empty((c_total, u_total)), np.empty((c_total, u_total))
        for c in range(c_total):
            for u in range(u_total):
                f_up[c, u] = (uniq[u] * H) * W2[j, c]
                f_down[c, u] = -(uniq[u] * H) * W2[j, c]
        vexp(f_up.ravel(), f_up.size)
        vexp(f_down.ravel(), f_down.size)
        e = np.empty(c_total * 2 * k_max)
        total, ratio = np.empty(2 * k_max), np.empty(k_max)
        diff = np.zeros(seg[n_total])  # in the loop: not a parallel expression
        for n in range(n_total):
            q0, q1 = seg[n], seg[n + 1]
            k = q1 - q0
            k2 = 2 * k
            a = a1[n, j]
            # Which side of zero each perturbed pre-activation lies on.
            active = silent = 0
            for q in range(q0, q1):
                step = values[q] * H
                up_side, down_side = a + step, a - step
                if a > 0 and up_side > 0 and down_side > 0:
                    active += 1
                elif a <= 0 and up_side <= 0 and down_side <= 0:
                    silent += 1
            if silent == k:
                continue  # both sides keep the output 0: l(+) = l(-)
            if active == k:
                w = which[q0:q1]
                for c in range(c_total):
                    s, off = e_base[n, c], c * k2
                    _scaled_gather(e[off : off + k], s, f_up[c], w)
                    _scaled_gather(e[off + k : off + k2], s, f_down[c], w)
            else:
                for i in range(k):
                    step = values[q0 + i] * H
                    for side in range(2):
                        moved = a + step if side == 0 else a - step
                        slot = side * k + i
                        if a > 0 and moved > 0:
                            f = f_up if side == 0 else f_down
                            for c in range(c_total):
                                e[c * k2 + slot] = e_base[n, c] * f[c, which[q0 + i]]
                        elif a <= 0 and moved <= 0:
                            for c in range(c_total):
                                e[c * k2 + slot] = e_base[n, c]
                        else:  # crossing zero: the Relu layer's output in full
                            dz = (moved if moved > 0 else 0.0) - z1[n, j]
                            for c in range(c_total):
                                arg = shifted[n, c] + dz * W2[j, c]
                                e[c * k2 + slot] = np.exp(arg)
            _pair_differences(e, k, c_total, n, tgt, total, ratio, diff[q0:q1])
        gb1[j] = _scatter_unit(diff, seg, pixel, entry, gW1_t[j])
    return gW1_t, gb1
