"""MultiLayerNet: shapes, initialisations, weight decay, gradient check on
every backend, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nn import Adam, MultiLayerNet


def _data(n=6, d=5, c=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, c, n)


def test_params_follow_the_books_keys_and_shapes(backend):
    net = MultiLayerNet(5, [4, 3, 2], 3, rng=0)
    assert list(net.params) == ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"]
    shapes = [net.params[k].shape for k in net.params]
    assert shapes == [(5, 4), (4,), (4, 3), (3,), (3, 2), (2,), (2, 3), (3,)]
    assert all(p.dtype == np.float64 for p in net.params.values())
    assert type(net.params["W1"]).__module__.split(".")[0] == backend.xp.__name__


@pytest.mark.parametrize(
    ("init", "scale"),
    [("relu", 2.0), ("He", 2.0), ("sigmoid", 1.0), ("xavier", 1.0), (0.05, None)],
)
def test_weight_init_scales(to_host, init, scale):
    net = MultiLayerNet(400, [300], 200, weight_init_std=init, rng=0)
    for key, fan_in in (("W1", 400), ("W2", 300)):
        want = 0.05 if scale is None else math.sqrt(scale / fan_in)
        assert abs(to_host(net.params[key]).std() / want - 1) < 0.02


def test_same_seed_same_weights_on_every_backend(backend, to_host):
    a = MultiLayerNet(5, [4, 4], 3, rng=42, backend="numpy")
    b = MultiLayerNet(5, [4, 4], 3, rng=42)
    for k in a.params:
        np.testing.assert_array_equal(to_host(a.params[k]), to_host(b.params[k]))


def _reference_loss(params, x, t, layers, lam):
    h = x
    for i in range(1, layers):
        h = np.maximum(0, h @ params[f"W{i}"] + params[f"b{i}"])
    s = h @ params[f"W{layers}"] + params[f"b{layers}"]
    e = np.exp(s - s.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    ce = -np.sum(np.log(y[np.arange(len(t)), t] + 1e-7)) / len(t)
    decay = sum(0.5 * lam * np.sum(params[f"W{i}"] ** 2) for i in range(1, layers + 1))
    return ce + decay


@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_loss_matches_a_float64_reference_with_weight_decay(backend, to_host, lam):
    x, t = _data()
    net = MultiLayerNet(5, [4, 4], 3, weight_decay_lambda=lam, rng=3)
    host = {k: to_host(v) for k, v in net.params.items()}
    got = float(net.loss(backend.asarray(x), backend.asarray(t)))
    assert got == pytest.approx(_reference_loss(host, x, t, 3, lam), rel=1e-12)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_gradient_check_with_weight_decay(backend, to_host, activation):
    x, t = _data()
    net = MultiLayerNet(
        5, [4, 3], 3, activation=activation, weight_decay_lambda=0.1, rng=5
    )
    x, t = backend.asarray(x), backend.asarray(t)
    numeric = net.numerical_gradient(x, t)
    backprop = net.gradient(x, t)
    assert set(backprop) == set(net.params)
    for k in net.params:
        g_bp, g_num = to_host(backprop[k]), to_host(numeric[k])
        # Backprop leaves out the 1e-7 inside the log: relative error ~1e-7 / y_t.
        scale = np.max(np.abs(g_bp))
        np.testing.assert_allclose(g_bp, g_num, rtol=1e-5, atol=1e-5 * scale)
        assert scale > 1e-4  # the check would be empty if the gradients vanished


def test_adam_steps_learn_and_accuracy_counts(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8))
    t = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    net = MultiLayerNet(8, [16, 16], 3, rng=0, dtype="float32")
    x, t = backend.asarray(x, dtype="float32"), backend.asarray(t)
    opt = Adam(lr=0.01)
    first = float(net.train_step(x, t, opt))
    for _ in range(100):
        last = float(net.train_step(x, t, opt))
    assert last < 0.3 * first
    correct, fired = net.count_correct(x, t, chunk=10)
    assert correct / 64 == net.accuracy(x, t) > 0.9 and fired


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden_size_list": [100, 0]}, "positive integers, got 0"),
        ({"hidden_size_list": []}, "hidden_size_list is empty"),
        ({"hidden_size_list": 100}, "must be a list of layer widths"),
        ({"weight_init_std": "lecun"}, "unknown weight initialisation 'lecun'"),
        ({"weight_init_std": -1.0}, "weight_init_std must be a number >= 0"),
        ({"weight_decay_lambda": -0.1}, "weight decay lambda must be"),
        ({"activation": "tanh"}, "unknown activation 'tanh'"),
        ({"dtype": "int32"}, "dtype must be a floating type"),
    ],
)
def test_bad_arguments_are_one_line_value_errors(kwargs, match):
    args = {"input_size": 4, "hidden_size_list": [3], "output_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match) as info:
        MultiLayerNet(**args)
    assert "\n" not in str(info.value)
