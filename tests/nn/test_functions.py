"""Activations and losses of chapters 3 and 4 against the book and float64 math."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nn import (
    cross_entropy_error,
    identity_function,
    mean_squared_error,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_loss,
    step_function,
)

# The book's example prediction (section 4.2): 0.6 on class 2.
Y_BOOK = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]
Y_BOOK_WRONG = [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]
T_BOOK = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
CE_RIGHT = 0.510825457099338  # printed in the book
CE_WRONG = 2.302584092994546  # printed in the book


def _no_float_warnings():
    return np.errstate(over="raise", invalid="raise", divide="raise")


# -- losses: the book's worked examples -------------------------------------


@pytest.mark.parametrize("t_dtype", ["int64", "float64"])
@pytest.mark.parametrize("y, expected", [(Y_BOOK, CE_RIGHT), (Y_BOOK_WRONG, CE_WRONG)])
def test_cross_entropy_error_book_values_one_hot(backend, y, expected, t_dtype):
    loss = cross_entropy_error(
        backend.asarray(y, dtype="float64"), backend.asarray(T_BOOK, dtype=t_dtype)
    )
    assert loss.shape == ()
    assert float(loss) == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("label_shape", [(), (1,)])
@pytest.mark.parametrize("y, expected", [(Y_BOOK, CE_RIGHT), (Y_BOOK_WRONG, CE_WRONG)])
def test_cross_entropy_error_book_values_label(backend, y, expected, label_shape):
    t = backend.asarray(np.full(label_shape, 2, dtype=np.int64))
    loss = cross_entropy_error(backend.asarray(y, dtype="float64"), t)
    assert float(loss) == pytest.approx(expected, rel=1e-13)


def test_cross_entropy_error_batch_is_the_mean(backend):
    y = backend.asarray([Y_BOOK, Y_BOOK_WRONG], dtype="float64")
    one_hot = backend.asarray([T_BOOK, T_BOOK], dtype="float64")
    labels = backend.asarray([2, 2])
    expected = (CE_RIGHT + CE_WRONG) / 2
    assert float(cross_entropy_error(y, one_hot)) == pytest.approx(expected, rel=1e-13)
    assert float(cross_entropy_error(y, labels)) == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cross_entropy_error_forms_agree_with_a_reference(backend, dtype):
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((5, 4))
    probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 4, size=5)
    one_hot = np.eye(4)[labels]
    expected = -np.mean(np.log(probs[np.arange(5), labels] + 1e-7))
    y = backend.asarray(probs.astype(dtype))
    tol = 1e-12 if dtype == "float64" else 1e-6
    for t in (labels, one_hot, one_hot.astype(np.int32), labels.astype(np.uint8)):
        got = float(cross_entropy_error(y, backend.asarray(t)))
        assert got == pytest.approx(expected, rel=tol)
    for n in range(5):  # single samples, label or one-hot
        single = -math.log(probs[n, labels[n]] + 1e-7)
        for t in (labels[n], one_hot[n]):
            got = float(cross_entropy_error(y[n], backend.asarray(t)))
            assert got == pytest.approx(single, rel=tol)


def test_cross_entropy_error_with_a_single_class_uses_labels(backend):
    # (N, 1) predictions with (N,) labels: the book's size test would call the
    # labels one-hot and fail; the shapes decide here.
    y = backend.asarray([[0.5], [0.25]])
    loss = cross_entropy_error(y, backend.asarray([0, 0]))
    expected = -(math.log(0.5 + 1e-7) + math.log(0.25 + 1e-7)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize(
    "y, expected", [(Y_BOOK, 0.09750000000000003), (Y_BOOK_WRONG, 0.5975)]
)
def test_mean_squared_error_book_values(backend, y, expected):
    loss = mean_squared_error(
        backend.asarray(y, dtype="float64"), backend.asarray(T_BOOK)
    )
    assert loss.shape == ()
    assert float(loss) == pytest.approx(expected, rel=1e-14)


def test_mean_squared_error_is_half_the_summed_square(backend):
    y = backend.asarray([[1.0, 2.0], [3.0, 5.0]])
    t = backend.asarray([[0.0, 2.0], [1.0, 1.0]])
    assert float(mean_squared_error(y, t)) == 0.5 * (1 + 0 + 4 + 16)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_softmax_loss_is_cross_entropy_of_softmax(backend, dtype):
    x = backend.asarray(np.array([[0.0, 0.0], [2.0, 0.0]], dtype=dtype))
    loss = softmax_loss(x, backend.asarray([0, 1]))
    p1 = 1 / (1 + math.exp(2.0))  # softmax([2, 0])[1]
    expected = -(math.log(0.5 + 1e-7) + math.log(p1 + 1e-7)) / 2
    tol = 1e-13 if dtype == "float64" else 1e-6
    assert float(loss) == pytest.approx(expected, rel=tol)
    one_hot = backend.asarray([1.0, 0.0])
    assert float(softmax_loss(x[0], one_hot)) == pytest.approx(
        -math.log(0.5 + 1e-7), rel=tol
    )


# -- losses: bad input --------------------------------------------------------


def test_float_labels_are_a_type_error(backend):
    y = backend.asarray([[0.5, 0.5], [0.1, 0.9]])
    with pytest.raises(TypeError, match="labels must be integers"):
        cross_entropy_error(y, backend.asarray([0.0, 1.0]))


@pytest.mark.parametrize(
    "t, match",
    [
        ([0, 1, 1], "do not match"),  # three labels for two rows
        ([[0, 1, 0], [1, 0, 0]], "do not match"),  # one-hot of another width
        ([[0], [1]], "do not match"),
    ],
)
def test_mismatched_targets_are_a_value_error(backend, t, match):
    y = backend.asarray([[0.5, 0.5], [0.1, 0.9]])
    with pytest.raises(ValueError, match=match):
        cross_entropy_error(y, backend.asarray(t))


@pytest.mark.parametrize("labels", [[0, 2], [-1, 0]])
def test_out_of_range_labels_are_a_value_error_on_the_host_nan_on_the_gpu(
    backend, labels
):
    """The host checks the labels; the GPU does not (it would wait for the
    device) and gives a NaN loss, never the loss of a wrapped-around class."""
    y = backend.asarray([[0.5, 0.5], [0.1, 0.9]])
    if backend.on_host:
        with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
            cross_entropy_error(y, backend.asarray(labels))
    else:
        assert np.isnan(float(cross_entropy_error(y, backend.asarray(labels))))


def test_cupy_wraps_out_of_range_labels_which_the_old_loss_let_through():
    """Why the GPU needs the NaN: CuPy (and the stand-in) wrap the label
    around, so the book's indexing alone gives a finite, wrong loss."""
    import cupy_standin as cp

    y = cp.asarray(np.array([[0.5, 0.5], [0.1, 0.9]]))
    t = cp.asarray(np.array([0, 2]))
    picked = y[cp.arange(2), t]  # the pre-fix expression: no IndexError
    old = float(-cp.sum(cp.log(picked + 1e-7)) / 2)
    assert np.isfinite(old)
    assert old == pytest.approx(-(np.log(0.5 + 1e-7) + np.log(0.1 + 1e-7)) / 2)


