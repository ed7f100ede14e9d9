"""CUDA graphs of the trainer's steps on a real GPU (else on the stand-in).

On a GPU this is where the graph path meets real CUDA, cuBLAS and CuPy: the
capture must succeed (no warning; ``graphs_failed`` stays None), and chapter
5's steps replayed from graphs must give the eager steps' bits. Run with
``XPNET_REQUIRE_GPU=1 pytest -m gpu``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

import backend as B
from nn.training import loop
from nn.training.config import TrainConfig
from nn.training.health import NotLearningWarning
from nn.training.progress import SilentReporter
from nn.training.trainer import Trainer

pytestmark = pytest.mark.gpu


def _pixels(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(1, 256, (n, 784), dtype=np.uint8)
    images[rng.random(images.shape) < 0.8] = 0
    return images, rng.integers(0, 10, n)


def _fit(be, graphs, monkeypatch, iters, train_size):
    monkeypatch.setenv("XPNET_CUDA_GRAPHS", graphs)
    config = TrainConfig(iters=iters, batch_size=100, hidden_size=50, lr=0.1,
                         dtype="float32", seed=7, eval_every=250,
                         allow_not_learning=True)  # fmt: skip
    trainer = Trainer(_pixels(train_size, 0), _pixels(1000, 1), config, backend=be,
                      reporter=SilentReporter(), pixel_scale=255)  # fmt: skip
    start = time.perf_counter()
    trainer.fit()
    be.synchronize()
    seconds = time.perf_counter() - start
    params = {k: B.to_numpy(v) for k, v in trainer.net.params.items()}
    return params, list(trainer.history.loss), seconds


def test_graph_steps_equal_eager_steps_bit_for_bit(cuda_backend, monkeypatch, capsys):
    be = cuda_backend
    real = not getattr(be.xp, "STANDIN", False)
    iters, train_size = (1000, 60000) if real else (30, 1000)
    monkeypatch.setattr(loop, "FLUSH_SECONDS", 1e9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed capture warns: fail here
        # Random labels: not learning is expected, and only warns.
        warnings.simplefilter("ignore", NotLearningWarning)
        graph = _fit(be, "1", monkeypatch, iters, train_size)
    assert be.graphs_failed is None
    eager = _fit(be, "0", monkeypatch, iters, train_size)
    assert graph[1] == eager[1] and len(graph[1]) == iters
    for key, value in eager[0].items():
        assert np.array_equal(graph[0][key], value), key
    if real:
        with capsys.disabled():
            print(
                f"\n[gpu] {iters} trainer steps (first run captures): graphs "
                f"{graph[2]:.3f} s, eager {eager[2]:.3f} s"
            )
