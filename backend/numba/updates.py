"""Numba kernels of chapter 6's optimizers: one call updates every parameter.

Imported only by the Numba backend. Each kernel takes tuples of 1-D
C-contiguous views (parameters, gradients, state), all of one float dtype,
and the rule's scalars in that dtype, so float32 work stays float32 and each
element sees the same operations, in the same order, as the book's NumPy
code (``backend.updates``). One compiled loop replaces the 4 to 8 NumPy
passes, and their temporaries, per parameter array. Serial: a parallel
region's fork and join costs more than this network's ~110,000 parameters
take on a busy 2-core machine. ``error_model="numpy"``: a division by zero
gives inf or NaN as in NumPy, and without Python's zero check in the loop,
LLVM vectorises it (measured: 4-5x faster Adam).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def momentum(ps, gs, vs, lr, mom):
    for k in range(len(ps)):
        p, g, v = ps[k], gs[k], vs[k]
        for i in range(p.shape[0]):
            vi = v[i] * mom
            vi = vi - lr * g[i]
            v[i] = vi
            p[i] = p[i] + vi


@njit(cache=True, error_model="numpy")
def nesterov(ps, gs, vs, lr, mom, mom2, lr_plus):
    # mom2 = momentum**2 and lr_plus = (1 + momentum) * lr, as the book's
    # NumPy code computes them (in Python floats) before touching an array.
    for k in range(len(ps)):
        p, g, v = ps[k], gs[k], vs[k]
        for i in range(p.shape[0]):
            gi = g[i]
            vi = v[i] * mom
            vi = vi - lr * gi
            v[i] = vi
            pi = p[i] + mom2 * vi
            p[i] = pi - lr_plus * gi


@njit(cache=True, error_model="numpy")
def adagrad(ps, gs, hs, lr, eps):
    for k in range(len(ps)):
        p, g, h = ps[k], gs[k], hs[k]
        for i in range(p.shape[0]):
            gi = g[i]
            hi = h[i] + gi * gi
            h[i] = hi
            p[i] = p[i] - lr * gi / (np.sqrt(hi) + eps)


@njit(cache=True, error_model="numpy")
def rmsprop(ps, gs, hs, lr, decay, keep, eps):
    # keep = 1 - decay_rate.
    for k in range(len(ps)):
        p, g, h = ps[k], gs[k], hs[k]
        for i in range(p.shape[0]):
            gi = g[i]
            hi = h[i] * decay
            hi = hi + keep * gi * gi
            h[i] = hi
            p[i] = p[i] - lr * gi / (np.sqrt(hi) + eps)


@njit(cache=True, error_model="numpy")
def adam(ps, gs, ms, vs, lr_t, b1c, b2c, eps):
    # b1c = 1 - beta1, b2c = 1 - beta2.
    for k in range(len(ps)):
        p, g, m, v = ps[k], gs[k], ms[k], vs[k]
        for i in range(p.shape[0]):
            gi = g[i]
            mi = m[i] + b1c * (gi - m[i])
            vi = v[i] + b2c * (gi * gi - v[i])
            m[i] = mi
            v[i] = vi
            p[i] = p[i] - lr_t * mi / (np.sqrt(vi) + eps)
