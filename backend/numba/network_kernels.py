"""The Numba backend's kernels of chapter 6's optimizers and layers, for any
network: the ``Backend`` methods that call ``updates`` and ``layers``.

A mixin of [`NumbaBackend`][backend.numba.NumbaBackend] (it needs the
backend's ``_updates`` and ``_layers`` modules). Compiled kernels serve
float32/float64 C-contiguous arrays of one dtype; anything else takes the
generic code of [`Backend`][backend.base.Backend].
"""

from __future__ import annotations

import numpy as np

from backend.constants import BN_EPS, OPT_EPS

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class NetworkKernels:
    """Compiled ``*_update``, ``relu_*``, ``batchnorm_*`` and ``dropout_mask``."""

    def momentum_update(self, params, grads, vs, lr, momentum):
        """As ``Backend.momentum_update``, every parameter in one compiled call."""
        flat = _flat_all(params, grads, vs)
        if flat is None:
            return super().momentum_update(params, grads, vs, lr, momentum)
        t = params[0].dtype.type
        self._updates.momentum(*flat, t(lr), t(momentum))

    def nesterov_update(self, params, grads, vs, lr, momentum):
        """As ``Backend.nesterov_update``, every parameter in one compiled call."""
        flat = _flat_all(params, grads, vs)
        if flat is None:
            return super().nesterov_update(params, grads, vs, lr, momentum)
        t = params[0].dtype.type
        self._updates.nesterov(
            *flat, t(lr), t(momentum), t(momentum * momentum), t((1 + momentum) * lr)
        )

    def adagrad_update(self, params, grads, hs, lr):
        """As ``Backend.adagrad_update``, every parameter in one compiled call."""
        flat = _flat_all(params, grads, hs)
        if flat is None:
            return super().adagrad_update(params, grads, hs, lr)
        t = params[0].dtype.type
        self._updates.adagrad(*flat, t(lr), t(OPT_EPS))

    def rmsprop_update(self, params, grads, hs, lr, decay_rate):
        """As ``Backend.rmsprop_update``, every parameter in one compiled call."""
        flat = _flat_all(params, grads, hs)
        if flat is None:
            return super().rmsprop_update(params, grads, hs, lr, decay_rate)
        t = params[0].dtype.type
        self._updates.rmsprop(
            *flat, t(lr), t(decay_rate), t(1 - decay_rate), t(OPT_EPS)
        )

    def adam_update(self, params, grads, ms, vs, lr_t, beta1, beta2):
        """As ``Backend.adam_update``, every parameter in one compiled call:
        one pass where NumPy makes eight, with no temporaries."""
        flat = _flat_all(params, grads, ms, vs)
        if flat is None:
            return super().adam_update(params, grads, ms, vs, lr_t, beta1, beta2)
        t = params[0].dtype.type
        self._updates.adam(*flat, t(lr_t), t(1 - beta1), t(1 - beta2), t(OPT_EPS))

    def relu_forward(self, x):
        """(max(0, x), x <= 0) in one pass; see ``Backend.relu_forward``."""
        if x.dtype not in _FLOATS or not x.flags.c_contiguous:
            return super().relu_forward(x)
        y, mask = np.empty_like(x), np.empty(x.shape, np.bool_)
        self._layers.relu_forward(x.reshape(-1), y.reshape(-1), mask.reshape(-1))
        return y, mask

    def relu_backward(self, dout, mask):
        """dout where the unit fired, else 0, in one pass."""
        if (
            dout.dtype not in _FLOATS
            or dout.shape != mask.shape
            or not (dout.flags.c_contiguous and mask.flags.c_contiguous)
        ):
            return super().relu_backward(dout, mask)
        dx = np.empty_like(dout)
        self._layers.relu_backward(dout.reshape(-1), mask.reshape(-1), dx.reshape(-1))
        return dx

    def batchnorm_forward(self, x, gamma, beta):
        """As ``Backend.batchnorm_forward``, in one compiled call (four passes
        over x where NumPy makes about ten)."""
        if not _same_float(x, gamma, beta) or x.ndim != 2:
            return super().batchnorm_forward(x, gamma, beta)
        x = np.ascontiguousarray(x)
        out, xc, xn = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        d = x.shape[1]
        std, mu, var = (np.empty(d, x.dtype) for _ in range(3))
        self._layers.batchnorm_forward(
            x,
            np.ascontiguousarray(gamma),
            np.ascontiguousarray(beta),
            x.dtype.type(BN_EPS),
            out,
            xc,
            xn,
            std,
            mu,
            var,
        )
        return out, xc, xn, std, mu, var

    def batchnorm_backward(self, dout, gamma, xc, xn, std):
        """As ``Backend.batchnorm_backward``, in one compiled call (the same
        gradient in closed form, equal up to rounding)."""
        if not _same_float(dout, gamma, xn, std) or dout.ndim != 2:
            return super().batchnorm_backward(dout, gamma, xc, xn, std)
        dout = np.ascontiguousarray(dout)
        dx = np.empty_like(dout)
        dgamma, dbeta = np.empty_like(gamma), np.empty_like(gamma)
        self._layers.batchnorm_backward(
            dout,
            np.ascontiguousarray(gamma),
            np.ascontiguousarray(xn),
            np.ascontiguousarray(std),
            dx,
            dgamma,
            dbeta,
        )
        return dx, dgamma, dbeta

    def dropout_mask(self, shape, ratio, seed, counter):
        """``Backend.dropout_mask``'s hash, bit for bit, in one compiled pass."""
        from backend.updates import dropout_keys, keep_threshold

        mask = np.empty(shape, np.bool_)
        keys = (np.uint64(k) for k in dropout_keys(seed, counter))
        self._layers.dropout_mask(
            mask.reshape(-1), *keys, np.uint64(keep_threshold(ratio))
        )
        return mask


def _same_float(first, *others) -> bool:
    return first.dtype in _FLOATS and all(a.dtype == first.dtype for a in others)


#: 1-D views of the parameter and state lists an optimizer passes at every
#: step, by the ids of their arrays (the entry keeps the arrays alive, so the
#: ids cannot be reused while it exists).
_FLAT_CACHE: dict = {}


def _flat_all(params, grads, *state):
    """Each list of arrays as a tuple of 1-D views, or None unless every array
    is C-contiguous, of one float dtype and shaped as its parameter.

    Parameters and state persist from step to step, so their views are built
    once (a reshape costs about as much as this network's whole ReLU pass);
    the gradients are new arrays at every step.
    """
    if not params or params[0].dtype not in _FLOATS:
        return None
    out = []
    for i, arrays in enumerate((params, grads, *state)):
        key = tuple(map(id, arrays)) if i != 1 else None
        hit = _FLAT_CACHE.get(key) if key is not None else None
        if hit is None:
            hit = _flat(arrays, params)
            if hit is None:
                return None
            if key is not None:
                if len(_FLAT_CACHE) > 64:
                    _FLAT_CACHE.clear()
                _FLAT_CACHE[key] = hit
        out.append(hit[0])
    return out


def _flat(arrays, params):
    dtype = params[0].dtype
    views = []
    for a, p in zip(arrays, params, strict=True):
        if (
            type(a) is not np.ndarray
            or a.dtype != dtype
            or a.shape != p.shape
            or not a.flags.c_contiguous
        ):
            return None
        views.append(a.reshape(-1))
    return tuple(views), tuple(arrays)
