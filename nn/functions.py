"""Activation and loss functions of chapters 3 and 4, on any backend.

Every function takes arrays of one backend and returns arrays of the same
backend; losses are returned as 0-d arrays so that nothing is copied to the
host until the caller asks for ``float(loss)``.
"""

from __future__ import annotations

import backend as B
from backend._base import CE_DELTA


def identity_function(x):
    """Return ``x`` unchanged (the output activation of regression)."""
    return x


def step_function(x):
    """1 where x > 0, else 0. x: any shape -> same shape, int."""
    return (x > 0).astype(int)


def sigmoid(x):
    """1 / (1 + exp(-x)), elementwise, without overflow for large |x|."""
    xp = B.get_array_module(x)
    # exp(-|x|) never overflows; the two branches are algebraically equal.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_grad(x):
    """Derivative of :func:`sigmoid` at ``x``: (1 - s) * s."""
    s = sigmoid(x)
    return (1.0 - s) * s


def relu(x):
    """max(0, x), elementwise."""
    xp = B.get_array_module(x)
    return xp.maximum(0, x)


def relu_grad(x):
    """1 where x >= 0, else 0 (the book's convention at 0), in x's dtype."""
    return (x >= 0).astype(x.dtype)


def softmax(x):
    """Softmax of a vector (D,) or of each row of (N, D); overflow-safe."""
    return B.softmax(x)


def mean_squared_error(y, t):
    """0.5 * sum((y - t)**2), the book's MSE (summed, not averaged). -> 0-d."""
    xp = B.get_array_module(y, t)
    return 0.5 * xp.sum((y - t) ** 2)


def _as_label_batch(y, t):
    """Reshape a single sample to a batch of one and turn one-hot into labels."""
    if y.ndim == 1:
        y = y.reshape(1, y.size)
        t = t.reshape(1, t.size) if t.size == y.size else t.reshape(1)
    if t.size == y.size:
        t = t.argmax(axis=1)
    elif t.dtype.kind not in "iu":
        raise TypeError(
            f"labels must be integers, got dtype {t.dtype}; pass t.astype(int) "
            "or one-hot targets of the same shape as y"
        )
    if t.shape != y.shape[:1]:
        raise ValueError(
            f"targets of shape {t.shape} do not match predictions of shape {y.shape}; "
            "pass (N,) labels or (N, C) one-hot"
        )
    return y, t


def cross_entropy_error(y, t):
    """Mean cross-entropy of probabilities ``y`` against targets ``t``.

    y: (N, C) or (C,) probabilities; t: one-hot of y's shape, or labels
    (N,) / scalar. -> 0-d: -sum(log(y[n, t_n] + 1e-7)) / N, as in the book.
    """
    y, t = _as_label_batch(y, t)
    xp = B.get_array_module(y, t)
    n = y.shape[0]
    return -xp.sum(xp.log(y[xp.arange(n), t] + CE_DELTA)) / n


def softmax_loss(X, t):
    """Cross-entropy of softmax(X) against ``t``. X: (N, C) or (C,) -> 0-d."""
    return cross_entropy_error(softmax(X), t)
