"""Chapter 3's trained three-layer network: 784-50-100-10, sigmoid, sigmoid, softmax."""

from __future__ import annotations

import os

import backend as B
from nn.data.book_weights import PARAM_NAMES, load_weights
from nn.functions import sigmoid


class ThreeLayerNet:
    """Inference with given weights.

    y = softmax(sigmoid(sigmoid(x W1 + b1) W2 + b2) W3 + b3).

    ``params`` maps W1 (D, H1), b1 (H1,), W2 (H1, H2), b2 (H2,), W3 (H2, C),
    b3 (C,) to arrays of any library; they are moved to ``backend`` (default:
    the current one) keeping their dtype (float32 for the book's weights).
    The book's ``sample_weight.pkl`` gives D, H1, H2, C = 784, 50, 100, 10.
    """

    def __init__(self, params: dict, backend=None):
        missing = [k for k in PARAM_NAMES if k not in params]
        if missing:
            raise ValueError(
                f"missing parameters {missing}; a ThreeLayerNet needs {PARAM_NAMES}"
            )
        self.backend = B.get_backend(backend)
        self.params = {k: self.backend.asarray(params[k]) for k in PARAM_NAMES}
        self._check_shapes()

    def _check_shapes(self) -> None:
        p = self.params
        width = None
        for i in (1, 2, 3):
            W, b = p[f"W{i}"], p[f"b{i}"]
            if W.ndim != 2 or (width is not None and W.shape[0] != width):
                want = f"({width}, M)" if width is not None else "a matrix (D, M)"
                raise ValueError(f"W{i} has shape {W.shape}, expected {want}")
            if b.shape != W.shape[1:]:
                raise ValueError(
                    f"b{i} has shape {b.shape}, expected ({W.shape[1]},) to match "
                    f"W{i} {W.shape}"
                )
            width = W.shape[1]

    @classmethod
    def from_pickle(
        cls,
        path: str | os.PathLike,
        backend=None,
        *,
        input_size: int | None = 784,
        num_classes: int | None = 10,
    ) -> ThreeLayerNet:
        """Load the book's ``sample_weight.pkl`` (a pickle of a dict of arrays).

        The pickle is read by [`nn.load_array_dict`][nn.load_array_dict], which
        never runs code from the file and refuses anything but arrays
        ([`UnsafePickleError`][nn.UnsafePickleError]). Weights that are not
        finite floats of shapes W1 (input_size, H1), b1 (H1,), W2 (H1, H2),
        b2 (H2,), W3 (H2, num_classes), b3 (num_classes,) raise a one-line
        `nn.data.book_weights.WeightsError` (a ``ValueError``), as the
        ``nn.inference`` CLI does; None accepts any input size or class count.
        """
        params = load_weights(path, input_size=input_size, num_classes=num_classes)
        return cls(params, backend=backend)

    @property
    def input_size(self) -> int:
        return self.params["W1"].shape[0]

    def predict(self, x):
        """Class probabilities. x: (N, D) or (D,) -> (N, C) or (C,), weights' dtype.

        Integer input (un-normalised uint8 pixels) is converted to the
        weights' dtype first, exactly as NumPy's type promotion would.
        """
        p = self.params
        single = x.ndim == 1
        x = x.reshape(1, -1) if single else x
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(
                f"x has shape {x.shape}, expected (N, {self.input_size}) or "
                f"({self.input_size},); flatten images with load_mnist(flatten=True)"
            )
        x = x.astype(p["W1"].dtype, copy=False)
        be = self.backend
        z1 = sigmoid(be.matmul(x, p["W1"]) + p["b1"])
        z2 = sigmoid(be.matmul(z1, p["W2"]) + p["b2"])
        y = be.softmax(be.matmul(z2, p["W3"]) + p["b3"])
        return y[0] if single else y

    def accuracy(self, x, t, batch_size: int | None = None) -> float:
        """Fraction of rows whose arg-max class equals ``t``.

        x: (N, D); t: (N,) integer labels or (N, C) one-hot. ``batch_size``
        predicts that many rows at a time (the book's batch loop); None: all.
        """
        xp = B.get_array_module(x)
        n = x.shape[0]
        if t.ndim != 1:
            t = xp.argmax(t, axis=1)
        if t.shape[0] != n:
            raise ValueError(f"{n} inputs but {t.shape[0]} labels; they must match")
        if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
            raise ValueError(
                f"batch_size must be a positive integer, got {batch_size!r}"
            )
        if n == 0:
            raise ValueError("accuracy of 0 samples is undefined; pass a non-empty x")
        step = n if batch_size is None else int(batch_size)
        correct = xp.zeros((), dtype=xp.int64)
        for i in range(0, n, step):
            y = self.predict(x[i : i + step])
            correct += xp.sum(xp.argmax(y, axis=1) == t[i : i + step])
        return float(correct) / n
