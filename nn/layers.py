"""Layers of chapters 5 and 6, each with ``forward`` and ``backward(dout)``.

The layers that call a backend's kernels (``Affine``, ``SoftmaxWithLoss``)
take an optional ``backend``: a network passes the one it was built on, so
its layers never depend on the process default. Without one, a layer infers
the backend from its arrays at each call, as the free functions do.
"""

from __future__ import annotations

import numbers

import backend as B
from backend.constants import BN_EPS
from nn.functions import _as_label_batch, sigmoid


def _kernels(backend, *arrays):
    """The layer's own backend, else the one the arrays belong to."""
    return backend if backend is not None else B.backend_for(*arrays)


class MulLayer:
    """out = x * y (the apple example). backward returns (dx, dy)."""

    def __init__(self):
        self.x = None
        self.y = None

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        return dout * self.y, dout * self.x


class AddLayer:
    """out = x + y. backward returns (dout, dout)."""

    def forward(self, x, y):
        return x + y

    def backward(self, dout):
        return dout * 1, dout * 1


class Relu:
    """max(0, x); the gradient is passed where x > 0 and blocked elsewhere.

    ``mask`` (x <= 0) is the book's. The backend's ``relu_forward`` and
    ``relu_backward`` compute it (one compiled pass each on Numba).
    """

    def __init__(self, backend=None):
        self.backend = None if backend is None else B.get_backend(backend)
        self.mask = None

    def forward(self, x):
        out, self.mask = _kernels(self.backend, x).relu_forward(x)
        return out

    def backward(self, dout):
        return _kernels(self.backend, dout).relu_backward(dout, self.mask)


class Sigmoid:
    """1 / (1 + exp(-x)); backward uses the stored output: dout * (1 - y) * y."""

    def __init__(self):
        self.out = None

    def forward(self, x):
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out) * self.out


class Affine:
    """out = x @ W + b for x of any shape (N, ...), flattened to (N, D).

    W: (D, M), b: (M,). The layer keeps references to ``W`` and ``b``, so an
    in-place update of the caller's arrays (``W -= lr * dW``) is seen here.
    After ``backward``: ``dW`` (D, M), ``db`` (M,).
    """

    def __init__(self, W, b, backend=None):
        self.backend = None if backend is None else B.get_backend(backend)
        self.W = W
        self.b = b
        self.x = None
        self.original_x_shape = None
        self.dW = None
        self.db = None

    def forward(self, x):
        if x.ndim < 2:
            raise ValueError(
                f"Affine needs a batch of inputs (N, ...), got shape {x.shape}; "
                "pass x.reshape(1, -1) for a single sample"
            )
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        if self.x.shape[1] != self.W.shape[0]:
            raise ValueError(
                f"Affine expects {self.W.shape[0]} features per sample, got "
                f"{self.x.shape[1]} from input of shape {x.shape}"
            )
        return _kernels(self.backend, self.x, self.W).matmul(self.x, self.W) + self.b

    def backward(self, dout, need_dx=True):
        """dout: (N, M) -> dx of the input's original shape.

        ``need_dx=False`` skips the product nobody reads (the first layer's
        dx) and returns None.
        """
        be = _kernels(self.backend, dout)
        self.dW = be.matmul(self.x.T, dout)
        self.db = be.xp.sum(dout, axis=0)
        if not need_dx:
            return None
        dx = be.matmul(dout, self.W.T)
        return dx.reshape(self.original_x_shape)


class SoftmaxWithLoss:
    """Softmax followed by the mean cross-entropy, with the fused gradient.

    forward(x: (N, C) or (C,), t: (N,) labels or one-hot like x) -> 0-d loss;
    backward(dout=1) -> (y - t) / N of x's shape.
    """

    def __init__(self, backend=None):
        self.backend = None if backend is None else B.get_backend(backend)
        self.loss = None
        self.y = None
        self.t = None
        self.input_shape = None

    def forward(self, x, t):
        self.input_shape = x.shape
        t = _kernels(self.backend, x, t).xp.asarray(t)
        if t.shape == x.shape and x.ndim in (1, 2):
            # One-hot (or soft) targets go to the kernel as given.
            x, t = x.reshape(-1, x.shape[-1]), t.reshape(-1, x.shape[-1])
        else:
            # Validates shapes and labels; one-hot of another shape is an error.
            x, t = _as_label_batch(x, t)
        self.t = t
        be = _kernels(self.backend, x, t)
        self.loss, self.y = be.softmax_cross_entropy(x, t)
        return self.loss

    def backward(self, dout=1):
        be = _kernels(self.backend, self.y)
        dx = be.softmax_cross_entropy_backward(self.y, self.t, dout)
        return dx.reshape(self.input_shape)


