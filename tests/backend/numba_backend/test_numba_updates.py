"""The Numba backend's chapter 6 kernels (backend/numba/updates.py and
layers.py): compiled, not the generic code, and equal to it."""

from __future__ import annotations

import numpy as np
import pytest

import backend as B
from backend import updates as generic

pytest.importorskip("numba")
SHAPES = [(5, 4), (4,), (4, 3), (3,)]
RULES = {
    "momentum_update": ((0.05, 0.8), 1),
    "nesterov_update": ((0.05, 0.8), 1),
    "adagrad_update": ((0.3,), 1),
    "rmsprop_update": ((0.02, 0.9), 1),
    "adam_update": ((0.01, 0.8, 0.95), 2),
}


@pytest.fixture
def no_generic(monkeypatch):
    """Make the generic code fail, so a test proves the compiled one ran."""

    def fail(*args, **kwargs):
        raise AssertionError("the generic code ran")

    for name in (*RULES, "batchnorm_forward", "batchnorm_backward", "dropout_mask"):
        monkeypatch.setattr(generic, name, fail)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("method", list(RULES))
def test_each_rule_is_compiled_and_equals_the_generic_code(method, dtype):
    scalars, slots = RULES[method]
    rng = np.random.default_rng(0)
    host = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(2)]
    state = [[np.abs(rng.standard_normal(s)).astype(dtype) for s in SHAPES]] * slots
    ref = [[a.copy() for a in arrays] for arrays in (*host, *state)]
    getattr(generic, method)(np, ref[0], ref[1], *ref[2:], *scalars)
    got = [[a.copy() for a in arrays] for arrays in (*host, *state)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(generic, method, None)  # the generic code would fail
        getattr(B.get_backend("numba"), method)(got[0], got[1], *got[2:], *scalars)
    tol = {"float32": 1e-6, "float64": 1e-15}[dtype]
    for g_list, w_list in zip(got, ref, strict=True):
        for g, w in zip(g_list, w_list, strict=True):
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


def test_views_of_a_rebuilt_list_are_the_same_arrays():
    be = B.get_backend("numba")
    p, g, v = [np.ones(3)], [np.ones(3)], [np.zeros(3)]
    for _ in range(2):
        be.momentum_update(list(p), list(g), list(v), 0.5, 0.5)
    # v = -0.5, then 0.5 * -0.5 - 0.5 = -0.75; p = 1 - 0.5 - 0.75.
    np.testing.assert_allclose(v[0], -0.75)
    np.testing.assert_allclose(p[0], -0.25)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batchnorm_is_compiled_and_equals_the_books_code(no_generic, dtype):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((7, 5)) * 3 + 1).astype(dtype)
    gamma, beta = rng.standard_normal(5).astype(dtype), rng.standard_normal(5)
    beta = beta.astype(dtype)
    dout = rng.standard_normal((7, 5)).astype(dtype)
    be = B.get_backend("numba")
    got = be.batchnorm_forward(x, gamma, beta)
    back = be.batchnorm_backward(dout, gamma, got[1], got[2], got[3])
    want = _book_forward(x, gamma, beta)
    tol = {"float32": 2e-5, "float64": 1e-12}[dtype]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
    for g, w in zip(back, _book_backward(dout, gamma, *want[1:4]), strict=True):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


def _book_forward(x, gamma, beta):
    x = x.astype(np.float64)
    mu = x.mean(axis=0)
    xc = x - mu
    var = np.mean(xc**2, axis=0)
    std = np.sqrt(var + 10e-7)
    xn = xc / std
    return gamma * xn + beta, xc, xn, std, mu, var


def _book_backward(dout, gamma, xc, xn, std):
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(xn * dout, axis=0)
    dxn = gamma * dout
    dxc = dxn / std
    dstd = -np.sum((dxn * xc) / (std * std), axis=0)
    dvar = 0.5 * dstd / std
    dxc += (2.0 / n) * xc * dvar
    dmu = np.sum(dxc, axis=0)
    return dxc - dmu / n, dgamma, dbeta


def test_dropout_mask_and_relu_are_compiled(no_generic):
    be = B.get_backend("numba")
    mask = be.dropout_mask((6, 7), 0.4, 5, 3)
    assert mask.dtype == np.bool_ and mask.shape == (6, 7)
    x = np.array([[-1.0, 0.0, 2.0, np.nan]])
    y, m = be.relu_forward(x)
    np.testing.assert_array_equal(y, [[0.0, 0.0, 2.0, np.nan]])
    np.testing.assert_array_equal(m, x <= 0)
    np.testing.assert_array_equal(be.relu_backward(np.ones((1, 4)), m), [[0, 0, 1, 1]])
