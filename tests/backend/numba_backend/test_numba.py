"""The Numba backend against the NumPy backend (the reference).

Tolerances: float64 results agree to rtol 1e-10 (only the order of sums
differs); float32 to rtol 1e-5 / atol 1e-6 per kernel and 2e-4 on a loss
curve after 200 SGD steps, where rounding differences accumulate.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import backend as B
from nn.optimizer import SGD
from nn.two_layer_net import TwoLayerNet

pytest.importorskip("numba")

TOL = {
    "float32": {"rtol": 1e-5, "atol": 1e-6},
    "float64": {"rtol": 1e-10, "atol": 1e-13},
}
DTYPES = ["float32", "float64"]


@pytest.fixture(scope="module")
def nb():
    return B.get_backend("numba")


@pytest.fixture(scope="module")
def ref():
    return B.get_backend("numpy")


def _sparse_images(rng, n, d, dtype):
    """MNIST-like rows: about 80 % exact zeros, the rest in (0, 1]."""
    x = rng.random((n, d))
    x[rng.random((n, d)) < 0.8] = 0.0
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(10,), (1, 3), (7, 10), (300, 10), (2000, 16)])
def test_softmax_matches_numpy(nb, ref, dtype, shape):
    x = (np.random.default_rng(0).standard_normal(shape) * 30).astype(dtype)
    x.flat[0] = 800  # exp(800) overflows float64: the max must be subtracted
    y = nb.softmax(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    np.testing.assert_allclose(y, ref.softmax(x), **TOL[dtype])
    np.testing.assert_allclose(y.sum(axis=-1), 1, rtol=1e-5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_softmax_nonfinite_like_numpy(nb, ref, bad):
    x = np.array([[1.0, bad, 2.0], [1.0, 2.0, 3.0]])
    with np.errstate(invalid="ignore"):
        expected = ref.softmax(x)
    np.testing.assert_array_equal(np.isnan(nb.softmax(x)), np.isnan(expected))
    np.testing.assert_allclose(nb.softmax(x)[1], expected[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,c", [(1, 2), (5, 10), (100, 10), (3000, 7)])
@pytest.mark.parametrize("onehot", [False, True])
def test_softmax_cross_entropy_matches_numpy(nb, ref, dtype, n, c, onehot):
    rng = np.random.default_rng(n + c)
    x = (rng.standard_normal((n, c)) * 5).astype(dtype)
    t = rng.integers(0, c, n)
    if onehot:
        t = np.eye(c, dtype=dtype)[t]
    loss, y = nb.softmax_cross_entropy(x, t)
    ref_loss, ref_y = ref.softmax_cross_entropy(x, t)
    assert loss.shape == () and loss.dtype == x.dtype and y.dtype == x.dtype
    np.testing.assert_allclose(loss, ref_loss, **TOL[dtype])
    np.testing.assert_allclose(y, ref_y, **TOL[dtype])
    for dout in (1, 0.5):
        dx = nb.softmax_cross_entropy_backward(y, t, dout)
        assert dx.dtype == x.dtype
        np.testing.assert_allclose(
            dx, ref.softmax_cross_entropy_backward(ref_y, t, dout), **TOL[dtype]
        )


def test_cross_entropy_hand_value(nb):
    # Equal scores: y = 1/4 each, loss = -log(0.25 + 1e-7), gradient (y - t)/N.
    x = np.zeros((2, 4))
    t = np.array([0, 3])
    loss, y = nb.softmax_cross_entropy(x, t)
    assert float(loss) == pytest.approx(-np.log(0.25 + 1e-7), rel=1e-12)
    dx = nb.softmax_cross_entropy_backward(y, t)
    np.testing.assert_allclose(dx[0], [-0.375, 0.125, 0.125, 0.125])


def test_cross_entropy_rejects_bad_labels(nb):
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        nb.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="labels must be integers"):
        nb.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "n,k,m", [(1, 1, 1), (4, 5, 3), (16, 16, 16), (100, 50, 10), (100, 784, 50)]
)
def test_matmul_matches_numpy(nb, dtype, n, k, m):
    rng = np.random.default_rng(k)
    a = rng.standard_normal((n, k)).astype(dtype)
    b = rng.standard_normal((k, m)).astype(dtype)
    out = nb.matmul(a, b)
    assert out.shape == (n, m) and out.dtype == np.dtype(dtype)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(out, expected, rtol=TOL[dtype]["rtol"] * 10, atol=1e-4)
    # Non-contiguous operands (the backward's x.T) go through the same rules.
    np.testing.assert_allclose(nb.matmul(b.T, a.T), expected.T, rtol=1e-4, atol=1e-4)


def test_numerical_gradient_generic_loop(nb):
    x = np.array([3.0, 4.0])
    grad = nb.numerical_gradient(lambda v: np.sum(v**2), x)
    np.testing.assert_allclose(grad, [6.0, 8.0], rtol=1e-8)
    np.testing.assert_array_equal(x, [3.0, 4.0])  # restored exactly


def _net_pair(sizes, dtype, activation, seed=0):
    return tuple(
        TwoLayerNet(*sizes, dtype=dtype, activation=activation, backend=name, rng=seed)
        for name in ("numba", "numpy")
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("onehot", [False, True])
@pytest.mark.parametrize("sizes,n", [((784, 50, 10), 100), ((7, 5, 3), 4)])
def test_fused_step_equals_gradient_plus_sgd(dtype, activation, onehot, sizes, n):
    rng = np.random.default_rng(1)
    fused_net, ref_net = _net_pair(sizes, dtype, activation)
    assert fused_net.backend.two_layer_sgd_step is not None
    x = _sparse_images(rng, n, sizes[0], dtype)
    t = rng.integers(0, sizes[2], n)
    if onehot:
        t = np.eye(sizes[2], dtype=dtype)[t]
    lr = 0.5
    ref_loss = ref_net.loss(x, t)
    grads = ref_net.gradient(x, t)
    SGD(lr).update(ref_net.params, grads)
    loss = fused_net.backend.two_layer_sgd_step(fused_net.params, x, t, lr, activation)
    assert loss.shape == () and loss.dtype == np.dtype(dtype)
    np.testing.assert_allclose(loss, ref_loss, **TOL[dtype])
    for key in ref_net.params:
        assert fused_net.params[key].dtype == np.dtype(dtype)
        np.testing.assert_allclose(
            fused_net.params[key], ref_net.params[key], err_msg=key, **TOL[dtype]
        )


def test_fused_step_skips_only_exact_zeros_and_keeps_nan_semantics():
    # An inf in W1 meets zero pixels: the dense product gives NaN (0 * inf),
    # so the sparse kernel must too.
    fused_net, ref_net = _net_pair((6, 4, 3), "float64", "relu")
    for net in (fused_net, ref_net):
        net.params["W1"][0, 1] = np.inf
    x = np.zeros((2, 6))
    x[:, 3] = 1.0
    t = np.array([0, 2])
    with np.errstate(invalid="ignore", over="ignore"):
        ref_loss = ref_net.train_step(x, t, SGD(0.1))
        loss = fused_net.train_step(x, t, SGD(0.1))
    np.testing.assert_array_equal(np.isnan(loss), np.isnan(ref_loss))
    for key in ref_net.params:
        np.testing.assert_array_equal(
            np.isnan(fused_net.params[key]), np.isnan(ref_net.params[key]), key
        )


def test_fused_step_does_not_depend_on_thread_count():
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2 to compare thread counts")
    rng = np.random.default_rng(5)
    x = _sparse_images(rng, 100, 784, "float32")
    t = rng.integers(0, 10, 100)
    results = []
    previous = numba.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            net = TwoLayerNet(784, 50, 10, dtype="float32", backend="numba", rng=0)
            loss = net.train_step(x, t, SGD(0.1))
            results.append((loss, net.params))
    finally:
        numba.set_num_threads(previous)
    for loss, params in results[1:]:
        np.testing.assert_array_equal(loss, results[0][0])
        for key in params:  # bit-for-bit: every sum runs in one fixed order
            np.testing.assert_array_equal(params[key], results[0][1][key])


def test_fused_step_rejects_bad_input():
    net = TwoLayerNet(4, 3, 2, backend="numba", rng=0)
    step = net.backend.two_layer_sgd_step
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        step(net.params, np.ones((2, 4)), np.array([0, 2]), 0.1, "relu")
    for key, value in before.items():  # nothing was updated
        np.testing.assert_array_equal(net.params[key], value)
    with pytest.raises(ValueError, match="unknown activation"):
        step(net.params, np.ones((2, 4)), np.array([0, 1]), 0.1, "tanh")
    with pytest.raises(ValueError, match="features per row"):
        step(net.params, np.ones((2, 5)), np.array([0, 1]), 0.1, "relu")


@pytest.mark.slow
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-9), ("float32", 2e-4)])
def test_training_run_matches_numpy_loss_curve(dtype, rtol):
    """200 steps of minibatch SGD on the same seeded data: the same loss curve."""
    rng = np.random.default_rng(7)
    centers = rng.random((10, 784)) * (rng.random((10, 784)) < 0.2)
    labels = rng.integers(0, 10, 2000)
    x = centers[labels] + 0.1 * _sparse_images(rng, 2000, 784, "float64")
    x = x.astype(dtype)
    fused_net, ref_net = _net_pair((784, 50, 10), dtype, "relu", seed=3)
    opt = SGD(0.1)
    curves = {"numba": [], "numpy": []}
    batches = np.random.default_rng(11).integers(0, 2000, (200, 100))
    for idx in batches:
        curves["numba"].append(float(fused_net.train_step(x[idx], labels[idx], opt)))
        curves["numpy"].append(float(ref_net.train_step(x[idx], labels[idx], opt)))
    np.testing.assert_allclose(curves["numba"], curves["numpy"], rtol=rtol)
    assert curves["numba"][-1] < 0.5 * curves["numba"][0]  # it did learn


def test_import_backend_does_not_import_numba():
    code = (
        "import sys, backend; backend.get_backend('numpy'); "
        "print('numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_missing_numba_names_the_extra(monkeypatch):
    import backend.numba as _numba

    monkeypatch.setitem(sys.modules, "numba", None)  # makes `import numba` fail
    with pytest.raises(
        B.BackendUnavailableError, match=r'pip install "xpnet\[numba\]"'
    ):
        _numba.NumbaBackend()


@pytest.mark.parametrize("name", ["numba", "cupy"])
def test_a_folder_named_like_the_library_is_not_the_library(monkeypatch, name):
    """A test folder called numba/ or cupy/ on sys.path imports as an empty
    namespace package where the library is missing; that is "not installed",
    with the extra to install, not an AttributeError later."""
    import types

    fake = types.ModuleType(name)  # like a namespace package: no __file__
    monkeypatch.setitem(sys.modules, name, fake)
    monkeypatch.delitem(B._instances, name, raising=False)
    with pytest.raises(B.BackendUnavailableError, match=r"pip install .*xpnet\["):
        B.get_backend(name)


def _predicted_by_layers(net, x):
    """Arg-max classes from the layer-by-layer forward pass (N,)."""
    return np.argmax(net.predict(x), axis=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("onehot", [False, True])
@pytest.mark.parametrize("n", [1, 7, 1024, 2500])  # across the chunk boundary
def test_fused_accuracy_equals_layer_by_layer(dtype, activation, onehot, n):
    from backend.numba.accuracy import CHUNK

    assert CHUNK == 1024  # n above covers one, exactly one and several chunks
    rng = np.random.default_rng(2)
    net, _ = _net_pair((784, 50, 10), dtype, activation)
    for key in ("b1", "b2"):  # non-zero biases, so adding them is checked
        net.params[key][:] = rng.normal(0, 0.1, net.params[key].shape)
    x = _sparse_images(rng, n, 784, dtype)
    predicted = _predicted_by_layers(net, x)
    # Half the labels are what the network predicts, so the count is not 0.
    t = np.where(rng.random(n) < 0.5, predicted, rng.integers(0, 10, n))
    expected = float(np.mean(predicted == t))
    if onehot:
        t = np.eye(10, dtype=dtype)[t]
    correct, fired = net.backend.two_layer_count_correct(net.params, x, t, activation)
    assert correct / n == expected
    assert fired == (activation == "sigmoid" or bool(np.any(~net.layers["Relu1"].mask)))
    assert net.accuracy(x, t) == expected


def test_fused_accuracy_argmax_ties_and_nan_like_numpy():
    net, _ = _net_pair((3, 2, 4), "float64", "relu")
    p = net.params
    p["W1"][:] = np.eye(3, 2)
    p["b1"][:] = 0
    p["W2"][:] = 0
    p["b2"][:] = [0.0, 1.0, 1.0, 0.5]  # classes 1 and 2 tie: argmax takes 1
    x = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    t = np.array([1, 2])
    assert net.backend.two_layer_count_correct(p, x, t, "relu") == (1, True)
    p["b2"][3] = np.nan  # numpy.argmax returns the first NaN
    assert _predicted_by_layers(net, x).tolist() == [3, 3]
    assert net.backend.two_layer_count_correct(p, x, np.array([3, 0]), "relu") == (
        1,
        True,
    )


def test_fused_count_reports_a_dead_relu_layer_like_the_mask():
    net, _ = _net_pair((3, 2, 4), "float64", "relu")
    x = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]])
    t = np.array([0, 1])
    count = net.backend.two_layer_count_correct
    net.params["b1"][:] = -100.0  # every hidden input <= 0: nothing fires
    assert count(net.params, x, t, "relu")[1] is False
    net.params["b1"][1] = np.nan  # NaN is not <= 0: the Relu mask says alive
    net.predict(x)
    assert bool(np.any(~net.layers["Relu1"].mask))
    assert count(net.params, x, t, "relu")[1] is True
    assert count(net.params, x, t, "sigmoid")[1] is True


def test_fused_accuracy_leaves_other_inputs_to_the_layers():
    net, ref_net = _net_pair((6, 4, 3), "float32", "relu")
    rng = np.random.default_rng(3)
    x64 = rng.random((5, 6))  # float64 images for float32 params: promoted
    labels = rng.integers(0, 3, 5)
    fused = net.backend.two_layer_count_correct
    assert fused(net.params, x64, labels, "relu") is None
    assert fused(net.params, x64.astype("float32"), labels + 0.0, "relu") is None
    assert net.accuracy(x64, labels) == ref_net.accuracy(x64, labels)