def check_dropout_ratio(ratio) -> float:
    """``ratio`` as a float in [0, 1), else a one-line ``ValueError``."""
    ok = isinstance(ratio, numbers.Real) and not isinstance(ratio, bool)
    if not (ok and 0 <= ratio < 1):
        raise ValueError(
            f"dropout ratio must be a number in [0, 1), got {ratio!r}; 0 keeps "
            "every unit, 0.5 drops half"
        )
    return float(ratio)


class Dropout:
    """Drops each unit with probability ``dropout_ratio`` in training; at
    inference passes x * (1 - dropout_ratio), as the book does.

    forward(x: any shape, train_flg=True) -> x's shape; backward(dout) passes
    dout where the unit was kept. The mask comes from a counter-based
    generator computed on x's device (``Backend.dropout_mask``): its state is
    ``seed`` and ``counter`` (the number of masks drawn), the same masks on
    every backend. ``seed``: an int, a ``numpy.random.Generator`` to draw it
    from, or None for a fresh one. ``hold = True`` reuses the last mask (a
    numerical gradient needs the same function at every perturbation).
    """

    def __init__(self, dropout_ratio: float = 0.5, *, seed=None, backend=None):
        self.dropout_ratio = check_dropout_ratio(dropout_ratio)
        self.backend = None if backend is None else B.get_backend(backend)
        if not isinstance(seed, numbers.Integral):
            seed = B.default_rng(seed).integers(2**63)
        self.seed = int(seed)
        self.counter = 0
        self.hold = False
        self.mask = None

    def forward(self, x, train_flg=True):
        if not train_flg:
            return x * (1.0 - self.dropout_ratio)
        if not (self.hold and self.mask is not None and self.mask.shape == x.shape):
            be = _kernels(self.backend, x)
            self.mask = be.dropout_mask(
                x.shape, self.dropout_ratio, self.seed, self.counter
            )
            self.counter += 1
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


class BatchNormalization:
    """Normalises each feature over the batch, then scales by ``gamma`` and
    shifts by ``beta`` (the book's layer, its epsilon 10e-7).

    gamma, beta: (D,) parameters (the layer keeps references: update them in
    place). forward(x: (N, D) or (N, ...) flattened to (N, D), train_flg=True):
    in training, the batch's mean and variance, and the running statistics
    move by ``momentum`` (updated in place once they exist); at inference the
    running statistics. backward(dout) -> dx, and ``dgamma``, ``dbeta`` (D,).
    Training needs at least 2 samples per batch.
    """

    def __init__(
        self,
        gamma,
        beta,
        momentum: float = 0.9,
        running_mean=None,
        running_var=None,
        backend=None,
    ):
        self.backend = None if backend is None else B.get_backend(backend)
        self.gamma = gamma
        self.beta = beta
        self.momentum = momentum
        self.input_shape = None
        self.running_mean = running_mean
        self.running_var = running_var
        self.batch_size = None
        self.xc = None
        self.xn = None
        self.std = None
        self.dgamma = None
        self.dbeta = None

    def forward(self, x, train_flg=True):
        self.input_shape = x.shape
        x = x.reshape(x.shape[0], -1)
        be = _kernels(self.backend, x, self.gamma)
        if x.shape[1] != self.gamma.shape[0]:
            raise ValueError(
                f"BatchNormalization has {self.gamma.shape[0]} features but x has "
                f"{x.shape[1]} per sample (shape {self.input_shape})"
            )
        if self.running_mean is None:
            self.running_mean = be.xp.zeros(x.shape[1], dtype=x.dtype)
            self.running_var = be.xp.zeros(x.shape[1], dtype=x.dtype)
        if train_flg:
            if x.shape[0] < 2:
                raise ValueError(
                    f"BatchNormalization in training needs 2 or more samples per "
                    f"batch, got {x.shape[0]}; use a larger batch, or "
                    "train_flg=False"
                )
            out, self.xc, self.xn, self.std, mu, var = be.batchnorm_forward(
                x, self.gamma, self.beta
            )
            self.batch_size = x.shape[0]
            m = self.momentum
            self.running_mean *= m
            self.running_mean += (1 - m) * mu
            self.running_var *= m
            self.running_var += (1 - m) * var
        else:
            xn = (x - self.running_mean) / be.xp.sqrt(self.running_var + BN_EPS)
            out = self.gamma * xn + self.beta
        return out.reshape(self.input_shape)

    def backward(self, dout):
        dout = dout.reshape(dout.shape[0], -1)
        be = _kernels(self.backend, dout)
        dx, self.dgamma, self.dbeta = be.batchnorm_backward(
            dout, self.gamma, self.xc, self.xn, self.std
        )
        return dx.reshape(self.input_shape)
