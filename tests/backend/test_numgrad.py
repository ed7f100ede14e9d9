"""The fast numerical gradients (backend/numgrad.py, backend/numba/numgrad.py)
against the textbook loop.

Tolerances: in float64 the fast path and the loop agree to 1e-8 as required;
measured they differ by about 5e-12, the loop's own rounding of the loss
(ulp(L) / 2h). In float32 the loop's central difference is rounding noise of
order eps32 * L / 2h ~ 1e-3, so it is compared with atol 2e-2, while the fast
path (which evaluates the perturbed losses in float64) must equal the fast path
on the same parameters promoted to float64 within float32 rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

import backend as B
from nn.two_layer_net import TwoLayerNet

FLOAT64_ATOL = 1e-8
TINY_ATOL = 2e-11
FLOAT32_LOOP_ATOL = 2e-2


def _net(backend, sizes, activation, dtype="float64", seed=0):
    """A network with weights large enough that every unit and class matters."""
    net = TwoLayerNet(
        *sizes,
        weight_init_std=0.3,
        activation=activation,
        backend=backend,
        dtype=dtype,
        rng=seed,
    )
    rng = np.random.default_rng(seed + 1)
    for p in net.params.values():
        p[...] = backend.asarray(
            B.to_numpy(p) + 0.1 * rng.standard_normal(p.shape), dtype=p.dtype
        )
    return net


def _inputs(backend, n, d, zeros, seed=0):
    """Inputs quantised to steps of 1/8 (repeated values, as pixels have);
    ``zeros`` "none": no zero anywhere, "some": 60% zeros plus an all-zero
    pixel column and an all-zero sample."""
    rng = np.random.default_rng(seed)
    x = np.ceil(rng.uniform(0.01, 1.0, (n, d)) * 8) / 8
    if zeros == "some":
        x[rng.random((n, d)) < 0.6] = 0
        x[:, 0] = 0
        x[-1] = 0
    else:
        assert np.all(x != 0)
    return backend.asarray(x)


def _targets(backend, n, c, form, seed=0):
    labels = np.random.default_rng(seed + 2).integers(0, c, n)
    if form == "labels":
        return backend.asarray(labels)
    return backend.asarray(np.eye(c)[labels])


def _max_abs_diff(g1, g2):
    return max(
        float(np.max(np.abs(B.to_numpy(g1[k]).astype(float) - B.to_numpy(g2[k]))))
        for k in g1
    )


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("form", ["labels", "one-hot"])
@pytest.mark.parametrize("zeros", ["none", "some"])
def test_fast_matches_loop_float64(backend, activation, form, zeros):
    net = _net(backend, (24, 6, 4), activation)
    x = _inputs(backend, 7, 24, zeros)
    t = _targets(backend, 7, 4, form)
    fast = net.numerical_gradient(x, t, method="fast")
    loop = net.numerical_gradient(x, t, method="loop")
    assert _max_abs_diff(fast, loop) < FLOAT64_ATOL
    assert all(fast[k].shape == net.params[k].shape for k in net.params)
    assert all(fast[k].dtype == net.params[k].dtype for k in net.params)


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_tiny_network_fast_equals_loop(backend, activation):
    """Dimensions small enough for both to run in milliseconds: equal up to
    the loop's own rounding of the loss."""
    net = _net(backend, (3, 2, 2), activation, seed=3)
    x = backend.asarray(np.array([[0.5, 0.0, 1.0], [0.25, 0.25, 0.0]]))
    t = backend.asarray(np.array([1, 0]))
    fast = net.numerical_gradient(x, t, method="fast")
    loop = net.numerical_gradient(x, t, method="loop")
    assert _max_abs_diff(fast, loop) < TINY_ATOL


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_soft_targets_match_loop(backend, activation):
    """Target rows with several non-zero weights take the general path."""
    net = _net(backend, (10, 4, 3), activation)
    x = _inputs(backend, 5, 10, "some")
    t = np.random.default_rng(4).dirichlet(np.ones(3), 5)
    t = backend.asarray(t)
    fast = net.numerical_gradient(x, t, method="fast")
    loop = net.numerical_gradient(x, t, method="loop")
    assert _max_abs_diff(fast, loop) < FLOAT64_ATOL


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_mixed_target_rows_match_loop(backend, activation):
    """One batch with one-entry rows (the one-target path), soft rows (the
    general path) and an all-zero row (no loss term at all)."""
    net = _net(backend, (10, 4, 3), activation)
    x = _inputs(backend, 6, 10, "some")
    t = np.random.default_rng(5).dirichlet(np.ones(3), 6)
    t[1] = [0.0, 0.7, 0.0]
    t[3] = [1.0, 0.0, 0.0]
    t[4] = 0.0
    fast = net.numerical_gradient(x, backend.asarray(t), method="fast")
    loop = net.numerical_gradient(x, backend.asarray(t), method="loop")
    assert _max_abs_diff(fast, loop) < FLOAT64_ATOL
    assert max(float(abs(backend.asnumpy(g)).max()) for g in fast.values()) > 1e-3


