"""The CuPy backend on a real GPU: kernels, transfers, a gradient check, training.

Every result is compared on the host with the NumPy backend. Run with
``XPNET_REQUIRE_GPU=1 pytest -m gpu`` (or ``python bench/gpu_report.py``) on a
machine with an NVIDIA GPU; elsewhere they run on the CuPy stand-in.
"""

from __future__ import annotations

import numpy as np
import pytest

import backend as B
from nn.layers import Affine
from nn.optimizer import SGD
from nn.two_layer_net import TwoLayerNet

pytestmark = pytest.mark.gpu

# float32 kernels run with -ftz=true (CuPy's default): denormals become 0.
TOL = {"float32": dict(rtol=2e-6, atol=1e-7), "float64": dict(rtol=1e-13, atol=1e-16)}


def _host(a):
    return np.asarray(B.to_numpy(a))


def _is_device(a) -> bool:
    return type(a).__module__.split(".")[0] == "cupy"


def _scores(kind, shape, dtype, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    if kind == "huge":
        x = x * 1000 + np.sign(x) * 800
    return x.astype(dtype)


def test_detection_describes_the_device(cuda_backend):
    text = cuda_backend.describe()
    assert text.startswith("cupy (CuPy ") and "sm_" in text


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["normal", "huge"])
@pytest.mark.parametrize("shape", [(10,), (100, 10), (5000, 10), (3, 7, 33)])
def test_softmax_kernel_matches_numpy(cuda_backend, dtype, kind, shape):
    be = cuda_backend
    x = _scores(kind, shape, dtype)
    before = be.fused.launches
    y = be.softmax(be.asarray(x))
    assert be.fused.launches == before + 1 and _is_device(y)
    expected = B.get_backend("numpy").softmax(x)
    np.testing.assert_allclose(_host(y), expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("targets", ["labels", "one-hot"])
@pytest.mark.parametrize("dout", [1.0, "device"])
def test_loss_kernels_match_numpy(cuda_backend, dtype, targets, dout):
    be, ref = cuda_backend, B.get_backend("numpy")
    x = _scores("normal", (1000, 10), dtype, seed=1)
    labels = np.random.default_rng(2).integers(0, 10, 1000)
    t = labels if targets == "labels" else np.eye(10, dtype=dtype)[labels]
    loss, y = be.softmax_cross_entropy(be.asarray(x), be.asarray(t))
    ref_loss, ref_y = ref.softmax_cross_entropy(x, t)
    assert _is_device(loss) and loss.ndim == 0
    np.testing.assert_allclose(_host(y), ref_y, **TOL[dtype])
    np.testing.assert_allclose(_host(loss), ref_loss, rtol=10 * TOL[dtype]["rtol"])
    d = be.asarray(np.asarray(0.5, dtype)) if dout == "device" else dout
    dx = be.softmax_cross_entropy_backward(y, be.asarray(t), d)
    ref_d = np.asarray(0.5, dtype) if dout == "device" else dout
    expected = ref.softmax_cross_entropy_backward(ref_y, t, ref_d)
    np.testing.assert_allclose(_host(dx), expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batched_loss_kernel_matches_numpy(cuda_backend, dtype):
    be, ref = cuda_backend, B.get_backend("numpy")
    x = _scores("normal", (64, 100, 10), dtype, seed=11)
    t = np.random.default_rng(12).integers(0, 10, 100)
    losses, _ = be.softmax_cross_entropy_batched(be.asarray(x), be.asarray(t))
    expected = [float(ref.softmax_cross_entropy(x[p], t)[0]) for p in range(64)]
    np.testing.assert_allclose(_host(losses), expected, rtol=10 * TOL[dtype]["rtol"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_through_cublas_matches_numpy(cuda_backend, dtype):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((100, 784)).astype(dtype)
    b = rng.standard_normal((784, 50)).astype(dtype)
    c = B.matmul(cuda_backend.asarray(a), cuda_backend.asarray(b))
    assert _is_device(c)
    rtol = 1e-4 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(_host(c), a @ b, rtol=rtol, atol=rtol)


def test_mixing_numpy_and_cupy_is_a_clear_type_error(cuda_backend):
    d = cuda_backend.asarray(np.ones((2, 2)))
    h = np.ones((2, 2))
    with pytest.raises(TypeError, match="numpy"):
        B.matmul(h, d)
    with pytest.raises(TypeError, match=r"numpy\.ndarray.*cupy\.ndarray"):
        cuda_backend.matmul(h, d)
    with pytest.raises(TypeError, match="numpy"):
        Affine(d, cuda_backend.asarray(np.zeros(2))).forward(h)


def test_transfers_and_synchronize(cuda_backend):
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    dev = cuda_backend.asarray(host)
    assert _is_device(dev)
    cuda_backend.synchronize()
    B.synchronize(dev)
    back = cuda_backend.asnumpy(dev * 2)
    assert type(back) is np.ndarray
    np.testing.assert_array_equal(back, host * 2)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_gradient_check_on_gpu(on_gpu, activation):
    rng = np.random.default_rng(4)
    x, t = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
    nets = {
        name: TwoLayerNet(6, 5, 3, 0.5, activation, backend=name, rng=5)
        for name in ("numpy", "cupy")
    }
    be = nets["cupy"].backend
    xd, td = be.asarray(x), be.asarray(t)
    numerical = nets["cupy"].numerical_gradient(xd, td, "loop")
    backprop = nets["cupy"].gradient(xd, td)
    ref_numerical = nets["numpy"].numerical_gradient(x, t, "loop")
    ref_backprop = nets["numpy"].gradient(x, t)
    for key in backprop:
        assert _is_device(numerical[key]) and _is_device(backprop[key])
        # h = 1e-4 leaves about 2.5e-7 of truncation error on this network.
        np.testing.assert_allclose(
            _host(numerical[key]), _host(backprop[key]), atol=1e-6
        )
        np.testing.assert_allclose(_host(numerical[key]), ref_numerical[key], atol=1e-9)
        np.testing.assert_allclose(_host(backprop[key]), ref_backprop[key], atol=1e-12)


def _blobs(n=600, d=20, classes=3, seed=6):
    rng = np.random.default_rng(seed)
    centres = 3 * rng.standard_normal((classes, d))
    t = rng.integers(0, classes, n)
    return centres[t] + rng.standard_normal((n, d)), t


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_short_training_run_matches_numpy(cuda_backend, dtype):
    """300 SGD steps, data on the device once, losses read once at the end."""
    x, t = _blobs()
    runs = {}
    for be in (B.get_backend("numpy"), cuda_backend):
        net = TwoLayerNet(20, 50, 3, backend=be, dtype=dtype, rng=7)
        params = dict(net.params)
        xd, td = be.asarray(x, dtype=dtype), be.asarray(t)
        batches = np.random.default_rng(8)
        optimizer, losses = SGD(lr=0.1), []
        for _ in range(300):
            idx = be.asarray(batches.integers(0, len(x), 50))
            losses.append(net.train_step(xd[idx], td[idx], optimizer))
        # The parameters were updated in place and never left the device.
        assert all(net.params[k] is params[k] for k in params)
        assert all(type(p).__module__ == type(xd).__module__ for p in params.values())
        runs[be.name] = (_host(be.xp.stack(losses)), net.accuracy(xd, td))
    gpu_losses, gpu_accuracy = runs["cupy"]
    cpu_losses, cpu_accuracy = runs["numpy"]
    assert gpu_losses[-20:].mean() < 0.5 * gpu_losses[:20].mean()
    assert gpu_accuracy > 0.9
    rtol = 1e-3 if dtype == "float32" else 1e-9
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=rtol)
    assert abs(gpu_accuracy - cpu_accuracy) <= 0.01


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("targets", ["labels", "one-hot"])
def test_fast_numerical_gradient_on_gpu_matches_the_loop(on_gpu, activation, targets):
    """Issue #7's batched kernel on CuPy: same numbers as the book's loop."""
    if getattr(on_gpu, "two_layer_numerical_gradient", None) is None:
        pytest.skip("the cupy backend has no fast numerical gradient wired in")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((6, 12)) * (rng.random((6, 12)) < 0.5)  # zero pixels
    labels = rng.integers(0, 4, 6)
    t = labels if targets == "labels" else np.eye(4)[labels]
    net = TwoLayerNet(12, 5, 4, 0.5, activation, backend=on_gpu, rng=10)
    xd, td = on_gpu.asarray(x), on_gpu.asarray(t)
    fast = net.numerical_gradient(xd, td, "fast")
    loop = net.numerical_gradient(xd, td, "loop")
    for key in loop:
        assert _is_device(fast[key])
        np.testing.assert_allclose(_host(fast[key]), _host(loop[key]), atol=1e-8)
