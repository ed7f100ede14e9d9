"""How often one training step launches, copies and waits on the GPU.

Counted on the CuPy stand-in, one launch per CuPy-level operation (CuPy may
split one into several kernels). The numbers are exact so that a change in
them is a decision. Issue 19's fused kernels took the step from 25 launches
to 4 (two cuBLAS products, two kernels) and the trainer's step from 28, with
a host-to-device copy of its indices every step, to 7 and one copy an epoch.
"""

from __future__ import annotations

import cupy_standin as cp
import numpy as np
import pytest
from cupy_standin.install import installed

import backend as B
from nn.optimizer import SGD
from nn.training.progress import SilentReporter
from nn.training.trainer import TrainConfig, Trainer
from nn.two_layer_net import TwoLayerNet

#: TwoLayerNet.train_step with SGD at batch 100 (784-50-10, ReLU): x @ W1,
#: the row kernel, W1 -= lr * x.T @ da1 (one product), the update kernel.
STEP_LAUNCHES = 4
#: One Trainer step: the step, plus the fused uint8 gather, the label gather
#: and the loss written into the loop's buffer.
TRAINER_STEP_LAUNCHES = 7


@pytest.fixture
def gpu():
    previous = B.current()
    with installed() as be:
        B.use(be)
        yield be
    B.use(previous)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_training_step_never_copies_or_waits(gpu, dtype):
    rng = np.random.default_rng(0)
    net = TwoLayerNet(784, 50, 10, backend=gpu, dtype=dtype, rng=0)
    x = gpu.asarray(rng.random((100, 784)), dtype=dtype)
    t = gpu.asarray(rng.integers(0, 10, 100))
    opt = SGD(lr=0.1)
    net.train_step(x, t, opt)  # compiles the kernels
    with cp.counting() as c:
        loss = net.train_step(x, t, opt)
    assert (c.h2d, c.d2h, c.syncs) == (0, 0, 0)
    assert c.launches == STEP_LAUNCHES
    with cp.counting() as c:
        assert np.isfinite(float(loss))
    assert c.snapshot() == {"launches": 0, "h2d": 0, "d2h": 1, "syncs": 1}


def _fit(be, iters, eval_every):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (500, 784), dtype=np.uint8), rng.integers(0, 10, 500)
    test = rng.integers(0, 256, (100, 784), dtype=np.uint8), rng.integers(0, 10, 100)
    config = TrainConfig(
        iters=iters, batch_size=100, hidden_size=50, lr=0.1, dtype="float32",
        seed=0, eval_every=eval_every, allow_not_learning=True,  # random labels
    )  # fmt: skip
    trainer = Trainer(
        train, test, config, backend=be, reporter=SilentReporter(), pixel_scale=255
    )
    with cp.counting() as c:
        trainer.fit()
    return c.snapshot()


@pytest.mark.filterwarnings("ignore::nn.training.health.NotLearningWarning")
@pytest.mark.parametrize("graphs", ["0", "1"])
def test_a_trainer_step_copies_its_batch_indices_only(gpu, monkeypatch, graphs):
    """Two runs with the same evaluations and 20 steps apart: per step, no
    device-to-host copy or wait, and one host-to-device copy per epoch of 5
    steps (the next epoch's row indices, drawn on the host); each evaluation
    waits a few times. (The losses also come to the host every
    ``FLUSH_SECONDS``: not timed here.) Eager (``XPNET_CUDA_GRAPHS=0``): the
    step's 7 launches; with CUDA graphs: one replay per epoch of 5 steps."""
    from nn.training import loop

    monkeypatch.setattr(loop, "FLUSH_SECONDS", 1e9)
    monkeypatch.setenv("XPNET_CUDA_GRAPHS", graphs)
    gpu.graphs_failed = None
    short, long = _fit(gpu, 20, 20), _fit(gpu, 40, 40)
    per_step = {k: (long[k] - short[k]) / 20 for k in long}
    assert per_step == {
        "launches": TRAINER_STEP_LAUNCHES if graphs == "0" else 1 / 5,
        "h2d": 1 / 5,
        "d2h": 0,
        "syncs": 0,
    }
    more_evals = _fit(gpu, 40, 20)  # one evaluation more than `long`
    extra = {k: more_evals[k] - long[k] for k in long}
    # A handful (6 or 7 here): the counts and the "some unit fired" flag of
    # the train and test sets, and the losses since the last evaluation.
    assert extra["h2d"] == 0 and extra["syncs"] == extra["d2h"] <= 8
    assert gpu.graphs_failed is None
