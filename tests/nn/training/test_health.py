"""The rule that stops a run that is not learning (nn/training/health.py).

The rule on hand-made histories, then on real trainers: small synthetic
data here, and the CLI on Fashion-MNIST (the runs a reader tries: ``--lr 10``
with seed 2, unseeded, and with the sigmoid net; chapter 4's slow sigmoid
runs must never be stopped).
"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from test_cli import assert_one_line_error, train

import nn
import nn.training
from nn.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
from nn.training.config import TrainConfig
from nn.training.health import (
    CHANCE_MARGIN,
    LOSS_FLOOR,
    NotLearningWarning,
    TrainingDiverged,
    TrainingNotLearning,
    stuck_since,
)
from nn.training.metrics import METRICS_NAME, read_metrics
from nn.training.progress import SilentReporter
from nn.training.record import History
from nn.training.trainer import Trainer

EPOCH = 600


def fake(evals, total=10_000, classes=10, losses=None):
    """A trainer-shaped object whose history has ``evals`` = [(iteration, acc)]."""
    last = evals[-1][0]
    h = History(
        loss=list(losses) if losses is not None else [0.5] * last,
        eval_iteration=[i for i, _ in evals],
        train_acc=[a for _, a in evals],
    )
    return SimpleNamespace(
        history=h, classes=classes, iters_per_epoch=EPOCH, iteration=last, total=total
    )


def test_exceptions_and_setting_are_exported_as_promised():
    assert issubclass(TrainingDiverged, TrainingNotLearning)
    assert issubclass(TrainingNotLearning, RuntimeError)
    for module in (nn, nn.training):
        assert module.TrainingNotLearning is TrainingNotLearning
        assert module.TrainingDiverged is TrainingDiverged
    assert TrainConfig().allow_not_learning is False
    with pytest.raises(ValueError, match="allow_not_learning"):
        TrainConfig(allow_not_learning="yes")


def test_loss_floor_is_the_books_log_delta():
    assert LOSS_FLOOR == pytest.approx(-math.log(1e-7))
    assert LOSS_FLOOR == pytest.approx(16.118, abs=1e-3)


@pytest.mark.parametrize(
    ("evals", "stops_from"),
    [
        # Two evaluations in a row at chance after the first epoch: stop.
        ([(0, 0.1), (600, 0.1), (1200, 0.1)], 600),
        # At chance at epoch 1 only (chapter 4's sigmoid at lr 0.001): go on.
        ([(0, 0.1), (600, 0.1), (1200, 0.2062)], None),
        ([(0, 0.1), (600, 0.1)], None),
        # The first epoch is exempt, even at chance twice.
        ([(0, 0.1), (300, 0.1), (600, 0.5)], None),
        # Just above the margin is learning; at the margin is chance.
        ([(0, 0.1), (600, 0.1 + CHANCE_MARGIN + 1e-3), (1200, 0.1)], None),
        ([(0, 0.1), (600, 0.1 + CHANCE_MARGIN), (1200, 0.1 + CHANCE_MARGIN)], 600),
        # Evaluations every 100 steps: stuck for a whole epoch, not just twice.
        ([(0, 0.1), (600, 0.1), (700, 0.1)], None),
        ([(0, 0.1)] + [(i, 0.1) for i in range(600, 1201, 100)], 600),
        ([(0, 0.1), (600, 0.5)] + [(i, 0.1) for i in range(700, 1301, 100)], 700),
    ],
)
def test_chance_rule(evals, stops_from):
    found = stuck_since(fake(evals))
    assert (found[0] if found else None) == stops_from
    if found:
        assert "at chance for 10 classes" in found[1]


def test_last_evaluation_at_chance_stops_alone_from_two_epochs_on():
    assert stuck_since(fake([(0, 0.1), (1200, 0.1)], total=1200))[0] == 1200
    assert stuck_since(fake([(0, 0.1), (3000, 0.1)], total=3000))[0] == 3000
    # ... but not earlier, where a slow run may still be warming up (chapter
    # 4's sigmoid net at lr 0.001 is at 0.10 after one epoch, 0.21 after two).
    assert stuck_since(fake([(0, 0.1), (600, 0.1)], total=600)) is None
    assert stuck_since(fake([(0, 0.1), (300, 0.1)], total=300)) is None


def test_chance_depends_on_the_number_of_classes():
    evals = [(0, 0.5), (600, 0.51), (1200, 0.51)]
    assert stuck_since(fake(evals, classes=2)) is not None
    assert stuck_since(fake(evals, classes=10)) is None


def test_a_loss_pinned_near_its_maximum_stops_despite_accuracy():
    evals = [(0, 0.1), (600, 0.5), (1200, 0.5)]
    pinned = [0.55 * LOSS_FLOOR] * 1200
    found = stuck_since(fake(evals, losses=pinned))
    assert found is not None and found[0] == 600
    assert "pinned near the largest possible, 16.1" in found[1]
    # Half the floor is the line: a high but learning loss goes on.
    assert stuck_since(fake(evals, losses=[0.45 * LOSS_FLOOR] * 1200)) is None
    # The pinned loss must last: one bad epoch then a normal one goes on.
    mixed = [0.55 * LOSS_FLOOR] * 600 + [1.0] * 600
    assert stuck_since(fake(evals, losses=mixed)) is None


# -- real trainers on small synthetic data -----------------------------------


def balanced_noise(n: int, seed: int):
    """(x (n, 8) float32, t (n,)): four exactly balanced classes of pure noise."""
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (n, 8)).astype(np.float32), np.arange(n) % 4


def frozen_trainer(out_dir=None, **config):
    """A sigmoid net with a learning rate too small to move it: stuck at 1/4."""
    config = {"iters": 60, "lr": 1e-9, "seed": 3, "activation": "sigmoid", **config}
    return Trainer(
        balanced_noise(600, 1),
        balanced_noise(200, 2),
        TrainConfig(hidden_size=8, **config),
        out_dir=out_dir,
        reporter=SilentReporter(),
    )


def test_stuck_run_stops_with_cause_remedy_and_last_checkpoint(tmp_path):
    tr = frozen_trainer(tmp_path)  # 6 steps an epoch: evaluations at 0, 6, 12
    with pytest.raises(TrainingNotLearning) as exc:
        tr.fit()
    assert type(exc.value) is TrainingNotLearning
    msg = str(exc.value)
    assert len(msg.splitlines()) == 1
    assert "not learning: train accuracy 0.2500 is at chance for 4 classes" in msg
    assert "from iteration 6 to 12" in msg
    assert "--lr" in msg and "--allow-not-learning" in msg
    assert f"{tmp_path / CHECKPOINT_NAME} (iteration 6)" in msg
    assert load_checkpoint(tmp_path).iteration == 6  # the stuck one is not kept
    m = read_metrics(tmp_path / METRICS_NAME)
    assert m.eval_iteration == [0, 6, 12] and len(m.loss) == 12
    assert (tmp_path / "loss.png").exists() or not _has_matplotlib()


def _has_matplotlib() -> bool:
    from nn.figures import plot

    return plot.available()


def test_allow_not_learning_warns_once_and_finishes(tmp_path):
    tr = frozen_trainer(tmp_path, allow_not_learning=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = tr.fit()
    assert result.iterations == 60 and not result.interrupted
    ours = [w for w in caught if issubclass(w.category, NotLearningWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    assert "at chance" in str(ours[0].message)
    assert load_checkpoint(tmp_path).iteration == 60


def test_dead_relus_warn_when_allowed(tmp_path):
    tr = Trainer(
        balanced_noise(600, 1),
        balanced_noise(200, 2),
        TrainConfig(iters=20, seed=3, hidden_size=8, allow_not_learning=True),
        reporter=SilentReporter(),
    )
    tr.net.params["b1"][...] = -1e3  # no hidden unit can fire on any sample
    with pytest.warns(NotLearningWarning, match="every hidden ReLU unit is dead"):
        assert tr.fit().iterations == 20


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_always_stops_even_when_allowed(tmp_path):
    tr = Trainer(
        balanced_noise(600, 1),
        balanced_noise(200, 2),
        TrainConfig(iters=200, lr=1e30, seed=3, eval_every=1, allow_not_learning=True),
        reporter=SilentReporter(),
        out_dir=tmp_path,
    )
    with pytest.raises(TrainingDiverged, match="training diverged: the loss is nan"):
        tr.fit()
    ckpt = load_checkpoint(tmp_path)
    assert all(np.isfinite(v).all() for v in ckpt.params.values())


# -- the CLI on Fashion-MNIST -------------------------------------------------


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ("--lr", "10", "--seed", "2"),
        ("--lr", "10"),  # unseeded: at chance or all ReLUs dead, never silent
        ("--activation", "sigmoid", "--lr", "10", "--seed", "0"),
    ],
    ids=["lr10-seed2", "lr10-unseeded", "sigmoid-lr10"],
)
def test_issue_runs_stop_with_exit_1(cli_env, fashion, tmp_path, args):
    out = tmp_path / "run"
    # Stops by iteration 1200 (epoch 2); --iters leaves room to see it stop.
    proc = train(*args, "--iters", 1800, "--out", out, env=cli_env, data=fashion)
    err = assert_one_line_error(proc, 1, "--lr", "last good checkpoint")
    assert "training stopped: the network is not learning" in err or (
        "every hidden ReLU unit is dead" in err
    )
    ckpt = load_checkpoint(out)
    assert ckpt.iteration < 1800 and f"(iteration {ckpt.iteration})" in err
    m = read_metrics(out / METRICS_NAME)
    assert m.eval_iteration[-1] > ckpt.iteration  # the stopping evaluation is kept
    if args[-1] == "2":
        assert "from iteration 600 to 1200" in err and m.eval_iteration[-1] == 1200


@pytest.mark.realdata
@pytest.mark.slow
def test_allow_not_learning_flag_finishes_with_one_warning(cli_env, fashion, tmp_path):
    args = ("--activation", "sigmoid", "--lr", "10", "--seed", "0", "--iters", "1300")
    proc = train(*args, "--allow-not-learning", "--out", tmp_path / "r",
                 env=cli_env, data=fashion)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stdout.splitlines() if "warning:" in line]
    assert len(warned) == 1 and warned[0].startswith("train.py: warning: ")
    assert "not learning" in warned[0]
    assert proc.stdout.splitlines()[-1].startswith("final train acc 0.1")


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize(
    ("lr", "seed"),
    [("0.1", "0"), ("0.01", "0"), ("0.001", "0")],
)
def test_chapter4_sigmoid_runs_are_never_stopped(cli_env, fashion, tmp_path, lr, seed):
    """lr 0.001 sits at exactly 0.1000 after epoch 1 and 0.21 after epoch 2
    (measured, seed 0): slow, not stuck."""
    out = tmp_path / "run"
    proc = train("--activation", "sigmoid", "--lr", lr, "--seed", seed,
                 "--iters", 1800, "--quiet", "--out", out,
                 env=cli_env, data=fashion)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    m = read_metrics(out / METRICS_NAME)
    assert m.eval_iteration == [0, 600, 1200, 1800]
    assert m.train_acc[-1] > 0.1 + CHANCE_MARGIN
