"""Fast numerical gradient of the two-layer network, written once against ``xp``.

Still the central difference (L(θ + h·e) - L(θ - h·e)) / 2h of the true
mini-batch loss for every parameter, with h = 1e-4, but each perturbed loss
reuses the work the perturbation cannot change:

* ``W1[i, j]`` moves only hidden unit j, and only for the samples whose pixel i
  is non-zero; the affine output is updated exactly, a1 + x_i·(±h) (the affine
  map is linear in its weights), then the activation, the second affine layer,
  softmax and the cross-entropy with its 1e-7 are evaluated for those
  samples. Pixels of one sample with equal values give equal perturbed losses,
  so each distinct non-zero value of a sample is evaluated once.
* ``b1[j]`` is the same with an input of 1 for every sample.
* ``W2[j, c]`` and ``b2[c]`` move one logit of every sample.

Samples the perturbation leaves untouched have bit-for-bit the same loss on
both sides, so they cancel in L(+) - L(-) and are not evaluated. Perturbed
losses are evaluated in float64 whatever the parameter dtype (a float32 central
difference with h = 1e-4 is mostly rounding noise); gradients come back in the
parameter dtype. Parameters are only read.

Identities used (each exact in real arithmetic, so only the rounding of a
perturbed loss changes, by a few ulp: measured below 1e-12 on the gradient,
against the 1e-8 the tests require; no derivative, series or approximation
of any function of the network is involved):

1. softmax(s) = exp(s - m) / sum exp(s - m) for every m: the perturbed scores
   are exponentiated with the *unperturbed* row maximum m (the network's own
   shift is the perturbed maximum). Exact by exp(a - b) = exp(a) / exp(b),
   the 1 / exp(m - m') cancelling between numerator and denominator; safe
   because score - m <= |dz·W2| is far below exp's overflow.
2. Sigmoid: exp(-(a ± v·h)) = exp(-a)·exp(∓v·h) (and exp(a ± v·h) =
   exp(a)·exp(±v·h) in the e / (1 + e) form used for a < 0), the law
   exp(x + y) = exp(x)·exp(y). exp(-|a|) is one array for the batch and
   exp(±v·h) one per entry, shared by all hidden units. Which of the two
   algebraically equal forms of ``nn.functions.sigmoid`` is used is chosen by
   the sign of a instead of a ± v·h; both are the same function and both keep
   every exponential below exp(v·h).
3. ReLU: where a > 0 and a ± v·h > 0, relu(a ± v·h) - relu(a) = ±v·h (both
   arguments are positive, where relu is the identity), so score c moves by
   ±v·h·W2[j, c] and exp(score_c - m ± v·h·W2[j, c]) = exp(score_c - m)·
   exp(±v·h·W2[j, c]): the second factor is one exponential per distinct
   input value, class, sign and unit, shared by every sample with that value.
   Where a <= 0 and a ± v·h <= 0 the output stays 0 and the loss is the
   unperturbed one. Pre-activations that cross zero are evaluated in full.
4. ``W2``, ``b2``: see ``output_loss_differences`` (the book's softmax of the
   moved scores, evaluated in full here; the Numba kernel applies 1 as
   exp(score_c - m ± s) = exp(score_c - m)·exp(±s)).
"""

from __future__ import annotations

from backend.constants import CE_DELTA, H

#: Elements of the (perturbations, classes) score block evaluated per chunk;
#: a GPU wants many perturbations per launch, a CPU wants them to fit in cache
#: (2026-12-02, 784-50-10 batch 100, NumPy: 2^17 took 53 ms for ReLU against
#: 57 ms at 2^16 and 63 ms at 2^19; sigmoid 46-47 ms at 2^16-2^17, 95 at 2^19).
CHUNK_ELEMENTS_CPU = 1 << 17
CHUNK_ELEMENTS_GPU = 1 << 25