@pytest.mark.parametrize("form", ["labels", "one-hot"])
def test_relu_units_that_cross_zero_match_loop(backend, form):
    """Pre-activations within v·h of zero, so that a perturbation switches the
    unit on or off (the ReLU kernels evaluate those in full instead of by the
    shared exp(±v·h·W2) factors): a = +-5e-5, a = 0 and a = -(h/2)·v."""
    net = _net(backend, (12, 5, 3), "relu")
    x = _inputs(backend, 6, 12, "some")
    xh = B.to_numpy(x)
    W1 = B.to_numpy(net.params["W1"])
    a = xh @ W1  # without b1
    # Unit j's bias puts sample n's pre-activation at the chosen value.
    for j, (n, value) in enumerate([(0, 5e-5), (1, -5e-5), (2, 0.0), (3, -0.5e-4)]):
        net.params["b1"][j] = backend.asarray(value - a[n, j])
    pre = xh @ W1 + B.to_numpy(net.params["b1"])
    assert np.sum(np.abs(pre) < 1e-4) >= 4  # crossings exist for b1 (input 1)
    t = _targets(backend, 6, 3, form)
    fast = net.numerical_gradient(x, t, method="fast")
    loop = net.numerical_gradient(x, t, method="loop")
    assert _max_abs_diff(fast, loop) < FLOAT64_ATOL


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_params_left_bitwise_unchanged(backend, dtype):
    net = _net(backend, (12, 5, 3), "relu", dtype=dtype)
    before = {k: B.to_numpy(v).copy() for k, v in net.params.items()}
    ids = {k: id(v) for k, v in net.params.items()}
    net.numerical_gradient(
        _inputs(backend, 4, 12, "some"), _targets(backend, 4, 3, "labels")
    )
    for k, v in net.params.items():
        assert id(v) == ids[k]
        assert np.array_equal(B.to_numpy(v), before[k])


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_float32(backend, activation, to_host):
    net32 = _net(backend, (16, 5, 3), activation, dtype="float32")
    net64 = _net(backend, (16, 5, 3), activation)
    for k in net64.params:  # the very same values, promoted
        net64.params[k][...] = net32.params[k].astype("float64")
    x = _inputs(backend, 6, 16, "some")
    t = _targets(backend, 6, 3, "labels")
    fast32 = net32.numerical_gradient(x, t, method="fast")
    fast64 = net64.numerical_gradient(x, t, method="fast")
    loop32 = net32.numerical_gradient(x, t, method="loop")
    backprop = net64.gradient(x, t)
    for k in fast32:
        assert fast32[k].dtype == np.float32
        np.testing.assert_allclose(
            to_host(fast32[k]), to_host(fast64[k]), rtol=1e-6, atol=1e-9
        )
        np.testing.assert_allclose(
            to_host(fast32[k]), to_host(backprop[k]), rtol=0, atol=1e-6
        )
    assert _max_abs_diff(fast32, loop32) < FLOAT32_LOOP_ATOL


