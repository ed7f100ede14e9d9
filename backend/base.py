"""The backend interface and its generic kernels, written once against ``xp``.

A concrete backend sets ``name`` and ``xp`` and overrides a kernel only where
it has a faster one. NumPy is imported here for host-side work only
(conversions, index bookkeeping, random initialisation).
"""

from __future__ import annotations

import contextlib
import itertools

import numpy as np

from backend.constants import CE_DELTA, H


class BackendUnavailableError(RuntimeError):
    """A backend was asked for but its library or device is missing."""


class Backend:
    """Base class of every backend. Subclasses set ``name``, ``xp`` and ``on_host``.

    ``on_host`` is True when the backend's arrays are host NumPy arrays
    (NumPy and Numba backends), False for device arrays (CuPy).
    """

    name: str = "base"
    xp = np
    on_host: bool = True

    def __repr__(self) -> str:
        return f"<backend {self.name}>"

    def describe(self) -> str:
        """One line naming the backend, its library version and device."""
        return f"{self.name} ({self.xp.__name__} {self.xp.__version__}, CPU)"

    # -- host <-> backend -------------------------------------------------
    def asarray(self, a, dtype=None):
        """An array of this backend from ``a`` (host array, list, scalar)."""
        if type(a).__module__.split(".")[0] == "cupy" and self.on_host:
            a = a.get()
        return self.xp.asarray(a, dtype=dtype)

    def asnumpy(self, a):
        """A host NumPy array from an array of this backend."""
        return np.asarray(a)

    def synchronize(self) -> None:
        """Wait until queued device work is done (no-op on the CPU)."""

    def random_normal(self, shape, scale, dtype, rng=None):
        """``scale * N(0, 1)`` of ``shape``, drawn on the host so that every
        backend gets the same numbers from the same seed."""
        rng = (
            rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        )
        host = (scale * rng.standard_normal(shape)).astype(dtype)
        return self.asarray(host)

    def scaled_rows(self, x, rows, scale, dtype):
        """``x[rows] / scale`` as a C-contiguous (B, D) array of ``dtype``.

        x: (N, D) integer pixels (``load_mnist(normalize=False)``); rows: (B,)
        integer indices or a slice. The division runs in float32 and the
        quotient is then cast to ``dtype``: bit for bit what
        ``load_mnist(normalize=True)`` followed by a cast gives. So a trainer
        can keep uint8 images, a quarter of the bytes that each random batch
        pulls from memory, and train exactly as on the float32 images.
        """
        xp = self.xp
        batch = xp.divide(x[rows], xp.float32(scale), dtype=xp.float32)
        return xp.ascontiguousarray(batch, dtype=dtype)

    # -- kernels ----------------------------------------------------------
    def matmul(self, a, b):
        """a: (N, K) @ b: (K, M) -> (N, M)."""
        return self.xp.matmul(a, b)

    def softmax(self, x):
        """Softmax over the last axis of (D,) or (N, D); overflow-safe."""
        xp = self.xp
        # Subtracting the row maximum leaves softmax unchanged and keeps exp finite.
        e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
        return e / xp.sum(e, axis=-1, keepdims=True)

    def softmax_cross_entropy(self, x, t):
        """Fused softmax and the book's cross-entropy.

        x: (N, C) scores; t: (N,) integer labels or (N, C) one-hot.
        Returns ``(loss, y)``: the mean loss as a 0-d array and y = softmax(x).
        """
        xp = self.xp
        y = self.softmax(x)
        n = y.shape[0]
        if t.ndim == y.ndim:
            loss = -xp.sum(t * xp.log(y + CE_DELTA)) / n
        else:
            loss = -xp.sum(xp.log(y[xp.arange(n), t] + CE_DELTA)) / n
        return xp.asarray(loss, dtype=y.dtype), y

    def softmax_cross_entropy_backward(self, y, t, dout=1.0):
        """Gradient of the mean loss w.r.t. the scores: (y - t) / N, times dout."""
        xp = self.xp
        n = y.shape[0]
        if t.ndim == y.ndim:
            dx = y - t
        else:
            dx = y.copy()
            dx[xp.arange(n), t] -= 1
        return dx * (dout / n)

    def numerical_gradient(self, f, x):
        """Central differences of ``f`` at every element of ``x`` (any shape).

        Generic loop: one pair of calls of the Python function ``f`` per
        element. ``x`` is perturbed in place and each element is restored to
        its exact original value, so ``f`` may close over ``x`` (the book's
        contract).
        """
        xp = self.xp
        grad = xp.zeros_like(x)
        for idx in itertools.product(*(range(n) for n in x.shape)):
            saved = x[idx].copy()
            x[idx] = saved + H
            fxh1 = f(x)
            x[idx] = saved - H
            fxh2 = f(x)
            grad[idx] = (fxh1 - fxh2) / (2 * H)
            x[idx] = saved
        return grad

    # -- fused kernels of the two-layer network ----------------------------
    # Slots that ``nn.TwoLayerNet`` calls when a backend fills them. Each gets
    # what it needs from the model as arguments: ``activation`` names the
    # hidden activation ("relu" or "sigmoid") for compiled kernels, and
    # ``forward`` (where given) is the network's own activation function,
    # ``xp`` array -> ``xp`` array, for code written against ``xp``. A backend
    # never imports ``nn``.

    def serial_blas(self):
        """A context in which host BLAS calls run on the calling thread only,
        for work whose own kernels already use every core (the training
        loop's numerical step). A no-op here; the Numba backend limits
        OpenBLAS, whose idle workers spin on the cores its kernels need."""
        return contextlib.nullcontext()

    def two_layer_numerical_gradient(self, params, x, t, activation, forward) -> dict:
        """Fast kernel of ``TwoLayerNet.numerical_gradient``: the same central
        differences of the same loss, without recomputing what a perturbation
        cannot change (see :mod:`backend.numgrad`).

        params: ``W1`` (D, M), ``b1`` (M,), ``W2`` (M, C), ``b2`` (C,); x: (N, D);
        t: (N,) labels or (N, C) one-hot; activation: "relu" or "sigmoid";
        forward: the network's activation -> ``{name: array}`` like ``params``.
        This generic version, written against ``xp``, serves every backend
        without a compiled one.
        """
        from backend.numgrad import two_layer_numerical_gradient as fast

        return fast(self, params, x, t, activation, forward)

    #: Optional fused SGD step for ``TwoLayerNet.train_step``:
    #: ``(params, x, t, lr, activation) -> 0-d loss``, updating params in place,
    #: or None where it does not apply (the caller then steps layer by layer).
    #: params as above; x: (N, D) float; t: (N,) labels or (N, C) one-hot.
    two_layer_sgd_step = None

    #: Optional fused evaluation for ``TwoLayerNet.accuracy`` and the trainer:
    #: ``(params, x, t, activation) -> (rows classified right: int, whether some
    #: hidden unit fired: bool)``, or None where it does not apply (the caller
    #: then evaluates layer by layer). x: (N, D); t: (N,) integer labels.
    two_layer_count_correct = None

    # -- kernels of chapter 6: optimizers and layers of any network ---------
    # Each update applies one of the book's rules to every parameter at once:
    # ``params``, ``grads`` and the state lists are equal-length lists of
    # arrays of this backend, paired by position, updated in place (the layers
    # hold references to the parameters). The generic versions
    # (``backend.updates``) loop over the arrays with ``xp`` operations; a
    # backend overrides them with compiled or fused kernels.

    def momentum_update(self, params, grads, vs, lr, momentum) -> None:
        """v = momentum * v - lr * g; p += v, for each (p, g, v)."""
        from backend import updates

        updates.momentum_update(self.xp, params, grads, vs, lr, momentum)

    def nesterov_update(self, params, grads, vs, lr, momentum) -> None:
        """The book's Nesterov step, for each (p, g, v)."""
        from backend import updates

        updates.nesterov_update(self.xp, params, grads, vs, lr, momentum)

    def adagrad_update(self, params, grads, hs, lr) -> None:
        """h += g * g; p -= lr * g / (sqrt(h) + 1e-7), for each (p, g, h)."""
        from backend import updates

        updates.adagrad_update(self.xp, params, grads, hs, lr)

    def rmsprop_update(self, params, grads, hs, lr, decay_rate) -> None:
        """RMSprop's decayed h and AdaGrad's step, for each (p, g, h)."""
        from backend import updates

        updates.rmsprop_update(self.xp, params, grads, hs, lr, decay_rate)

    def adam_update(self, params, grads, ms, vs, lr_t, beta1, beta2) -> None:
        """The book's Adam step with ``lr_t`` already bias-corrected, for each
        (p, g, m, v)."""
        from backend import updates

        updates.adam_update(self.xp, params, grads, ms, vs, lr_t, beta1, beta2)

    def relu_forward(self, x) -> tuple:
        """ReLU: (max(0, x), mask = x <= 0) for x of any shape (the book's mask)."""
        mask = x <= 0
        return self.xp.where(mask, self.xp.zeros((), dtype=x.dtype), x), mask

    def relu_backward(self, dout, mask):
        """dout where the unit fired (mask False), else 0."""
        return self.xp.where(mask, self.xp.zeros((), dtype=dout.dtype), dout)

    def batchnorm_forward(self, x, gamma, beta) -> tuple:
        """Batch Normalization in training mode. x: (N, D); gamma, beta: (D,).

        -> (out (N, D), xc (N, D), xn (N, D), std (D,), mu (D,), var (D,)),
        the book's quantities (backward reads xc, xn and std).
        """
        from backend import updates

        return updates.batchnorm_forward(self.xp, x, gamma, beta)

    def batchnorm_backward(self, dout, gamma, xc, xn, std) -> tuple:
        """Backward of ``batchnorm_forward``. dout: (N, D) -> (dx, dgamma, dbeta)."""
        from backend import updates

        return updates.batchnorm_backward(self.xp, dout, gamma, xc, xn, std)

    def dropout_mask(self, shape, ratio, seed, counter):
        """Dropout's bool keep-mask of ``shape`` (True with probability
        1 - ratio) for call ``counter`` of the stream ``seed``: a counter-based
        hash computed on this backend's device, the same on every backend
        (``backend.updates.dropout_mask``)."""
        from backend import updates

        return updates.dropout_mask(self.xp, shape, ratio, seed, counter)
