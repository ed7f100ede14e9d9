"""Numerical differentiation and gradient descent: the book's chapter 4 values."""

from __future__ import annotations

import numpy as np
import pytest

import backend as B
from nn import (
    TwoLayerNet,
    gradient_check,
    gradient_descent,
    numerical_diff,
    numerical_gradient,
)


def function_1(x):
    """0.01 x^2 + 0.1 x, the book's example of a derivative."""
    return 0.01 * x**2 + 0.1 * x


def function_2(x):
    """x0^2 + x1^2, the book's example of a gradient."""
    return B.get_array_module(x).sum(x**2)


@pytest.mark.parametrize(
    "x, expected", [(5, 0.1999999999990898), (10, 0.2999999999986347)]
)
def test_numerical_diff_book_values(x, expected):
    # The printed digits come from h = 1e-4 exactly: a different h would not match.
    assert numerical_diff(function_1, x) == pytest.approx(expected, abs=1e-15)


def test_numerical_diff_on_arrays(backend, to_host):
    x = backend.asarray([5.0, 10.0])
    np.testing.assert_allclose(
        to_host(numerical_diff(function_1, x)), [0.2, 0.3], atol=1e-10
    )


@pytest.mark.parametrize(
    "point, expected",
    [((3.0, 4.0), (6.0, 8.0)), ((0.0, 2.0), (0.0, 4.0)), ((3.0, 0.0), (6.0, 0.0))],
)
def test_numerical_gradient_book_values(backend, to_host, point, expected):
    x = backend.asarray(point)
    grad = numerical_gradient(function_2, x)
    np.testing.assert_allclose(to_host(grad), expected, atol=1e-9)
    np.testing.assert_array_equal(to_host(x), point)


@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 2, 2)])
def test_numerical_gradient_any_shape(backend, to_host, shape):
    rng = np.random.default_rng(sum(shape) + len(shape))
    host = rng.standard_normal(shape)
    x = backend.asarray(host.copy())
    grad = numerical_gradient(lambda w: B.get_array_module(w).sum(w**2 + 3 * w), x)
    assert grad.shape == shape
    np.testing.assert_allclose(to_host(grad), 2 * host + 3, atol=1e-8)
    assert B.to_numpy(x).tobytes() == host.tobytes()


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_numerical_gradient_rejects_non_float_arrays(backend, dtype):
    x = backend.asarray(np.array([3, 4], dtype=dtype))
    with pytest.raises(TypeError, match="floating-point"):
        numerical_gradient(function_2, x)
    with pytest.raises(TypeError, match="floating-point"):
        gradient_descent(function_2, x)
    np.testing.assert_array_equal(B.to_numpy(x), np.array([3, 4], dtype=dtype))


def test_numerical_gradient_rejects_lists():
    with pytest.raises(TypeError, match="floating-point array, got list"):
        numerical_gradient(function_2, [3.0, 4.0])


@pytest.mark.parametrize(
    "lr, expected, rtol",
    [
        (0.1, (-6.11110793e-10, 8.14814391e-10), 1e-6),  # converges to (0, 0)
        (1e-10, (-2.99999994, 3.99999992), 1e-8),  # barely moves
    ],
)
def test_gradient_descent_book_values(backend, to_host, lr, expected, rtol):
    init_x = backend.asarray([-3.0, 4.0])
    x, history = gradient_descent(function_2, init_x, lr=lr, step_num=100)
    np.testing.assert_allclose(to_host(x), expected, rtol=rtol)
    np.testing.assert_array_equal(to_host(init_x), [-3.0, 4.0])  # untouched


def test_gradient_descent_with_a_large_rate_diverges(backend, to_host):
    x, _ = gradient_descent(function_2, backend.asarray([-3.0, 4.0]), lr=10.0)
    # The book prints about (-2.6e13, -1.3e12): each step multiplies x by -19.
    assert np.max(np.abs(to_host(x))) > 1e10


def test_gradient_descent_history(backend, to_host):
    init_x = backend.asarray([-3.0, 4.0])
    x, history = gradient_descent(function_2, init_x, lr=0.1, step_num=20)
    history = to_host(history)
    assert history.shape == (20, 2)
    np.testing.assert_array_equal(history[0], [-3.0, 4.0])
    # x <- x - 0.1 * 2x = 0.8 x: every recorded point is 0.8 times the previous.
    np.testing.assert_allclose(history[1:], 0.8 * history[:-1], rtol=1e-9)
    np.testing.assert_allclose(to_host(x), 0.8 * history[-1], rtol=1e-9)
    assert x is not init_x


def test_gradient_descent_with_no_steps_returns_a_copy(backend, to_host):
    init_x = backend.asarray([1.0, 2.0])
    x, history = gradient_descent(function_2, init_x, step_num=0)
    assert history.shape == (0, 2)
    assert x is not init_x
    np.testing.assert_array_equal(to_host(x), [1.0, 2.0])


def test_gradient_check_of_two_layer_net_is_tiny(backend):
    rng = np.random.default_rng(0)
    net = TwoLayerNet(4, 5, 3, weight_init_std=1.0, backend=backend.name, rng=1)
    x = backend.asarray(rng.standard_normal((3, 4)))
    diff = gradient_check(net, x, backend.asarray([0, 2, 1]))
    assert sorted(diff) == ["W1", "W2", "b1", "b2"]
    assert all(isinstance(v, float) for v in diff.values())
    # Not ~0: backprop leaves out the 1e-7 inside the log, a relative 3e-7.
    assert max(diff.values()) < 1e-7
