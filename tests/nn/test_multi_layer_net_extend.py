"""MultiLayerNetExtend: Batch Normalization and Dropout inside a network;
gradient checks on every backend; its state for checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from nn import BatchNormalization, Dropout, MultiLayerNetExtend


def _data(n=6, d=5, c=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, c, n)


def test_layers_and_params_in_the_books_order():
    net = MultiLayerNetExtend(5, [4, 3], 2, use_dropout=True, use_batchnorm=True)
    assert list(net.layers) == [
        "Affine1",
        "BatchNorm1",
        "Activation_function1",
        "Dropout1",
        "Affine2",
        "BatchNorm2",
        "Activation_function2",
        "Dropout2",
        "Affine3",
    ]
    assert sorted(net.params) == sorted(
        ["W1", "b1", "W2", "b2", "W3", "b3", "gamma1", "beta1", "gamma2", "beta2"]
    )
    np.testing.assert_array_equal(net.params["gamma2"], np.ones(3))


@pytest.mark.parametrize("dropout", [False, True])
def test_gradient_check_with_batchnorm_and_weight_decay(backend, to_host, dropout):
    x, t = _data()
    net = MultiLayerNetExtend(
        5,
        [4, 3],
        3,
        weight_decay_lambda=0.1,
        use_batchnorm=True,
        use_dropout=dropout,
        dropout_ration=0.25,
        rng=2,
    )
    x, t = backend.asarray(x), backend.asarray(t)
    numeric = net.numerical_gradient(x, t)
    for layer in net.layers.values():
        if isinstance(layer, Dropout):
            layer.hold = True  # backprop through the mask the numbers used
    backprop = net.gradient(x, t)
    assert set(backprop) == set(net.params)
    # Backprop leaves out the 1e-7 inside the log: relative error ~1e-7 / y_t.
    # (The biases before Batch Normalization have a zero gradient: a global scale.)
    scale = max(np.max(np.abs(to_host(g))) for g in backprop.values())
    assert scale > 1e-4  # the check would be empty if the gradients vanished
    for k in net.params:
        g_bp, g_num = to_host(backprop[k]), to_host(numeric[k])
        np.testing.assert_allclose(g_bp, g_num, rtol=1e-5, atol=1e-5 * scale)


def test_numerical_gradient_leaves_the_running_statistics(backend, to_host):
    x, t = _data()
    net = MultiLayerNetExtend(5, [4], 3, use_batchnorm=True, rng=0)
    x, t = backend.asarray(x), backend.asarray(t)
    net.loss(x, t, train_flg=True)
    before = {k: to_host(v) for k, v in net.state_dict()["buffers"].items()}
    net.numerical_gradient(x, t)
    for k, v in net.state_dict()["buffers"].items():
        np.testing.assert_array_equal(to_host(v), before[k])


def test_inference_is_deterministic_and_training_is_not(backend, to_host):
    x, _ = _data(n=8)
    net = MultiLayerNetExtend(5, [16], 3, use_dropout=True, rng=0)
    x = backend.asarray(x)
    np.testing.assert_array_equal(to_host(net.predict(x)), to_host(net.predict(x)))
    a, b = to_host(net.predict(x, train_flg=True)), to_host(net.predict(x, True))
    assert not np.array_equal(a, b)


def test_state_dict_round_trip_repeats_the_next_steps(backend, to_host):
    x, t = _data(n=8)
    x, t = backend.asarray(x), backend.asarray(t)
    kwargs = {"use_dropout": True, "use_batchnorm": True, "rng": 9}
    a = MultiLayerNetExtend(5, [4, 4], 3, **kwargs)
    a.gradient(x, t)
    saved = {
        "buffers": {k: to_host(v) for k, v in a.state_dict()["buffers"].items()},
        "dropout": a.state_dict()["dropout"],
    }
    b = MultiLayerNetExtend(5, [4, 4], 3, **kwargs)
    for k in a.params:
        b.params[k][...] = a.params[k]
    b.load_state_dict(saved)
    ga, gb = a.gradient(x, t), b.gradient(x, t)
    for k in ga:
        np.testing.assert_array_equal(to_host(ga[k]), to_host(gb[k]))
    bn = [la for la in b.layers.values() if isinstance(la, BatchNormalization)]
    assert len(bn) == 2 and b.state_dict()["dropout"] == a.state_dict()["dropout"]


def test_state_of_another_network_is_rejected():
    a = MultiLayerNetExtend(5, [4, 4], 3, use_batchnorm=True)
    b = MultiLayerNetExtend(5, [4], 3, use_batchnorm=True)
    with pytest.raises(ValueError, match="another network"):
        b.load_state_dict(a.state_dict())


@pytest.mark.parametrize("ratio", [-0.5, 1.0])
def test_dropout_ratio_outside_0_1_is_rejected(ratio):
    with pytest.raises(ValueError, match=r"dropout ratio must be a number in \[0, 1\)"):
        MultiLayerNetExtend(4, [3], 2, use_dropout=True, dropout_ration=ratio)


def test_batchnorm_training_batch_of_one_is_a_one_line_error():
    net = MultiLayerNetExtend(4, [3], 2, use_batchnorm=True)
    with pytest.raises(ValueError, match="2 or more samples per batch, got 1"):
        net.gradient(np.ones((1, 4)), np.array([0]))
