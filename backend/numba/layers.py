"""Numba kernels of chapter 6's layers: ReLU, Batch Normalization, Dropout's mask.

Imported only by the Numba backend. Each kernel is one pass (or one pass per
reduction) over C-contiguous arrays the caller allocates, where NumPy takes
2 to 12 passes with a temporary each. Batch Normalization's column sums run
in float64 whatever the dtype.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def relu_forward(x, y, mask):
    """y = x where x > 0 else 0; mask = x <= 0 (the book's). 1-D views."""
    zero = x.dtype.type(0)
    for i in range(x.shape[0]):
        v = x[i]
        m = v <= zero
        mask[i] = m
        y[i] = zero if m else v


@njit(cache=True, error_model="numpy")
def relu_backward(dout, mask, dx):
    zero = dout.dtype.type(0)
    for i in range(dout.shape[0]):
        dx[i] = zero if mask[i] else dout[i]


@njit(cache=True, error_model="numpy")
def batchnorm_forward(x, gamma, beta, eps, out, xc, xn, std, mu, var):
    """The book's training-mode forward. x, out, xc, xn: (N, D); the rest (D,)."""
    n, d = x.shape
    acc = np.zeros(d)
    for i in range(n):
        for j in range(d):
            acc[j] += x[i, j]
    for j in range(d):
        mu[j] = acc[j] / n
        acc[j] = 0.0
    for i in range(n):
        for j in range(d):
            c = x[i, j] - mu[j]
            xc[i, j] = c
            acc[j] += c * c
    for j in range(d):
        var[j] = acc[j] / n
        std[j] = np.sqrt(var[j] + eps)
    for i in range(n):
        for j in range(d):
            v = xc[i, j] / std[j]
            xn[i, j] = v
            out[i, j] = gamma[j] * v + beta[j]


@njit(cache=True, error_model="numpy")
def batchnorm_backward(dout, gamma, xn, std, dx, dgamma, dbeta):
    """dx = gamma / std * (dout - mean(dout) - xn * mean(dout * xn)): the book's
    backward, its chain of terms summed in closed form."""
    n, d = dout.shape
    sb = np.zeros(d)
    sg = np.zeros(d)
    for i in range(n):
        for j in range(d):
            g = dout[i, j]
            sb[j] += g
            sg[j] += g * xn[i, j]
    for j in range(d):
        dbeta[j] = sb[j]
        dgamma[j] = sg[j]
        sb[j] /= n
        sg[j] /= n
    for i in range(n):
        for j in range(d):
            dx[i, j] = gamma[j] / std[j] * (dout[i, j] - sb[j] - xn[i, j] * sg[j])


_M32 = np.uint64(0xFFFFFFFF)


@njit(cache=True, error_model="numpy")
def _mix32(h):
    # backend.updates._mix32 in uint64 arithmetic, masked to 32 bits.
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x7FEB352D)) & _M32
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(0x846CA68B)) & _M32
    h ^= h >> np.uint64(16)
    return h


@njit(cache=True, error_model="numpy")
def dropout_mask(mask, k0, k1, k2, threshold):
    """mask[i] = hash(i) >= threshold: ``backend.updates.dropout_mask``, bit
    for bit. mask: 1-D bool; keys and threshold: uint64 below 2**32."""
    for i in range(mask.shape[0]):
        h = ((np.uint64(i) * np.uint64(0x9E3779B9)) & _M32) ^ k0
        h = _mix32(h) ^ k1
        h = (_mix32(h) + k2) & _M32
        mask[i] = _mix32(h) >= threshold
