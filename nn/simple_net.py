"""Chapter 4's ``simpleNet``: one 2x3 weight matrix, softmax and cross-entropy."""

from __future__ import annotations

import backend as B
from nn.functions import cross_entropy_error


class SimpleNet:
    """z = x @ W with W: (2, 3); loss = cross_entropy_error(softmax(z), t).

    ``W`` defaults to standard-normal weights drawn from ``rng`` on the current
    backend (float64), which the network keeps; pass ``W`` (2, 3), an array
    or nested list, to reproduce
    the book's printed example. An array is used as is (not copied), so the
    book's ``numerical_gradient(f, net.W)`` perturbs the very weights.
    """

    def __init__(self, W=None, rng=None):
        self.backend = be = B.current()
        if W is None:
            W = be.random_normal((2, 3), 1.0, B.DEFAULT_DTYPE, B.default_rng(rng))
        elif not hasattr(W, "dtype"):
            W = be.asarray(W, dtype=B.DEFAULT_DTYPE)
        if W.ndim != 2:
            raise ValueError(f"W must be a 2-D (inputs, classes) array, got {W.shape}")
        self.W = W

    def predict(self, x):
        """x: (2,) or (N, 2) -> scores (3,) or (N, 3)."""
        return self.backend.matmul(x, self.W)

    def loss(self, x, t):
        """Cross-entropy of softmax(predict(x)) against t (one-hot or label). -> 0-d."""
        return cross_entropy_error(self.backend.softmax(self.predict(x)), t)
