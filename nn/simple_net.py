"""Chapter 4's ``simpleNet``: one 2x3 weight matrix, softmax and cross-entropy."""

from __future__ import annotations

import backend as B
from nn.functions import cross_entropy_error, softmax


class SimpleNet:
    """z = x @ W with W: (2, 3); loss = cross_entropy_error(softmax(z), t).

    ``W`` defaults to standard-normal weights drawn from ``rng`` on the current
    backend (float64); pass ``W`` to reproduce the book's printed example.
    """

    def __init__(self, W=None, rng=None):
        be = B.current()
        if W is None:
            W = be.random_normal((2, 3), 1.0, B.DEFAULT_DTYPE, B.default_rng(rng))
        self.W = W

    def predict(self, x):
        """x: (2,) or (N, 2) -> scores (3,) or (N, 3)."""
        return B.matmul(x, self.W)

    def loss(self, x, t):
        """Cross-entropy of softmax(predict(x)) against t (one-hot or label). -> 0-d."""
        return cross_entropy_error(softmax(self.predict(x)), t)
