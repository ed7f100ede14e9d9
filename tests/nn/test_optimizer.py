"""The SGD optimizer: in-place updates and its checkpoint state."""

from __future__ import annotations

import numpy as np
import pytest

from nn import SGD


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sgd_updates_in_place(backend, to_host, dtype):
    rng = np.random.default_rng(0)
    host = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    grads_host = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    params = {k: backend.asarray(v.astype(dtype)) for k, v in host.items()}
    grads = {k: backend.asarray(v.astype(dtype)) for k, v in grads_host.items()}
    objects = {k: v for k, v in params.items()}

    SGD(lr=0.1).update(params, grads)

    tol = 1e-15 if dtype == "float64" else 1e-6
    for key in host:
        assert params[key] is objects[key]  # the very same arrays
        assert params[key].dtype == np.dtype(dtype)
        expected = host[key].astype(dtype) - 0.1 * grads_host[key].astype(dtype)
        np.testing.assert_allclose(to_host(params[key]), expected, rtol=tol, atol=tol)


def test_sgd_default_rate_is_the_books():
    assert SGD().lr == 0.01


def test_state_dict_round_trip(backend, to_host):
    original = SGD(lr=0.37)
    state = original.state_dict()
    assert state == {"lr": 0.37}
    restored = SGD()
    restored.load_state_dict(state)
    assert restored.lr == 0.37
    a = {"W": backend.asarray([1.0, 2.0])}
    b = {"W": backend.asarray([1.0, 2.0])}
    g = {"W": backend.asarray([0.5, -1.0])}
    original.update(a, g)
    restored.update(b, g)
    np.testing.assert_array_equal(to_host(a["W"]), to_host(b["W"]))


@pytest.mark.parametrize("lr", [-0.1, float("nan"), float("inf"), "fast", None])
def test_bad_learning_rates_are_value_errors(lr):
    with pytest.raises(ValueError, match="learning rate"):
        SGD(lr)
    with pytest.raises(ValueError, match="learning rate"):
        SGD().load_state_dict({"lr": lr})


def test_missing_gradient_is_a_key_error_and_changes_nothing(backend, to_host):
    params = {"W": backend.asarray([1.0]), "b": backend.asarray([2.0])}
    with pytest.raises(KeyError, match="'b'"):
        SGD(1.0).update(params, {"W": backend.asarray([1.0])})
    assert to_host(params["W"])[0] == 1.0
