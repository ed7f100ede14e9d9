"""Chapter 4's simpleNet against the values the book prints."""

from __future__ import annotations

import numpy as np
import pytest

import backend as B
from nn import SimpleNet, numerical_gradient

W_BOOK = [
    [0.47355232, 0.9977393, 0.84668094],
    [0.85557411, 0.03563661, 0.69422093],
]
X_BOOK = [0.6, 0.9]
PREDICT_BOOK = [1.05414809, 0.63071653, 1.1328074]
LOSS_BOOK = 0.92806853663411326
DW_BOOK = [
    [0.21924763, 0.14356247, -0.36281009],
    [0.32887144, 0.21534371, -0.54421514],
]


@pytest.mark.parametrize("target", ["one_hot", "label"])
def test_simple_net_book_example(backend, to_host, target):
    W = backend.asarray(W_BOOK, dtype="float64")
    net = SimpleNet(W)
    assert net.W is W  # used as given, so numerical_gradient perturbs it
    x = backend.asarray(X_BOOK)
    t = backend.asarray([0, 0, 1] if target == "one_hot" else 2)

    p = net.predict(x)
    np.testing.assert_allclose(to_host(p), PREDICT_BOOK, atol=1e-8)
    assert int(to_host(p).argmax()) == 2
    loss = float(net.loss(x, t))
    # The printed loss leaves out the 1e-7 inside the log (y_2 = 0.395 makes
    # that 2.5e-7) and W is printed to 8 digits; recompute it exactly too.
    assert loss == pytest.approx(LOSS_BOOK, abs=5e-7)
    scores = np.array(X_BOOK) @ np.array(W_BOOK)
    y = np.exp(scores) / np.exp(scores).sum()
    assert loss == pytest.approx(-np.log(y[2] + 1e-7), rel=1e-14)

    dW = numerical_gradient(lambda _w: net.loss(x, t), net.W)
    np.testing.assert_allclose(to_host(dW), DW_BOOK, atol=1e-6)
    np.testing.assert_array_equal(to_host(net.W), W_BOOK)  # restored


def test_simple_net_accepts_nested_lists(backend, to_host):
    net = SimpleNet(W_BOOK)
    assert net.W.dtype == np.float64
    assert type(net.W).__module__.split(".")[0] == backend.xp.__name__
    np.testing.assert_allclose(
        to_host(net.predict(backend.asarray(X_BOOK))), PREDICT_BOOK, atol=1e-8
    )


def test_simple_net_batch_predict_matches_rows(backend, to_host):
    net = SimpleNet(W_BOOK)
    x = np.array([X_BOOK, [1.0, -1.0], [0.0, 0.0]])
    expected = x @ np.array(W_BOOK)
    np.testing.assert_allclose(
        to_host(net.predict(backend.asarray(x))), expected, rtol=1e-14
    )


def test_simple_net_default_weights_are_seeded_float64(backend, to_host):
    a, b, c = SimpleNet(rng=7), SimpleNet(rng=7), SimpleNet(rng=8)
    assert a.W.shape == (2, 3)
    assert a.W.dtype == np.float64
    expected = np.random.default_rng(7).standard_normal((2, 3))
    np.testing.assert_array_equal(to_host(a.W), expected)
    np.testing.assert_array_equal(to_host(a.W), to_host(b.W))
    assert not np.array_equal(to_host(a.W), to_host(c.W))


def test_simple_net_rejects_a_weight_vector():
    with pytest.raises(ValueError, match="2-D"):
        SimpleNet(B.get_backend("numpy").asarray([1.0, 2.0]))
