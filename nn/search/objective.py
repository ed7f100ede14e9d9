"""One trial: train a network with sampled values, score it on the validation set.

The validation set is carved from the training images, never the test set
(the book's section 6.5): the first ``train_size`` training images, shuffled
once with the search's seed, the first ``validation`` fraction of them held out.
Every trial of a study sees the same split.
"""

from __future__ import annotations

import os
import socket
import time
import warnings

from nn.search.settings import SearchSettings, trial_seed, trial_values
from nn.training.health import NotLearningWarning


class SearchInterrupted(Exception):
    """Ctrl-C stopped a trial between two steps (the trial is recorded failed)."""


def split_data(settings: SearchSettings, data=None):
    """-> ((x_train, t_train), (x_val, t_val)): the search's training split.

    x: (N, 784) float32 host arrays, t: (N,) labels. ``data``: the loaded
    ``((x_train, t_train), (x_test, t_test))``, else loaded from the settings.
    """
    import backend as B
    from nn.training.data import load_data

    if data is None:
        data = load_data(settings.dataset, data_dir=settings.data_dir)
    (x, t), _test = data  # the test set plays no part in a search
    if settings.train_size > len(x):
        raise ValueError(
            f"--train-size {settings.train_size} exceeds the {len(x)} training "
            f"images of {settings.dataset}; give at most {len(x)}"
        )
    x, t = x[: settings.train_size], t[: settings.train_size]
    order = B.default_rng(settings.seed).permutation(len(x))
    x, t = x[order], t[order]
    n_val = int(len(x) * settings.validation)
    if n_val < 1 or n_val >= len(x):
        raise ValueError(
            f"--validation {settings.validation} of {len(x)} images leaves "
            f"{n_val} to validate and {len(x) - n_val} to train; raise --train-size"
        )
    return (x[n_val:], t[n_val:]), (x[:n_val], t[:n_val])


class TrialReporter:
    """A trainer reporter that feeds each epoch's validation accuracy to Optuna.

    The trainer's "test" set is the validation split, so ``record.test_acc``
    is the validation accuracy. Raising ``optuna.TrialPruned`` here unwinds
    ``Trainer.fit`` through its ``finally`` (metrics closed, Ctrl-C handler
    restored), the same path as any other stop.
    """

    def __init__(self, trial, prune: bool):
        self.trial = trial
        self.prune = prune
        self.val_acc: list[float] = []
        self.train_acc: list[float] = []

    def start(self, total, done):
        pass

    def progress(self, iteration, loss):
        pass

    def message(self, text):
        pass

    def finish(self):
        pass

    def evaluation(self, record) -> None:
        import optuna

        self.val_acc.append(float(record.test_acc))
        self.train_acc.append(float(record.train_acc))
        step = len(self.val_acc) - 1  # epoch 0 is the untrained network
        self.trial.report(float(record.test_acc), step)
        if self.prune and step > 0 and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {step}")


class Objective:
    """The function Optuna calls once per trial -> final validation accuracy."""

    def __init__(self, settings: SearchSettings, worker: str, backend=None, split=None):
        self.settings = settings
        self.worker = worker
        self.train, self.val = split if split is not None else split_data(settings)
        self.backend = backend
        self.dims = settings.dimensions()

    def __call__(self, trial) -> float:
        from nn.training.config import TrainConfig
        from nn.training.trainer import Trainer

        params = {d.name: d.suggest(trial) for d in self.dims}
        values = trial_values(self.settings, params)
        seed = trial_seed(self.settings, trial.number)
        trial.set_user_attr("worker", self.worker)
        trial.set_user_attr("host_pid", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("seed", seed)
        config = TrainConfig(**_config_kwargs(self.settings, values, seed))
        reporter = TrialReporter(trial, prune=self.settings.prune is not None)
        trainer = Trainer(
            self.train,
            self.val,
            config,
            backend=self.backend,
            dataset=self.settings.dataset,
            reporter=reporter,
        )
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # A trial whose values do not learn is a result of the search,
                # recorded in trials.csv, not a warning for each one.
                warnings.simplefilter("ignore", NotLearningWarning)
                result = trainer.fit()
        except Exception as exc:
            if _is_stop(exc):  # a bad value is a result: score what it reached
                trial.set_user_attr("stopped", str(exc))
                return reporter.val_acc[-1] if reporter.val_acc else 0.0
            raise
        finally:
            trial.set_user_attr("train_acc", reporter.train_acc)
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
        if result.interrupted:
            trial.set_user_attr("stopped", "Ctrl-C")
            raise SearchInterrupted(f"trial {trial.number} stopped by Ctrl-C")
        return reporter.val_acc[-1]


def _is_stop(exc: Exception) -> bool:
    """Whether ``exc`` is the trainer stopping a run that is not learning."""
    import nn.training

    diverged = nn.training.TrainingDiverged
    stops = (diverged, getattr(nn.training, "TrainingNotLearning", diverged))
    return isinstance(exc, stops)


def _config_kwargs(settings: SearchSettings, values: dict, seed: int) -> dict:
    kwargs = {
        "hidden_sizes": tuple(values["hidden_sizes"]),
        "optimizer": values["optimizer"],
        "weight_decay": values["weight_decay"],
        "weight_init_std": values["weight_init"],
        "dropout": values["dropout"],
        "batchnorm": values["batchnorm"],
        "batch_size": values["batch_size"],
        "epochs": settings.epochs,
        "dtype": settings.dtype,
        "seed": seed,
        "allow_not_learning": True,
    }
    if values["lr"] is not None:
        kwargs["lr"] = values["lr"]
    return kwargs
