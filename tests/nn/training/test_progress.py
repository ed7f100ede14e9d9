"""The progress bar shows the latest loss and evaluation, the final ones at 100%."""

from __future__ import annotations

import io

import numpy as np

import nn.training.progress as progress
from nn.training.config import TrainConfig
from nn.training.progress import ConsoleReporter
from nn.training.trainer import Trainer


class FakeBar:
    """Records what tqdm would show: its count and every postfix set."""

    bars: list = []

    def __init__(self, total, initial, **kwargs):
        self.total, self.n, self.postfixes, self.refreshed = total, initial, [], []
        FakeBar.bars.append(self)

    def update(self, k):
        self.n += k

    def set_postfix_str(self, text, refresh=True):
        self.postfixes.append(text)
        self.refreshed.append(refresh)

    def write(self, text, file=None):
        print(text, file=file)

    def close(self):
        self.closed_at = (self.n, self.postfixes[-1])


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(n) % 3
    centers = np.random.default_rng(9).normal(0, 2, (3, 6))
    return (centers[t] + rng.normal(0, 1, (n, 6))).astype(np.float32), t


def test_bar_at_100_percent_shows_the_final_values(monkeypatch):
    FakeBar.bars = []
    monkeypatch.setattr(progress, "_tqdm_class", lambda: FakeBar)
    trainer = Trainer(
        blobs(300, 1),
        blobs(90, 2),
        TrainConfig(iters=25, batch_size=30, hidden_size=8, seed=1, eval_every=10),
        reporter=ConsoleReporter(stream=io.StringIO(), bar=True),
    )
    trainer.fit()
    (bar,) = FakeBar.bars
    h = trainer.history
    assert h.eval_iteration == [0, 10, 20, 25]
    final = (
        f"loss {h.loss[-1]:.4f}  train {h.train_acc[-1]:.4f}  test {h.test_acc[-1]:.4f}"
    )
    # Before the fix the bar still showed iteration 20's accuracies at 25/25.
    assert bar.closed_at == (25, final)
    assert bar.refreshed[-1] is True  # drawn, not left for the next update
