"""Networks, layers and the trainer compute on the backend they were built on
and keep it: the process default neither steers them nor is changed by them."""

from __future__ import annotations

import numpy as np
import pytest

import backend as B
from nn import Affine, SoftmaxWithLoss, TwoLayerNet
from nn.training import TrainConfig, Trainer
from nn.training.progress import SilentReporter


class Recording(B.Backend):
    """The NumPy backend under another name, recording the kernels it runs."""

    name = "recording"

    def __init__(self):
        self.calls = []

    def matmul(self, a, b):
        self.calls.append("matmul")
        return super().matmul(a, b)

    def softmax_cross_entropy(self, x, t):
        self.calls.append("softmax_cross_entropy")
        return super().softmax_cross_entropy(x, t)

    def softmax_cross_entropy_backward(self, y, t, dout=1.0):
        self.calls.append("softmax_cross_entropy_backward")
        return super().softmax_cross_entropy_backward(y, t, dout)

    def numerical_gradient(self, f, x):
        self.calls.append("numerical_gradient")
        return super().numerical_gradient(f, x)


@pytest.fixture
def default_numpy():
    previous = B.current()
    B.use("numpy")
    yield B.current()
    B.use(previous)


def _batch(seed=0, n=5, d=6, c=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, c, n)


def test_a_network_uses_its_own_backend_not_the_default(default_numpy):
    rec = Recording()
    net = TwoLayerNet(6, 4, 3, backend=rec, rng=0)
    ref = TwoLayerNet(6, 4, 3, backend="numpy", rng=0)
    x, t = _batch()
    assert float(net.loss(x, t)) == float(ref.loss(x, t))
    net.gradient(x, t)
    assert {"matmul", "softmax_cross_entropy", "softmax_cross_entropy_backward"} <= set(
        rec.calls
    )
    assert B.current() is default_numpy


def test_the_loop_numerical_gradient_runs_on_the_networks_backend(default_numpy):
    rec = Recording()
    net = TwoLayerNet(6, 2, 3, backend=rec, rng=0)
    x, t = _batch(n=2)
    grads = net.numerical_gradient(x, t, method="loop")
    want = TwoLayerNet(6, 2, 3, backend="numpy", rng=0).numerical_gradient(
        x, t, method="loop"
    )
    assert rec.calls.count("numerical_gradient") == 4
    for k in want:
        np.testing.assert_array_equal(grads[k], want[k])


def test_two_networks_on_two_backends_in_one_process(default_numpy):
    first, second = Recording(), Recording()
    a = TwoLayerNet(6, 4, 3, backend=first, rng=1)
    b = TwoLayerNet(6, 4, 3, backend=second, rng=1)
    x, t = _batch()
    a.loss(x, t)
    assert first.calls and not second.calls
    b.loss(x, t)
    assert len(second.calls) == len(first.calls)


def test_layers_given_a_backend_keep_it(default_numpy):
    rec = Recording()
    W, b = np.ones((6, 3)), np.zeros(3)
    x, t = _batch()
    Affine(W, b, backend=rec).forward(x)
    SoftmaxWithLoss(backend=rec).forward(x[:, :3], t)
    assert rec.calls == ["matmul", "softmax_cross_entropy"]
    # Without one, a layer follows its arrays (and the default for host arrays).
    rec.calls.clear()
    Affine(W, b).forward(x)
    assert rec.calls == []


def test_fit_leaves_the_process_default_alone(default_numpy):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    t = rng.integers(0, 3, 40).astype(np.uint8)
    rec = Recording()
    trainer = Trainer(
        (x, t),
        (x[:10], t[:10]),
        TrainConfig(iters=3, batch_size=8, hidden_size=4, seed=0),
        backend=rec,
        reporter=SilentReporter(),
    )
    trainer.fit(handle_sigint=False)
    assert B.current() is default_numpy
    assert "matmul" in rec.calls
