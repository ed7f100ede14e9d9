"""Chapter 6's training step on the GPU (the CuPy stand-in): no copy, no wait."""

from __future__ import annotations

import cupy_standin as cp
import numpy as np
import pytest
from cupy_standin.install import installed

import backend as B
from nn import MultiLayerNetExtend
from nn.optimizers import OPTIMIZERS


@pytest.fixture
def gpu():
    previous = B.current()
    with installed() as be:
        B.use(be)
        yield be
    B.use(previous)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_a_chapter6_step_never_copies_or_waits(gpu, optimizer):
    rng = np.random.default_rng(0)
    net = MultiLayerNetExtend(
        20,
        [8, 8],
        4,
        weight_decay_lambda=0.01,
        use_dropout=True,
        use_batchnorm=True,
        backend=gpu,
        dtype="float32",
        rng=0,
    )
    x = gpu.asarray(rng.random((16, 20)), dtype="float32")
    t = gpu.asarray(rng.integers(0, 4, 16))
    opt = OPTIMIZERS[optimizer]()
    net.train_step(x, t, opt)  # compiles the kernels, creates the state
    with cp.counting() as c:
        loss = net.train_step(x, t, opt)
    assert (c.h2d, c.d2h, c.syncs) == (0, 0, 0)
    assert np.isfinite(float(loss))
    if optimizer != "sgd":  # one launch per parameter array (3 W, 3 b, 2 gamma, 2 beta)
        assert gpu.fused_updates.launches >= 2 * 10