class Batch:
    """The unperturbed forward pass in float64 and the batch's bookkeeping.

    Attributes (N samples, D inputs, M hidden units, C classes), all float64
    unless said: ``x`` (N, D), ``W1`` (D, M), ``W2`` (M, C), ``b2`` (C,),
    ``a1``/``z1`` (N, M) hidden pre-activation and activation, ``a2`` (N, C)
    scores; ``target`` (N, C) weights of the cross-entropy (one-hot rows for
    labels); ``labels`` (N,) int64 and ``label_weight`` (N,) when every target
    row has at most one non-zero entry, else None. ``matmul`` (default
    ``xp.matmul``) computes the two unperturbed affine products.
    """

    def __init__(self, xp, params, x, t, activation, act, matmul=None):
        self.xp = xp
        f64 = xp.float64
        self.W1 = xp.asarray(params["W1"], dtype=f64)
        self.b1 = xp.asarray(params["b1"], dtype=f64)
        self.W2 = xp.asarray(params["W2"], dtype=f64)
        self.b2 = xp.asarray(params["b2"], dtype=f64)
        n = x.shape[0] if x.ndim else 0
        if n == 0:
            raise ValueError("the numerical gradient of an empty batch is undefined")
        self.x = xp.asarray(x, dtype=f64).reshape(n, -1)
        d, m = self.W1.shape
        c = self.W2.shape[1]
        if self.x.shape[1] != d:
            raise ValueError(
                f"x has {self.x.shape[1]} features per sample but W1 expects {d}; "
                "pass x of shape (N, input_size)"
            )
        self.activation = activation
        self.act = act
        matmul = matmul or xp.matmul
        self.a1 = matmul(self.x, self.W1) + self.b1
        self.z1 = act(self.a1)
        self.a2 = matmul(self.z1, self.W2) + self.b2
        self.target, self.labels, self.label_weight = _targets(xp, t, n, c)

    @property
    def n(self) -> int:
        return self.x.shape[0]


def _targets(xp, t, n: int, c: int):
    """Dense target weights (N, C) and, when each row has at most one non-zero
    entry, its column (N,) and value (N,)."""
    t = xp.asarray(t)
    if t.ndim == 2 and t.shape == (n, c):
        target = t.astype(xp.float64)
    elif t.ndim == 1 and t.shape[0] == n and t.dtype.kind in "iu":
        labels = t.astype(xp.int64)
        if int(labels.min()) < 0 or int(labels.max()) >= c:
            raise ValueError(
                f"labels must lie in [0, {c}); check the number of classes"
            )
        target = xp.zeros((n, c))
        target[xp.arange(n), labels] = 1.0
        return target, labels, xp.ones(n)
    else:
        raise ValueError(
            f"t of shape {t.shape} and dtype {t.dtype} does not fit {n} samples of "
            f"{c} classes; pass (N,) integer labels or (N, {c}) one-hot rows"
        )
    if int(xp.max(xp.sum(target != 0, axis=1))) > 1:
        return target, None, None
    labels = xp.argmax(xp.abs(target), axis=1)
    return target, labels, target[xp.arange(n), labels]


def distinct_inputs(xp, x, by_pixel: bool = True):
    """Each sample's distinct non-zero input values, and where each pixel goes.

    x: (N, D) float64. Returns ``rows`` (P,) int64 sample of each entry,
    ``values`` (P,) its input value, and for every non-zero pixel, sorted by
    pixel: ``pixel`` (E,) its column, ``entry`` (E,) its entry in 0..P-1
    (sorted by pixel unless ``by_pixel`` is False).
    """
    n, d = x.shape
    order = xp.argsort(x, axis=1)  # equal values end up adjacent
    s = xp.take_along_axis(x, order, axis=1)
    first = xp.ones((n, d), dtype=bool)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    nonzero = (s != 0).ravel()
    starts = (first & (s != 0)).ravel()
    entry_of = xp.cumsum(starts) - 1  # equal values are adjacent once sorted
    rows = xp.broadcast_to(xp.arange(n)[:, None], (n, d)).ravel()
    pixel = order.ravel()[nonzero]
    entry = entry_of[nonzero]
    if by_pixel:
        sort = xp.argsort(pixel, kind="stable")
        pixel, entry = pixel[sort], entry[sort]
    return rows[starts], s.ravel()[starts], pixel, entry


