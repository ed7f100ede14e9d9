"""Numerical differentiation and gradient descent (chapter 4)."""

from __future__ import annotations

import backend as B
from backend import H


def numerical_diff(f, x):
    """Central difference (f(x + h) - f(x - h)) / 2h with h = 1e-4."""
    return (f(x + H) - f(x - H)) / (2 * H)


def numerical_gradient(f, x):
    """Gradient of the scalar function ``f`` at ``x`` by central differences.

    x: floating array of any shape -> array of x's shape and dtype. ``x`` is
    perturbed in place, one element at a time, and restored exactly, so ``f``
    may ignore its argument and read ``x`` through a closure (the book's
    ``lambda W: net.loss(x, t)`` idiom).
    """
    dtype = getattr(x, "dtype", None)
    if dtype is None or dtype.kind != "f":
        got = dtype if dtype is not None else type(x).__name__
        raise TypeError(
            f"numerical_gradient needs a floating-point array, got {got}; "
            "pass an array such as x.astype(float)"
        )
    return B.numerical_gradient(f, x)


def gradient_descent(f, init_x, lr=0.01, step_num=100):
    """Minimise ``f`` by ``step_num`` steps of x -= lr * grad f(x).

    init_x: (D,) float; it is not modified. Returns ``(x, history)`` with
    history: (step_num, D), the x before each step, as in the book's figure 4-10.
    """
    xp = B.get_array_module(init_x)
    x = init_x.copy()
    history = []
    for _ in range(step_num):
        history.append(x.copy())
        x -= lr * numerical_gradient(f, x)
    if history:
        return x, xp.stack(history)
    return x, xp.empty((0,) + x.shape, dtype=x.dtype)


def gradient_check(network, x, t):
    """Mean absolute difference between backprop and numerical gradients.

    Returns ``{name: float}`` for each parameter, as printed in chapter 5
    (about 1e-10 for W1 in float64 is a pass).
    """
    grad_numerical = network.numerical_gradient(x, t)
    grad_backprop = network.gradient(x, t)
    out = {}
    for key in grad_backprop:
        xp = B.get_array_module(grad_backprop[key])
        out[key] = float(xp.mean(xp.abs(grad_backprop[key] - grad_numerical[key])))
    return out
