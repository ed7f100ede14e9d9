"""Activation and loss functions of chapters 3 and 4, on any backend.

Every function takes arrays of one backend and returns arrays of the same
backend; losses are returned as 0-d arrays so that nothing is copied to the
host until the caller asks for ``float(loss)``.
"""

from __future__ import annotations

import backend as B
from backend import CE_DELTA


def identity_function(x):
    """Return ``x`` unchanged (the output activation of regression)."""
    return x


def step_function(x):
    """1 where x > 0, else 0. x: any shape (or a scalar) -> same shape, int."""
    xp = B.get_array_module(x)
    return xp.asarray(x > 0).astype(int)


def sigmoid(x):
    """1 / (1 + exp(-x)), elementwise, without overflow for large |x|."""
    xp = B.get_array_module(x)
    # exp(-|x|) never overflows; the two branches are algebraically equal.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_grad(x):
    """Derivative of [`sigmoid`][nn.sigmoid] at ``x``: (1 - s) * s."""
    s = sigmoid(x)
    return (1.0 - s) * s


def relu(x):
    """max(0, x), elementwise."""
    xp = B.get_array_module(x)
    return xp.maximum(0, x)


def relu_grad(x):
    """1 where x >= 0, else 0 (the book's convention at 0), in x's dtype."""
    xp = B.get_array_module(x)
    x = xp.asarray(x)
    return (x >= 0).astype(x.dtype)


def softmax(x):
    """Softmax of a vector (D,) or of each row of (N, D); overflow-safe."""
    return B.softmax(x)


def mean_squared_error(y, t):
    """0.5 * sum((y - t)**2), the book's MSE (summed, not averaged). -> 0-d."""
    xp = B.get_array_module(y, t)
    y, t = xp.asarray(y), xp.asarray(t)
    if y.shape != t.shape:
        # Broadcasting (N, C) against (N,) labels would give a silent wrong answer.
        raise ValueError(
            f"mean_squared_error needs y and t of one shape, got {y.shape} and "
            f"{t.shape}; pass one-hot targets shaped like y"
        )
    return 0.5 * xp.sum((y - t) ** 2)


def _as_label_batch(y, t):
    """Reshape a single sample to a batch of one and turn one-hot into labels.

    y: (N, C) or (C,); t: one-hot of y's shape, or integer labels (N,) / 0-d.
    Returns y: (N, C) and integer labels t: (N,). Raises ``ValueError`` for
    shapes that do not match and ``TypeError`` for non-integer labels.
    """
    xp = B.get_array_module(y, t)
    y, t = xp.asarray(y), xp.asarray(t)
    if y.ndim not in (1, 2):
        raise ValueError(
            f"predictions must be (C,) or (N, C), got shape {y.shape}; "
            "flatten the scores first"
        )
    if y.ndim == 1:
        one_hot = t.shape == y.shape
        y = y.reshape(1, y.size)
        t = t.reshape(1, t.size) if one_hot else t.reshape(-1)
    if t.shape == y.shape:
        t = t.argmax(axis=1)
    elif t.ndim != 1 or t.shape[0] != y.shape[0]:
        raise ValueError(
            f"targets of shape {t.shape} do not match predictions of shape "
            f"{y.shape}; pass (N,) labels or (N, C) one-hot"
        )
    elif t.dtype.kind not in "iu":
        raise TypeError(
            f"labels must be integers, got dtype {t.dtype}; pass t.astype(int) "
            "or one-hot targets of the same shape as y"
        )
    elif B.backend_for(t).on_host and t.size:
        # NumPy would wrap a negative label silently. Not checked on the GPU,
        # where the check would cost a device sync on every loss.
        low, high = int(t.min()), int(t.max())
        if low < 0 or high >= y.shape[1]:
            raise ValueError(
                f"labels must lie in [0, {y.shape[1]}), got values from {low} "
                f"to {high}; check the number of classes"
            )
    return y, t


def cross_entropy_error(y, t):
    """Mean cross-entropy of probabilities ``y`` against targets ``t``.

    y: (N, C) or (C,) probabilities; t: one-hot of y's shape, or labels
    (N,) / scalar. -> 0-d: -sum(log(y[n, t_n] + 1e-7)) / N, as in the book.
    A label outside [0, C) is a ``ValueError`` on the CPU and a NaN loss on the
    GPU (where checking would cost a device sync per loss).
    """
    y, t = _as_label_batch(y, t)
    xp = B.get_array_module(y, t)
    n = y.shape[0]
    picked = y[xp.arange(n), t]
    if not B.backend_for(t).on_host:
        # A label outside [0, C) is a ValueError on the host; on a GPU the check
        # would wait for the device, and CuPy wraps the index around: NaN instead.
        picked = xp.where((t >= 0) & (t < y.shape[1]), picked, xp.nan)
    return -xp.sum(xp.log(picked + CE_DELTA)) / n


def softmax_loss(X, t):
    """Cross-entropy of softmax(X) against ``t``. X: (N, C) or (C,) -> 0-d."""
    return cross_entropy_error(softmax(X), t)
