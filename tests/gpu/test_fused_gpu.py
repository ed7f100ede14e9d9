"""The fused two-layer kernels on a real GPU (real CUDA math, real cuBLAS).

The same checks as tests/backend/cupy_backend/test_fused_kernels.py (which runs the
kernels on the stand-in, host-compiled), at chapter 5's sizes, plus a timing of
the step printed for the GPU report; without a GPU they run on the stand-in.
Run with ``XPNET_REQUIRE_GPU=1 pytest -m gpu``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import backend as B
from nn.optimizer import SGD
from nn.two_layer_net import TwoLayerNet

pytestmark = pytest.mark.gpu

SIZES = (784, 50, 10)
# cuBLAS may sum in another order (and use FMA): a little looser than the
# stand-in tests' tolerances.
TOL = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-9, atol=1e-12)}


def _pixels(n, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(1, 256, (n, SIZES[0]), dtype=np.uint8)
    images[rng.random(images.shape) < 0.8] = 0
    return images, rng.integers(0, SIZES[2], n)


def _nets(be, dtype, activation):
    kw = dict(activation=activation, dtype=dtype, rng=3, weight_init_std=0.1)
    return TwoLayerNet(*SIZES, backend=be, **kw), TwoLayerNet(
        *SIZES, backend="numpy", **kw
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("onehot", [False, True])
def test_fused_step_matches_numpy(on_gpu, dtype, activation, onehot):
    be = on_gpu
    net, ref = _nets(be, dtype, activation)
    images, labels = _pixels(100)
    x = (images / np.float32(255)).astype(dtype)
    t = np.eye(10, dtype=dtype)[labels] if onehot else labels
    optimizer = SGD(0.1)
    for _ in range(3):
        loss = net.train_step(be.asarray(x), be.asarray(t), optimizer)
        ref_loss = ref.train_step(x, t, optimizer)
        np.testing.assert_allclose(float(loss), float(ref_loss), **TOL[dtype])
    for key in ref.params:
        np.testing.assert_allclose(
            B.to_numpy(net.params[key]), ref.params[key], err_msg=key, **TOL[dtype]
        )


def test_gather_matches_scaled_rows_bit_for_bit(cuda_backend):
    be = cuda_backend
    images, _ = _pixels(500)
    rows = np.random.default_rng(1).integers(500, size=100)
    got = be.scaled_rows(be.asarray(images), be.asarray(rows), 255, "float32")
    want = B.get_backend("numpy").scaled_rows(images, rows, 255, "float32")
    np.testing.assert_array_equal(B.to_numpy(got), want)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_fused_evaluation_matches_numpy(on_gpu, activation):
    be = on_gpu
    net, ref = _nets(be, "float32", activation)
    images, labels = _pixels(20000, seed=2)
    x = (images / np.float32(255)).astype(np.float32)
    got = net.count_correct(be.asarray(x), be.asarray(labels))
    want = ref.count_correct(x, labels)
    # float32 near-ties may break differently (another summation order).
    assert abs(got[0] - want[0]) <= 2 and got[1] == want[1]


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_cuda_numerical_gradient_matches_the_loop(on_gpu, activation):
    be = on_gpu
    sizes = (20, 6, 4)
    kw = dict(activation=activation, rng=5, weight_init_std=0.5)
    net, ref = (TwoLayerNet(*sizes, backend=b, **kw) for b in (be, "numpy"))
    rng = np.random.default_rng(6)
    x = rng.random((8, sizes[0]))
    x[rng.random(x.shape) < 0.5] = 0
    t = rng.integers(0, sizes[2], 8)
    got = net.numerical_gradient(be.asarray(x), be.asarray(t))
    loop = ref.numerical_gradient(x, t, method="loop")
    for key in loop:
        np.testing.assert_allclose(B.to_numpy(got[key]), loop[key], rtol=0, atol=1e-8)


def test_fused_step_time_is_reported(on_gpu, capsys):
    """Not a target: prints the step time at chapter 5's sizes for the report.

    On the stand-in (no GPU) it runs a few steps only, and prints nothing.
    """
    be = on_gpu
    real = not getattr(be.xp, "STANDIN", False)
    warm, steps = (50, 1000) if real else (1, 3)
    net, _ = _nets(be, "float32", "relu")
    images, labels = _pixels(60000 if real else 1000)
    d_images, d_labels = be.asarray(images), be.asarray(labels)
    rows = np.random.default_rng(0).integers(len(images), size=(warm + steps, 100))
    block = be.asarray(rows)
    optimizer = SGD(0.1)

    def step(i):
        idx = block[i]
        x = be.scaled_rows(d_images, idx, 255, "float32")
        return net.train_step(x, d_labels[idx], optimizer)

    for i in range(warm):  # compile and warm up
        step(i)
    be.synchronize()
    start = time.perf_counter()
    for i in range(warm, warm + steps):
        loss = step(i)
    be.synchronize()
    per_step = (time.perf_counter() - start) / steps
    assert np.isfinite(float(loss))
    if real:
        with capsys.disabled():
            print(
                "\nfused CuPy step, 784-50-10 batch 100 float32: "
                f"{per_step * 1e6:.1f} us"
            )
        assert per_step < 1.0