def _gradient_errors(net, grads, x, t):
    backprop = net.gradient(x, t)
    return {
        k: float(np.mean(np.abs(B.to_numpy(backprop[k]) - B.to_numpy(grads[k]))))
        for k in grads
    }


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_gradient_check_errors_same_as_loop(backend, activation):
    net = _net(backend, (20, 6, 4), activation)
    x = _inputs(backend, 8, 20, "some")
    t = _targets(backend, 8, 4, "labels")
    fast = _gradient_errors(net, net.numerical_gradient(x, t, method="fast"), x, t)
    loop = _gradient_errors(net, net.numerical_gradient(x, t, method="loop"), x, t)
    for k in fast:
        assert fast[k] == pytest.approx(loop[k], rel=0.05, abs=1e-11)
        assert fast[k] < 1e-6


def _fashion(shared_data, n):
    from nn.data.mnist import load_mnist_split

    x, t = load_mnist_split(
        "test",
        dataset="fashion-mnist",
        data_dir=shared_data / "fashion-mnist",
        download=False,
    )
    return x[:n], t[:n]


@pytest.mark.realdata
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_real_images_match_loop(backend, shared_data, activation):
    x, t = _fashion(shared_data, 4)
    net = TwoLayerNet(784, 3, 10, activation=activation, backend=backend, rng=5)
    x, t = backend.asarray(x), backend.asarray(t)
    fast = net.numerical_gradient(x, t, method="fast")
    loop = net.numerical_gradient(x, t, method="loop")
    assert _max_abs_diff(fast, loop) < FLOAT64_ATOL


@pytest.mark.realdata
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_book_size_agrees_with_backprop_and_numpy(backend, shared_data, activation):
    """784-50-10 at batch 100: too big for the loop in a test, so the fast
    path is checked against backprop (chapter 5's gradient check) and against
    the NumPy backend's fast path."""
    x, t = _fashion(shared_data, 100)
    net = TwoLayerNet(784, 50, 10, activation=activation, backend=backend, rng=6)
    x, t = backend.asarray(x), backend.asarray(t)
    fast = net.numerical_gradient(x, t, method="fast")
    errors = _gradient_errors(net, fast, x, t)
    assert errors["W1"] < (1e-9 if activation == "sigmoid" else 1e-6)
    assert max(errors.values()) < 1e-6
    ref_net = TwoLayerNet(784, 50, 10, activation=activation, backend="numpy", rng=6)
    ref = ref_net.numerical_gradient(B.to_numpy(x), B.to_numpy(t), method="fast")
    assert _max_abs_diff(fast, ref) < 1e-10


@pytest.mark.parametrize(
    ("x_shape", "t", "message"),
    [
        ((3, 7), np.array([0, 1, 2]), "features per sample"),
        ((3, 8), np.array([0, 1, 3]), "labels must lie"),
        ((3, 8), np.array([0.0, 1.0, 2.0]), "integer labels"),
        ((0, 8), np.zeros(0, dtype=int), "empty batch"),
    ],
)
def test_bad_input_is_a_clear_error(backend, x_shape, t, message):
    net = TwoLayerNet(8, 4, 3, backend=backend)
    with pytest.raises(ValueError, match=message):
        net.numerical_gradient(
            backend.asarray(np.ones(x_shape)), backend.asarray(t), method="fast"
        )


def test_segment_sum_takes_reduceat_as_real_cupy_does(monkeypatch):
    """CuPy 13 and 14 have ``add.reduceat`` (a cumulative-sum difference), so
    there is one path; on the stand-in it runs CuPy's algorithm."""
    import cupy_standin as cp

    from backend import numgrad as _numgrad

    cupy = pytest.importorskip("cupy")
    assert hasattr(cupy.add, "reduceat")
    calls = []
    real = cp.add.reduceat

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cp.add, "reduceat", spy)
    rng = np.random.default_rng(3)
    keys = np.sort(rng.integers(0, 7, 40))
    values = rng.standard_normal((40, 3))
    got = _numgrad._segment_sum(cp, cp.asarray(values), cp.asarray(keys), 9)
    want = np.zeros((9, 3))
    np.add.at(want, keys, values)
    assert calls == [1]
    np.testing.assert_allclose(got.get(), want, rtol=1e-12, atol=1e-14)