def sample_losses(batch: Batch, scores, rows):
    """Per-sample loss of perturbed scores: softmax (with the row maximum
    subtracted) and the cross-entropy with its 1e-7, as ``SoftmaxWithLoss``
    computes them, before the mean over the batch.

    scores: (C, ..., P) float64, classes first so that the reductions over the
    C classes are C - 1 elementwise operations on long contiguous arrays, for
    the samples ``rows`` (P,) -> (..., P).
    """
    xp = batch.xp
    top = scores[0].copy()
    for s_c in scores[1:]:
        xp.maximum(top, s_c, out=top)
    return losses_from_exp(batch, xp.exp(scores - top), rows)


def losses_from_exp(batch: Batch, e, rows):
    """``sample_losses`` from e = exp(scores - m), any m common to a sample's
    classes (softmax is unchanged by a common shift). e is overwritten.

    e: (C, ..., P) float64 -> (..., P).
    """
    xp = batch.xp
    total = e[0].copy()
    for e_c in e[1:]:
        total += e_c
    if batch.labels is not None:
        flat = e.reshape(e.shape[0], -1, rows.shape[0])
        e_t = flat[batch.labels[rows], :, xp.arange(rows.shape[0])].T
        y_t = e_t.reshape(total.shape) / total
        y_t += CE_DELTA
        return -batch.label_weight[rows] * xp.log(y_t, out=y_t)
    target = batch.target[rows].T.reshape((-1,) + (1,) * (total.ndim - 1) + rows.shape)
    e /= total
    e += CE_DELTA
    return -xp.sum(target * xp.log(e, out=e), axis=0)


def _sigmoid_moves(xp, a, g, z, up, down):
    """sigmoid(a ± v·h) - sigmoid(a) from a, g = exp(-|a|), z = sigmoid(a)
    (b, P) and up/down = exp(±v·h) (P,). -> (2, b, P).

    exp(-(a ± v·h)) = exp(-a)·exp(∓v·h), and for a < 0 the overflow-free form
    e / (1 + e) with e = exp(a)·exp(±v·h): the two forms of
    ``nn.functions.sigmoid``, chosen by the sign of a (either is the same
    function; the choice only keeps every exponential below exp(v·h)).
    """
    pos = a >= 0
    u = xp.stack([xp.where(pos, down, up), xp.where(pos, up, down)]) * g
    return xp.where(pos, 1.0, u) / (1.0 + u) - z


def _relu_losses(batch: Batch, r, js, pieces, values, uniq, which):
    """Per-sample losses (2, b, P) of the ReLU network with unit j's
    pre-activation a moved to a ± v·h; pieces: a, z (M, P) of samples r,
    e (C, P) their exp(score - m), shifted (C, N) all scores minus m.

    Where a > 0 and a ± v·h > 0, relu(a ± v·h) - relu(a) = ±v·h exactly, so
    exp(score_c - m ± v·h·W2[j, c]) = exp(score_c - m)·exp(±v·h·W2[j, c]),
    the second factor one per distinct value v (``uniq``, ``which`` (P,) each
    entry's), class and unit. Where a <= 0 and a ± v·h <= 0 the output stays
    0 and the loss is the unperturbed one; the few that cross zero are
    evaluated in full.
    """
    xp = batch.xp
    a_r, z_r, e_r, shifted = pieces
    w = batch.W2[js].T  # (C, b)
    a = a_r[js]  # (b, P)
    moved_a = a[None] + xp.stack([values * H, -(values * H)])[:, None, :]
    linear = (a > 0)[None] & (moved_a > 0)
    still = (a <= 0)[None] & (moved_a <= 0)
    loss = xp.broadcast_to(batch.base[r], still.shape).copy()
    # Only entries that move some unit of the block are evaluated (about half
    # of the units are off for a given sample).
    (keep,) = xp.nonzero(~xp.all(still, axis=(0, 1)))
    if keep.shape[0]:
        step = xp.stack([uniq * H, -(uniq * H)])  # (2, U)
        f = xp.exp(step[None, :, None, :] * w[:, None, :, None])  # (C, 2, b, U)
        # take keeps the entries innermost (a fancy index on the last axis
        # puts them outermost), so the class sums below read contiguously.
        e = xp.take(f, which[keep], axis=-1)
        e *= xp.take(e_r, keep, axis=1)[:, None, None, :]
        loss[..., keep] = losses_from_exp(batch, e, r[keep])
        loss = xp.where(still, batch.base[r], loss)
    crossing = xp.nonzero(~(linear | still))
    if crossing[0].shape[0]:
        z = batch.act(moved_a[crossing]) - z_r[js][crossing[1:]]
        rc = r[crossing[2]]
        scores = shifted[:, rc] + z * w[:, crossing[1]]
        loss[crossing] = losses_from_exp(batch, xp.exp(scores), rc)
    return loss


