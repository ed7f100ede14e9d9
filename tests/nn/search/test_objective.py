"""One trial in-process: the validation split, pruning through the trainer, scoring."""

import signal

import numpy as np
import pytest

from nn.search.objective import Objective, TrialReporter, split_data
from nn.search.settings import SearchSettings

optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.realdata


def _settings(shared_data, **kw):
    base = dict(
        space="lr=1e-3:1e-1:log",
        storage="sqlite://",
        dataset="fashion-mnist",
        data_dir=str(shared_data / "fashion-mnist"),
        train_size=200,
        epochs=3,
        batch_size=40,
        hidden_sizes=(20, 20),
        device="numpy",
    )
    return SearchSettings(**{**base, **kw})


def test_split_is_carved_from_the_training_images(shared_data):
    from nn.training.data import load_data

    s = _settings(shared_data)
    (x_train, t_train), (x_test, _) = load_data(s.dataset, data_dir=s.data_dir)
    (xt, tt), (xv, tv) = split_data(s)
    assert (len(xt), len(xv)) == (160, 40)  # the book: 20% of the images validate
    first = x_train[:200]
    # every row is one of the first 200 training images, each used once
    rows = {r.tobytes(): i for i, r in enumerate(first)}
    used = [rows[r.tobytes()] for r in np.concatenate([xt, xv])]
    assert sorted(used) == list(range(200))
    assert np.array_equal(np.concatenate([tt, tv]), t_train[:200][used])
    test_rows = {r.tobytes() for r in x_test[:2000]}
    assert not any(r.tobytes() in test_rows for r in xv)
    (xt2, _), (xv2, _) = split_data(s)  # the same split for every trial and worker
    assert np.array_equal(xv, xv2) and np.array_equal(xt, xt2)


def test_score_is_the_final_validation_accuracy_reported_each_epoch(shared_data):
    s = _settings(shared_data)
    study = optuna.create_study(direction="maximize")
    study.optimize(Objective(s, worker="t/0", backend="numpy"), n_trials=2)
    for t in study.trials:
        assert t.state.name == "COMPLETE"
        assert sorted(t.intermediate_values) == [0, 1, 2, 3]
        assert t.value == t.intermediate_values[3]
        assert len(t.user_attrs["train_acc"]) == 4 and t.user_attrs["worker"] == "t/0"
        # accuracies of 40 validation images are multiples of 1/40
        assert all(
            abs(v * 40 - round(v * 40)) < 1e-9 for v in t.intermediate_values.values()
        )


class _Trial:
    """An Optuna trial stand-in that asks to prune from epoch ``at`` on."""

    def __init__(self, at):
        self.at, self.reports = at, []

    def report(self, value, step):
        self.reports.append(step)

    def should_prune(self):
        return self.reports[-1] >= self.at


def test_pruning_unwinds_the_trainer_cleanly(shared_data):
    from nn.training.config import TrainConfig
    from nn.training.trainer import Trainer

    s = _settings(shared_data)
    train, val = split_data(s)
    handler = signal.getsignal(signal.SIGINT)
    reporter = TrialReporter(_Trial(at=2), prune=True)
    config = TrainConfig(hidden_sizes=(20, 20), epochs=5, batch_size=40, seed=1)
    trainer = Trainer(train, val, config, backend="numpy", reporter=reporter)
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 2"):
        trainer.fit()
    assert reporter.trial.reports == [0, 1, 2]  # stopped right after epoch 2
    assert trainer.iteration == 2 * trainer.iters_per_epoch
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl-C handler restored
    # never prunes without --prune
    quiet = TrialReporter(_Trial(at=0), prune=False)
    Trainer(train, val, config, backend="numpy", reporter=quiet).fit()
    assert quiet.trial.reports == [0, 1, 2, 3, 4, 5]