def test_predictions_of_three_dimensions_are_a_value_error(backend):
    with pytest.raises(ValueError, match="predictions must be"):
        cross_entropy_error(
            backend.asarray(np.ones((2, 2, 2))), backend.asarray([0, 1])
        )


def test_mean_squared_error_with_mismatched_shapes_is_a_value_error(backend):
    y = backend.asarray([[0.5, 0.5], [0.1, 0.9]])
    with pytest.raises(ValueError, match="one shape"):
        mean_squared_error(y, backend.asarray([0, 1]))


# -- activations ------------------------------------------------------------


def test_step_function_book_example(backend, to_host):
    y = step_function(backend.asarray([-1.0, 1.0, 2.0, 0.0]))
    assert y.dtype.kind == "i"
    np.testing.assert_array_equal(to_host(y), [0, 1, 1, 0])
    assert int(step_function(0.5)) == 1
    assert int(step_function(-0.5)) == 0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sigmoid_book_example_and_float64_reference(backend, to_host, dtype):
    x = np.linspace(-30, 30, 121).astype(dtype)
    y = sigmoid(backend.asarray(x))
    assert y.dtype == np.dtype(dtype)
    expected = 1 / (1 + np.exp(-x.astype(np.float64)))
    tol = 1e-15 if dtype == "float64" else 1e-7
    np.testing.assert_allclose(to_host(y), expected, rtol=4 * tol, atol=tol)
    book = sigmoid(backend.asarray(np.array([-1.0, 1.0, 2.0], dtype=dtype)))
    np.testing.assert_allclose(
        to_host(book), [0.26894142, 0.73105858, 0.88079708], atol=5e-8
    )


def test_sigmoid_is_stable_for_large_inputs(backend, to_host):
    with _no_float_warnings():
        y = sigmoid(backend.asarray([-1000.0, -745.0, 0.0, 745.0, 1000.0]))
    got = to_host(y)
    assert np.all(np.isfinite(got))
    np.testing.assert_array_equal(got[[0, 2, 3, 4]], [0.0, 0.5, 1.0, 1.0])
    assert 0 < got[1] < 1e-300  # exp(-745) is a subnormal, not zero


def test_sigmoid_grad_matches_a_central_difference(backend, to_host):
    x = np.linspace(-8, 8, 33)
    got = to_host(sigmoid_grad(backend.asarray(x)))

    def s(v):
        return 1 / (1 + np.exp(-v))

    h = 1e-5
    np.testing.assert_allclose(got, (s(x + h) - s(x - h)) / (2 * h), atol=1e-10)
    assert got[16] == 0.25  # at x = 0


def test_relu_and_relu_grad_by_hand(backend, to_host):
    x = backend.asarray(np.array([-2.0, -0.0, 0.0, 0.5, 3.0], dtype="float32"))
    y = relu(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(to_host(y), [0.0, 0.0, 0.0, 0.5, 3.0])
    g = relu_grad(x)
    assert g.dtype == np.float32
    np.testing.assert_array_equal(to_host(g), [0.0, 1.0, 1.0, 1.0, 1.0])  # 1 at x >= 0


def test_identity_function_returns_its_input(backend):
    x = backend.asarray([1.0, -2.0])
    assert identity_function(x) is x


@pytest.mark.parametrize("shape", [(3,), (4, 3)])
def test_softmax_rows_are_probabilities(backend, to_host, shape):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape) * 3
    y = to_host(softmax(backend.asarray(x)))
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=-1, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-15)


def test_softmax_book_overflow_example(backend, to_host):
    with _no_float_warnings():
        y = softmax(backend.asarray([1010.0, 1000.0, 990.0]))
    np.testing.assert_allclose(
        to_host(y), [9.99954600e-01, 4.53978686e-05, 2.06106005e-09], rtol=1e-8
    )
