"""The CUDA numerical gradient of TwoLayerNet: launcher of two_layer_numgrad.cu.

One cuBLAS product (x @ W1) and two kernels (the unperturbed pass, then one
thread per parameter for every perturbed loss), plus a cast per input that is
not float64 already and one device-to-host copy: the label check, so that a
bad label raises ValueError as on the CPU paths.
"""

from __future__ import annotations

import numpy as np

from backend.constants import H


def numerical_gradient(fused, params, x, t, activation) -> dict | None:
    """Central-difference gradients of TwoLayerNet's loss, or None.

    params as for ``FusedTwoLayer.sgd_step`` (any float dtype that casts to
    float64); x: (N, D) or (N, ...); t: (N,) integer labels in [0, C) or
    (N, C) target weights. The perturbed losses are evaluated in float64
    (see two_layer_numgrad.cu); -> ``{name: array}`` like params, of
    their dtype. Raises ValueError for bad shapes or labels, like the CPU
    paths (the label check is the call's one device-to-host copy).
    """
    xp, f64 = fused.xp, np.float64
    if activation not in ("relu", "sigmoid"):
        return None
    W1, b1, W2, b2 = (
        xp.ascontiguousarray(params[k], dtype=f64) for k in ("W1", "b1", "W2", "b2")
    )
    if W1.ndim != 2 or b1.ndim != 1 or W2.ndim != 2 or b2.ndim != 1:
        return None
    (d, m), c = W1.shape, W2.shape[1]
    n = x.shape[0] if x.ndim else 0
    if n == 0:
        raise ValueError("the numerical gradient of an empty batch is undefined")
    if x.size != n * d:
        raise ValueError(
            f"x has {x.size // n} features per sample but W1 expects {d}; "
            "pass x of shape (N, input_size)"
        )
    x = xp.ascontiguousarray(x.reshape(n, d), dtype=f64)
    if t.ndim == 1 and t.shape[0] == n and t.dtype.kind in "iu":
        labels, target = xp.ascontiguousarray(t, dtype=np.int64), None
    elif t.ndim == 2 and t.shape == (n, c):
        labels, target = None, xp.ascontiguousarray(t, dtype=f64)
    else:
        raise ValueError(
            f"t of shape {t.shape} and dtype {t.dtype} does not fit {n} samples "
            f"of {c} classes; pass (N,) integer labels or (N, {c}) one-hot rows"
        )
    h = xp.empty((n, m), dtype=f64)
    z1 = xp.empty((n, m), dtype=f64)
    a2 = xp.empty((n, c), dtype=f64)
    base = xp.empty(n, dtype=f64)
    bad = xp.zeros(1, dtype=np.uint64)
    size = d * m + m + m * c + c
    grad = xp.empty(size, dtype=f64)
    labels_arg = fused._placeholder(np.int64) if labels is None else labels
    target_arg = fused._placeholder(f64) if target is None else target
    flags = (np.int64(target is not None), np.int64(activation == "sigmoid"))
    fused._gemm("N", "N", x, W1, h)
    fused._launch(
        "two_layer_numgrad.cu",
        "numgrad_forward_f64",
        n,
        h,
        b1,
        W2,
        b2,
        labels_arg,
        target_arg,
        z1,
        a2,
        base,
        bad,
        np.int64(n),
        np.int64(m),
        np.int64(c),
        *flags,
    )
    fused._launch(
        "two_layer_numgrad.cu",
        "numgrad_params_f64",
        (d + 1) * m + (m + 1) * c,
        x,
        h,
        z1,
        a2,
        W2,
        base,
        labels_arg,
        target_arg,
        grad,
        np.int64(n),
        np.int64(d),
        np.int64(m),
        np.int64(c),
        *flags,
        np.float64(H),
        np.float64(1.0 / (n * 2 * H)),  # L = sum / N, then (L(+) - L(-)) / 2h
    )
    if int(xp.asnumpy(bad)[0]):
        raise ValueError(f"labels must lie in [0, {c}); check the number of classes")
    views = {
        "W1": grad[: d * m].reshape(d, m),
        "b1": grad[d * m : d * m + m],
        "W2": grad[d * m + m : d * m + m + m * c].reshape(m, c),
        "b2": grad[d * m + m + m * c :],
    }
    return {k: v.astype(params[k].dtype, copy=False) for k, v in views.items()}