def hidden_loss_differences(batch: Batch, rows, values, chunk: int):
    """l(+) - l(-) of each sample ``rows`` (P,) when unit j's pre-activation
    moves by ±values·h (the change an input of that value makes), for every j.

    Scores are exponentiated as exp(score - m) with m the unperturbed row
    maximum (the same softmax; score - m <= |dz·W2| keeps exp in range).
    -> (M, P) float64.
    """
    xp = batch.xp
    m, c = batch.W2.shape
    p = rows.shape[0]
    out = xp.empty((m, p))
    width = min(p, max(1, chunk // (2 * c)))  # samples per chunk
    block = max(1, chunk // (2 * width * c))  # hidden units per chunk
    shifted_all = (batch.a2 - batch.a2.max(axis=1, keepdims=True)).T  # (C, N)
    for p0 in range(0, p, width):
        ps = slice(p0, min(p, p0 + width))
        r, v = rows[ps], values[ps]
        a_r, z_r, shifted = batch.a1[r].T, batch.z1[r].T, shifted_all[:, r]
        if batch.activation == "relu":
            uniq, which = xp.unique(v, return_inverse=True)
            pieces = (a_r, z_r, batch.e_base[r].T, shifted_all)
        else:
            up, down, g_r = xp.exp(v * H), xp.exp(-(v * H)), batch.g[r].T
        for j0 in range(0, m, block):
            js = slice(j0, min(m, j0 + block))
            if batch.activation == "relu":
                loss = _relu_losses(batch, r, js, pieces, v, uniq, which)
            else:
                dz = _sigmoid_moves(xp, a_r[js], g_r[js], z_r[js], up, down)
                # The second affine layer at the new activation: only unit
                # j's term of each score moves, by dz·W2[j, c].
                e = dz[None] * batch.W2[js].T[:, None, :, None]
                e += shifted[:, None, None, :]
                loss = losses_from_exp(batch, xp.exp(e, out=e), r)  # (2, b, P)
            out[js, ps] = loss[0] - loss[1]
    return out


def output_loss_differences(batch: Batch, shift, chunk: int):
    """l(+) - l(-) of every sample when logit c moves by ±shift[k, n] for each
    k and c (the change W2[k, c] or b2[c] makes).

    shift: (K, N) float64 -> (K, C, N) float64.
    """
    xp = batch.xp
    if batch.labels is not None:
        return _labelled_output_differences(batch, shift)
    k_total, n = shift.shape
    c = batch.a2.shape[1]
    eye = xp.eye(c)
    rows = xp.arange(n)
    out = xp.empty((k_total, c, n))
    block = max(1, chunk // max(1, 2 * n * c * c))
    a2 = batch.a2.T  # (C, N)
    for k0 in range(0, k_total, block):
        ks = slice(k0, min(k_total, k0 + block))
        d = shift[ks][None] * xp.asarray([1.0, -1.0])[:, None, None]  # (2, b, N)
        # Adding 0.0 leaves the other logits bit-for-bit unchanged.
        scores = a2[:, None, None, None, :] + (
            eye[:, None, None, :, None] * d[None, :, :, None, :]
        )  # (C scores, 2, b, C moved, N)
        loss = sample_losses(batch, scores, rows)
        out[ks] = loss[0] - loss[1]
    return out


def _labelled_output_differences(batch: Batch, shift):
    """``output_loss_differences`` where each sample has one target class.

    With the unperturbed row maximum m as softmax's shift (identity 1 of the
    module docstring), exp(score_c ± s - m) = exp(score_c - m)·exp(±s) and
    every other class keeps its unperturbed exp(score - m): two exponentials
    per (k, n), shared by the C classes. -> (K, C, N).
    """
    xp = batch.xp
    n = shift.shape[1]
    e = xp.exp(batch.a2 - batch.a2.max(axis=1, keepdims=True)).T  # (C, N)
    c = e.shape[0]
    # The other classes' sum, added directly (never a total minus a term).
    others = xp.zeros_like(e)
    for k in range(c):
        for k2 in range(c):
            if k2 != k:
                others[k] += e[k2]
    factor = xp.exp(xp.stack([shift, -shift]))  # (2, K, N)
    e_moved = e[None, None] * factor[:, :, None, :]  # (2, K, C, N)
    labels = batch.labels
    e_label = e[labels, xp.arange(n)]  # (N,)
    is_label = xp.arange(c)[:, None] == labels[None, :]  # (C, N)
    y = xp.where(is_label, e_moved, e_label) / (others + e_moved)
    y += CE_DELTA
    loss = -batch.label_weight * xp.log(y, out=y)
    return loss[0] - loss[1]


def _segment_sum(xp, values, keys, size: int):
    """Sum the rows of ``values`` (E, M) with equal ``keys`` (E,), sorted.

    -> (size, M), zero where no key occurs. NumPy and CuPy (13 and later: a
    cumulative sum, differenced at the segment starts) both have
    ``add.reduceat``, so every backend takes this one path; the tests' CuPy
    stand-in runs CuPy's algorithm, with its rounding.
    """
    out = xp.zeros((size, values.shape[1]))
    if keys.shape[0] == 0:
        return out
    starts = xp.flatnonzero(xp.concatenate([xp.ones(1, bool), keys[1:] != keys[:-1]]))
    out[keys[starts]] = xp.add.reduceat(values, starts, axis=0)
    return out


def two_layer_numerical_gradient(
    backend, params, x, t, activation: str, forward
) -> dict:
    """Central-difference gradients of ``TwoLayerNet.loss`` at ``params``.

    Parameters
    ----------
    backend : Backend
        Supplies ``xp`` and ``on_host`` (chunk size).
    params : dict
        ``W1`` (D, M), ``b1`` (M,), ``W2`` (M, C), ``b2`` (C,), one float dtype.
    x : (N, D) or (N, ...) array; t : (N,) integer labels or (N, C) targets.
    activation : {"relu", "sigmoid"}
    forward : callable
        The network's own activation, ``xp`` array -> ``xp`` array.

    Returns ``{name: array}`` shaped and typed like ``params``.
    """
    xp = backend.xp
    batch = Batch(xp, params, x, t, activation, forward)
    chunk = CHUNK_ELEMENTS_CPU if backend.on_host else CHUNK_ELEMENTS_GPU
    n, (d, m) = batch.n, batch.W1.shape
    scale = 1.0 / (n * 2 * H)  # L = sum / N, then (L(+) - L(-)) / 2h

    shifted = (batch.a2 - batch.a2.max(axis=1, keepdims=True)).T  # (C, N)
    if activation == "sigmoid":
        batch.g = xp.exp(-xp.abs(batch.a1))  # as nn.functions.sigmoid
    else:
        batch.e_base = xp.exp(shifted).T  # (N, C)
        batch.base = losses_from_exp(batch, xp.exp(shifted), xp.arange(n))
    rows, values, pixel, entry = distinct_inputs(xp, batch.x)
    diffs = hidden_loss_differences(batch, rows, values, chunk)
    gW1 = _segment_sum(xp, diffs.T[entry], pixel, d) * scale
    every = xp.arange(n)
    diffs_b1 = hidden_loss_differences(batch, every, xp.ones(n), chunk)
    gb1 = xp.sum(diffs_b1, axis=1) * scale
    shifts = xp.concatenate([batch.z1.T * H, xp.full((1, n), H)])  # W2 rows, b2
    diffs_out = xp.sum(output_loss_differences(batch, shifts, chunk), axis=2)
    grads = {
        "W1": gW1,
        "b1": gb1,
        "W2": diffs_out[:m] * scale,
        "b2": diffs_out[m] * scale,
    }
    return {k: g.astype(params[k].dtype) for k, g in grads.items()}
