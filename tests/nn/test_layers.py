"""Layers of chapters 5 and 6: the book's apple examples, hand cases, gradient
checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

import backend as B
from nn import (
    AddLayer,
    Affine,
    BatchNormalization,
    Dropout,
    MulLayer,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)


def _wrap(backend, kind):
    """Scalars as Python floats or as 0-d arrays of the backend."""
    if kind == "python":
        return float
    return lambda v: backend.asarray(v, dtype="float64")


def _weighted_sum_check(backend, layer, x_host, seed=0):
    """Gradient check of ``layer`` through f(x) = sum(forward(x) * w).

    backward(w) must equal the central-difference gradient of f at x (float64).
    """
    w_host = np.random.default_rng(seed).standard_normal(
        np.shape(layer.forward(backend.asarray(x_host)))
    )
    w = backend.asarray(w_host)
    x = backend.asarray(x_host.copy())
    layer.forward(x)
    analytic = B.to_numpy(layer.backward(w))
    numeric = B.to_numpy(
        B.numerical_gradient(
            lambda _x: B.get_array_module(x).sum(layer.forward(x) * w), x
        )
    )
    assert analytic.shape == x_host.shape
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)


# -- the apple examples (section 5.4) ---------------------------------------


@pytest.mark.parametrize("kind", ["python", "array"])
def test_buy_apple(backend, kind):
    v = _wrap(backend, kind)
    apple, apple_num, tax = v(100), v(2), v(1.1)
    mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()
    apple_price = mul_apple_layer.forward(apple, apple_num)
    price = mul_tax_layer.forward(apple_price, tax)
    assert float(price) == pytest.approx(220, rel=1e-15)

    dapple_price, dtax = mul_tax_layer.backward(v(1))
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    assert float(dapple) == pytest.approx(2.2, rel=1e-15)
    assert float(dapple_num) == pytest.approx(110, rel=1e-15)
    assert float(dtax) == pytest.approx(200, rel=1e-15)


@pytest.mark.parametrize("kind", ["python", "array"])
def test_buy_apple_orange(backend, kind):
    v = _wrap(backend, kind)
    apple, apple_num, orange, orange_num, tax = v(100), v(2), v(150), v(3), v(1.1)
    mul_apple_layer, mul_orange_layer = MulLayer(), MulLayer()
    add_apple_orange_layer, mul_tax_layer = AddLayer(), MulLayer()

    apple_price = mul_apple_layer.forward(apple, apple_num)
    orange_price = mul_orange_layer.forward(orange, orange_num)
    all_price = add_apple_orange_layer.forward(apple_price, orange_price)
    price = mul_tax_layer.forward(all_price, tax)
    assert float(price) == pytest.approx(715, rel=1e-15)

    dall_price, dtax = mul_tax_layer.backward(v(1))
    dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
    dorange, dorange_num = mul_orange_layer.backward(dorange_price)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    expected = {
        "dapple_num": (dapple_num, 110),
        "dapple": (dapple, 2.2),
        "dorange": (dorange, 3.3),
        "dorange_num": (dorange_num, 165),
        "dtax": (dtax, 650),
    }
    for name, (got, want) in expected.items():
        assert float(got) == pytest.approx(want, rel=1e-14), name


# -- Relu and Sigmoid --------------------------------------------------------


def test_relu_by_hand(backend, to_host):
    layer = Relu()
    x = backend.asarray([[1.0, -0.5], [-2.0, 3.0]])
    np.testing.assert_array_equal(to_host(layer.forward(x)), [[1, 0], [0, 3]])
    dout = backend.asarray([[5.0, 6.0], [7.0, 8.0]])
    np.testing.assert_array_equal(to_host(layer.backward(dout)), [[5, 0], [0, 8]])
    np.testing.assert_array_equal(to_host(dout), [[5, 6], [7, 8]])  # not modified
    np.testing.assert_array_equal(to_host(x), [[1, -0.5], [-2, 3]])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_relu_keeps_the_dtype(backend, dtype):
    layer = Relu()
    out = layer.forward(backend.asarray(np.array([-1.0, 2.0], dtype=dtype)))
    assert out.dtype == np.dtype(dtype)
    assert layer.backward(backend.asarray(np.ones(2, dtype=dtype))).dtype == dtype


def test_relu_gradient_check(backend):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep clear of the kink, where h would straddle it
    _weighted_sum_check(backend, Relu(), x)


def test_sigmoid_by_hand(backend, to_host):
    layer = Sigmoid()
    y = to_host(layer.forward(backend.asarray([0.0, math.log(3.0)])))
    np.testing.assert_allclose(y, [0.5, 0.75], rtol=1e-15)
    dx = to_host(layer.backward(backend.asarray([1.0, 2.0])))
    np.testing.assert_allclose(dx, [0.25, 2 * 0.75 * 0.25], rtol=1e-15)


def test_sigmoid_gradient_check(backend):
    x = np.random.default_rng(2).standard_normal((3, 4)) * 3
    _weighted_sum_check(backend, Sigmoid(), x)


# -- Affine -------------------------------------------------------------------


def test_affine_by_hand(backend, to_host):
    W = backend.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    b = backend.asarray([0.1, 0.2, 0.3])
    layer = Affine(W, b)
    out = layer.forward(backend.asarray([[1.0, 2.0], [0.0, -1.0]]))
    np.testing.assert_allclose(
        to_host(out), [[9.1, 12.2, 15.3], [-3.9, -4.8, -5.7]], rtol=1e-15
    )
    dx = layer.backward(backend.asarray([[1.0, 1.0, 1.0], [1.0, 0.0, -1.0]]))
    np.testing.assert_allclose(to_host(dx), [[6, 15], [-2, -2]])
    np.testing.assert_allclose(to_host(layer.dW), [[1, 1, 1], [1, 2, 3]])
    np.testing.assert_allclose(to_host(layer.db), [2, 1, 0])


def test_affine_sees_in_place_updates_of_its_weights(backend, to_host):
    W = backend.asarray(np.eye(2))
    b = backend.asarray(np.zeros(2))
    layer = Affine(W, b)
    x = backend.asarray([[1.0, 2.0]])
    W *= 3.0  # in place, as SGD does
    b += 1.0
    np.testing.assert_allclose(to_host(layer.forward(x)), [[4.0, 7.0]])


@pytest.mark.parametrize("x_shape", [(3, 4), (2, 1, 2, 3)])
def test_affine_gradient_check_and_shape(backend, x_shape):
    rng = np.random.default_rng(3)
    d = int(np.prod(x_shape[1:]))
    W = backend.asarray(rng.standard_normal((d, 5)))
    b = backend.asarray(rng.standard_normal(5))
    x_host = rng.standard_normal(x_shape)
    layer = Affine(W, b)
    out = layer.forward(backend.asarray(x_host))
    assert out.shape == (x_shape[0], 5)
    _weighted_sum_check(backend, layer, x_host)  # dx, restored to x's shape

    # dW and db against central differences of the same weighted sum.
    x = backend.asarray(x_host)
    w = backend.asarray(rng.standard_normal((x_shape[0], 5)))
    layer.forward(x)
    layer.backward(w)

    def f(_p):
        return B.get_array_module(x).sum(layer.forward(x) * w)

    for param, grad in ((W, layer.dW), (b, layer.db)):
        assert grad.shape == param.shape
        np.testing.assert_allclose(
            B.to_numpy(grad),
            B.to_numpy(B.numerical_gradient(f, param)),
            rtol=1e-7,
            atol=1e-9,
        )


@pytest.mark.parametrize(
    "x_shape, match", [((2,), "needs a batch"), ((1, 3), "expects 2 features")]
)
def test_affine_rejects_inputs_of_the_wrong_shape(backend, x_shape, match):
    layer = Affine(backend.asarray(np.ones((2, 3))), backend.asarray(np.zeros(3)))
    with pytest.raises(ValueError, match=match):
        layer.forward(backend.asarray(np.ones(x_shape)))


def test_affine_backward_can_skip_dx(backend, to_host):
    layer = Affine(backend.asarray(np.ones((2, 3))), backend.asarray(np.zeros(3)))
    layer.forward(backend.asarray([[1.0, 2.0]]))
    assert layer.backward(backend.asarray([[1.0, 0.0, 0.0]]), need_dx=False) is None
    np.testing.assert_array_equal(to_host(layer.dW), [[1, 0, 0], [2, 0, 0]])


# -- SoftmaxWithLoss ------------------------------------------------------------


@pytest.mark.parametrize("target", ["label", "one_hot"])
def test_softmax_with_loss_by_hand(backend, to_host, target):
    layer = SoftmaxWithLoss()
    x = backend.asarray([[0.0, 0.0], [math.log(3.0), 0.0]])  # softmax: .5 .5, .75 .25
    t = [0, 1] if target == "label" else [[1.0, 0.0], [0.0, 1.0]]
    loss = layer.forward(x, backend.asarray(t))
    assert loss.shape == ()
    expected = -(math.log(0.5 + 1e-7) + math.log(0.25 + 1e-7)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-14)
    dx = to_host(layer.backward())
    np.testing.assert_allclose(dx, [[-0.25, 0.25], [0.375, -0.375]], rtol=1e-14)
    np.testing.assert_allclose(to_host(layer.backward(2.0)), 2 * dx, rtol=1e-15)


@pytest.mark.parametrize("target", ["label", "one_hot"])
def test_softmax_with_loss_single_sample(backend, to_host, target):
    layer = SoftmaxWithLoss()
    x = backend.asarray([0.0, math.log(3.0)])
    t = backend.asarray(1 if target == "label" else [0.0, 1.0])
    assert float(layer.forward(x, t)) == pytest.approx(-math.log(0.75 + 1e-7))
    dx = layer.backward()
    assert dx.shape == (2,)
    np.testing.assert_allclose(to_host(dx), [0.25, -0.25], rtol=1e-14)


@pytest.mark.parametrize("target", ["label", "one_hot"])
@pytest.mark.parametrize("shape", [(4, 3), (3,)])
def test_softmax_with_loss_gradient_check(backend, target, shape):
    rng = np.random.default_rng(4)
    x_host = rng.standard_normal(shape) * 2
    x = backend.asarray(x_host)
    n_classes = shape[-1]
    labels = rng.integers(0, n_classes, size=shape[:-1])
    t = labels if target == "label" else np.eye(n_classes)[labels]
    t = backend.asarray(t)
    layer = SoftmaxWithLoss()
    layer.forward(x, t)
    analytic = B.to_numpy(layer.backward())
    numeric = B.to_numpy(B.numerical_gradient(lambda _x: layer.forward(x, t), x))
    assert analytic.shape == shape
    # Backprop's (y - t) / N leaves out the 1e-7 inside the log; the exact
    # gradient of the loss as computed is that times y_t / (y_t + 1e-7) per row.
    rows = x_host.reshape(-1, n_classes)
    y = np.exp(rows - rows.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    y_t = y[np.arange(len(rows)), labels.reshape(-1)]
    factor = (y_t / (y_t + 1e-7)).reshape(shape[:-1] + (1,))
    np.testing.assert_allclose(analytic * factor, numeric, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-8)


def test_softmax_with_loss_rejects_float_labels(backend):
    with pytest.raises(TypeError, match="labels must be integers"):
        SoftmaxWithLoss().forward(backend.asarray([[1.0, 2.0]]), backend.asarray([1.0]))


def test_softmax_with_loss_rejects_mismatched_one_hot(backend):
    with pytest.raises(ValueError, match="do not match"):
        SoftmaxWithLoss().forward(
            backend.asarray([[1.0, 2.0]]), backend.asarray([[0.0, 1.0, 0.0]])
        )


# -- chapter 6: Dropout -------------------------------------------------------


def test_dropout_drops_about_the_ratio_and_passes_the_mask_back(backend, to_host):
    x_host = np.random.default_rng(0).standard_normal((200, 50))
    layer = Dropout(0.3, seed=7)
    y = to_host(layer.forward(backend.asarray(x_host)))
    mask = to_host(layer.mask).astype(bool)
    np.testing.assert_array_equal(y, np.where(mask, x_host, 0.0))
    assert abs(mask.mean() - 0.7) < 0.01  # 10,000 draws: sd 0.0046
    dout = np.arange(x_host.size, dtype=float).reshape(x_host.shape)
    dx = to_host(layer.backward(backend.asarray(dout)))
    np.testing.assert_array_equal(dx, np.where(mask, dout, 0.0))
    # Inference scales instead of dropping, as the book does.
    np.testing.assert_allclose(
        to_host(layer.forward(backend.asarray(x_host), train_flg=False)),
        x_host * 0.7,
        rtol=1e-15,
    )


def test_dropout_masks_are_the_same_on_every_backend(backend, to_host):
    shape = (4, 33)
    masks = []
    for be in (B.get_backend("numpy"), backend):
        layer = Dropout(0.5, seed=123)
        x = be.asarray(np.ones(shape))
        masks.append([to_host(layer.forward(x)) for _ in range(3)])
        assert layer.counter == 3
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0][0], masks[0][1])  # a new mask per call


def test_dropout_hold_reuses_the_mask_and_ratio_zero_keeps_all(backend, to_host):
    x = backend.asarray(np.ones((3, 8)))
    layer = Dropout(0.5, seed=1)
    first = to_host(layer.forward(x))
    layer.hold = True
    np.testing.assert_array_equal(to_host(layer.forward(x)), first)
    assert layer.counter == 1
    np.testing.assert_array_equal(to_host(Dropout(0.0).forward(x)), np.ones((3, 8)))


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, "half", None, True])
def test_dropout_ratio_outside_0_1_is_a_one_line_error(ratio):
    with pytest.raises(ValueError, match=r"dropout ratio must be a number in \[0, 1\)"):
        Dropout(ratio)


# -- chapter 6: Batch Normalization ------------------------------------------


def _bn(backend, width, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    gamma = backend.asarray(rng.uniform(0.5, 1.5, width))
    beta = backend.asarray(rng.standard_normal(width))
    return BatchNormalization(gamma, beta, **kwargs), gamma, beta


def test_batchnorm_by_hand(backend, to_host):
    gamma, beta = backend.asarray([1.0, 2.0]), backend.asarray([0.0, 1.0])
    layer = BatchNormalization(gamma, beta)
    x = backend.asarray([[1.0, 2.0], [3.0, 6.0]])
    # mu = (2, 4), var = (1, 4): xn = (+-1/sqrt(1 + 1e-6), +-2/sqrt(4 + 1e-6)).
    out = to_host(layer.forward(x))
    a, b = 1 / math.sqrt(1 + 1e-6), 2 / math.sqrt(4 + 1e-6)
    np.testing.assert_allclose(out, [[-a, 1 - 2 * b], [a, 1 + 2 * b]], rtol=1e-14)
    np.testing.assert_allclose(to_host(layer.running_mean), [0.2, 0.4], rtol=1e-14)
    np.testing.assert_allclose(to_host(layer.running_var), [0.1, 0.4], rtol=1e-14)
    # Inference reads the running statistics.
    test = to_host(layer.forward(backend.asarray([[0.2, 0.4]]), train_flg=False))
    np.testing.assert_allclose(test, [[0.0, 1.0]], atol=1e-15)
    dout = backend.asarray([[1.0, 0.0], [0.0, 0.0]])
    layer.forward(x)
    layer.backward(dout)
    np.testing.assert_allclose(to_host(layer.dbeta), [1.0, 0.0])
    np.testing.assert_allclose(to_host(layer.dgamma), [-a, 0.0], rtol=1e-14)


def test_batchnorm_gradient_check_on_x(backend):
    layer, _, _ = _bn(backend, 4)
    x = np.random.default_rng(3).standard_normal((5, 4)) * 3 + 1
    _weighted_sum_check(backend, layer, x)


@pytest.mark.parametrize("which", ["gamma", "beta"])
def test_batchnorm_gradient_check_on_gamma_and_beta(backend, to_host, which):
    layer, gamma, beta = _bn(backend, 3)
    x = backend.asarray(np.random.default_rng(4).standard_normal((6, 3)))
    w = backend.asarray(np.random.default_rng(5).standard_normal((6, 3)))
    xp = B.get_array_module(x)
    layer.forward(x)
    layer.backward(w)
    analytic = to_host(layer.dgamma if which == "gamma" else layer.dbeta)
    param = gamma if which == "gamma" else beta
    numeric = to_host(
        B.numerical_gradient(lambda _p: xp.sum(layer.forward(x) * w), param)
    )
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)


def test_batchnorm_flattens_images_and_keeps_the_shape(backend):
    layer, _, _ = _bn(backend, 6)
    x = backend.asarray(np.random.default_rng(0).standard_normal((4, 2, 3)))
    out = layer.forward(x)
    assert out.shape == (4, 2, 3)
    assert layer.backward(out).shape == (4, 2, 3)


def test_batchnorm_batch_of_one_in_training_is_a_one_line_error(backend):
    layer, _, _ = _bn(backend, 3)
    with pytest.raises(ValueError, match="2 or more samples per batch, got 1"):
        layer.forward(backend.asarray(np.ones((1, 3))))
    assert layer.forward(backend.asarray(np.ones((1, 3))), train_flg=False).shape == (
        1,
        3,
    )
