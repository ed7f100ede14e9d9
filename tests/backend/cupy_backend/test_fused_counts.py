"""The fused CuPy paths' launches, copies and synchronisations, counted by the
stand-in (tests/cupy_standin), against the issue's targets at chapter 5's
sizes (784-50-10, batch 100), and their results against the NumPy backend.

What the stand-in counts as a launch: every kernel, every cuBLAS product and
every array operation that writes device memory (a gather, a copy, a cast);
``empty`` and views are free. The targets: a training step at most 10
launches, no synchronisation and no host-to-device copy in steady state; an
evaluation at most 3 launches per chunk and one device-to-host copy; the
numerical gradient at most 20 launches.
"""

from __future__ import annotations

import cupy_standin as cp
import numpy as np
import pytest
from cupy_standin.install import installed

import backend as B
from nn.optimizer import SGD
from nn.training.config import TrainConfig
from nn.training.trainer import Trainer
from nn.two_layer_net import TwoLayerNet

SIZES = (784, 50, 10)
BATCH = 100


@pytest.fixture(scope="module")
def gpu():
    """The CuPy backend on the stand-in, registered as the shim's ``cupy``
    backend (the layers look their backend up by array type)."""
    with installed() as be:
        yield be


def _pixels(n, seed=0):
    """MNIST-like uint8 images (80 % zeros) and labels."""
    rng = np.random.default_rng(seed)
    images = rng.integers(1, 256, (n, SIZES[0]), dtype=np.uint8)
    images[rng.random(images.shape) < 0.8] = 0
    return images, rng.integers(0, SIZES[2], n)


def _nets(gpu, dtype="float32", activation="relu"):
    kw = dict(activation=activation, dtype=dtype, rng=3)
    return TwoLayerNet(*SIZES, backend=gpu, **kw), TwoLayerNet(
        *SIZES, backend="numpy", **kw
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_step_counts_and_agrees_with_numpy(gpu, dtype):
    net, ref = _nets(gpu, dtype)
    images, labels = _pixels(1000)
    d_images, d_labels = gpu.asarray(images), gpu.asarray(labels)
    rng = np.random.default_rng(1)
    block = gpu.asarray(rng.integers(1000, size=(4, BATCH)))  # one upload
    optimizer = SGD(0.1)
    tol = {"float32": 2e-5, "float64": 1e-10}[dtype]
    for step in range(4):
        with cp.counting() as c:
            idx = block[step]
            x = gpu.scaled_rows(d_images, idx, 255, dtype)
            loss = net.train_step(x, d_labels[idx], optimizer)
        # gather, label take, x @ W1, row kernel, W1 update, update kernel
        assert c.snapshot() == {"launches": 6, "h2d": 0, "d2h": 0, "syncs": 0}
        host = B.to_numpy(idx)
        x_ref = (images[host] / np.float32(255)).astype(dtype)
        ref_loss = ref.train_step(x_ref, labels[host], optimizer)
        np.testing.assert_allclose(B.to_numpy(loss), ref_loss, rtol=tol)
    for key in ref.params:
        np.testing.assert_allclose(
            B.to_numpy(net.params[key]), ref.params[key], rtol=tol, atol=tol
        )


def test_float16_and_other_optimizers_take_the_layers(gpu):
    """The unfused path stays: float16 params (no fused kernel) and an
    optimizer other than plain SGD both step layer by layer, like NumPy."""

    class Momentumless(SGD):
        pass

    images, labels = _pixels(BATCH)
    for dtype, optimizer in (("float16", SGD(0.1)), ("float32", Momentumless(0.1))):
        net, ref = _nets(gpu, dtype, "sigmoid")
        x = (images / np.float32(255)).astype(dtype)
        with cp.counting() as c:
            loss = net.train_step(gpu.asarray(x), gpu.asarray(labels), optimizer)
        assert c.launches > 10  # the layers: many small launches
        ref_loss = ref.train_step(x, labels, optimizer)
        rtol = 2e-3 if dtype == "float16" else 2e-5
        np.testing.assert_allclose(float(loss), float(ref_loss), rtol=rtol)
        for key in ref.params:
            np.testing.assert_allclose(
                B.to_numpy(net.params[key]).astype(np.float64),
                ref.params[key].astype(np.float64),
                rtol=rtol,
                atol=rtol,
            )


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_fused_evaluation_counts_and_agrees_with_numpy(gpu, activation):
    net, ref = _nets(gpu, "float32", activation)
    images, labels = _pixels(3000, seed=2)
    x = (images / np.float32(255)).astype(np.float32)
    d_x, d_t = gpu.asarray(x), gpu.asarray(labels)
    with cp.counting() as c:
        got = net.count_correct(d_x, d_t)
    # zeroed counters, then x @ W1 and one kernel for the one chunk
    assert c.snapshot() == {"launches": 3, "h2d": 0, "d2h": 1, "syncs": 1}
    assert got == ref.count_correct(x, labels)
    with cp.counting() as c:  # chunks of 1024 rows: 3 chunks
        assert gpu.fused_two_layer.count_correct(
            net.params, d_x, d_t, activation, chunk=1024
        ) == ref.count_correct(x, labels)
    assert c.launches == 1 + 2 * 3 and c.d2h == 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_numerical_gradient_counts_and_agrees_with_numpy(gpu, dtype):
    net, ref = _nets(gpu, dtype, "relu")
    images, labels = _pixels(BATCH, seed=4)
    x = (images / np.float32(255)).astype(dtype)
    d_x, d_t = gpu.asarray(x), gpu.asarray(labels)
    with cp.counting() as c:
        got = net.numerical_gradient(d_x, d_t)
    assert c.launches <= 20 and c.h2d == 0 and c.d2h == 1
    want = ref.numerical_gradient(x, labels, method="fast")
    for key in want:
        assert got[key].dtype == np.dtype(dtype)
        atol = 1e-10 if dtype == "float64" else 1e-7
        np.testing.assert_allclose(B.to_numpy(got[key]), want[key], rtol=0, atol=atol)


def test_trainer_steps_copy_nothing_between_index_uploads(gpu):
    """Chapter 5's step through the Trainer: uint8 pixels and labels on the
    device, the indices uploaded once an epoch (10 steps here), and the same
    batches, hence the same losses, as the NumPy backend's trainer."""
    train, test = _pixels(1000), _pixels(200, seed=9)
    config = TrainConfig(iters=30, dtype="float32", seed=11)
    trainers = [
        Trainer(train, test, config, backend=be, pixel_scale=255)
        for be in (gpu, "numpy")
    ]
    counts, losses = [], []
    for _ in range(20):
        with cp.counting() as c:
            loss = trainers[0].step()
        counts.append(c.snapshot())
        losses.append((float(loss), float(trainers[1].step())))
    uploads = [1 if i % 10 == 0 else 0 for i in range(20)]
    assert [c["h2d"] for c in counts] == uploads
    assert {(c["launches"], c["d2h"], c["syncs"]) for c in counts} == {(6, 0, 0)}
    got, want = np.array(losses).T
    np.testing.assert_allclose(got, want, rtol=1e-4)
    # The generator itself is where the CPU's is: checkpoints stay exact.
    assert trainers[0].rng.bit_generator.state == trainers[1].rng.bit_generator.state
