"""Whether a run is learning: the one rule that stops a run that is not.

A run stops (or, with ``TrainConfig.allow_not_learning``, warns once and goes
on) when it shows one of these causes:

- **not finite**: a NaN or infinite loss or weight. This always stops, even
  with ``allow_not_learning``: no later step can give a number again.
  Checked whenever losses reach the host (about once a second) and before
  every checkpoint.
- **dead ReLUs**: every hidden ReLU unit outputs 0 on every training sample at
  an evaluation, so no gradient reaches the weights again (checked by the
  network's own count, in `nn.training.evaluation.evaluate`).
- **no better than chance**, judged at evaluations from the end of the first
  epoch on: an evaluation counts as *stuck* when its train accuracy is at most
  ``1/C + CHANCE_MARGIN`` (``C`` classes: 0.12 for ten) or when the mean
  training loss of the steps since the previous evaluation is at least
  ``LOSS_FLOOR_FRACTION`` of the loss's floor ``-log(1e-7)`` (about 16.1, the
  largest loss the book's ``1e-7`` inside the log allows; half of it is a net
  confidently wrong on most samples). The run stops at a stuck evaluation
  when every evaluation since one at least an epoch earlier, itself at or
  after the first epoch's end, was stuck too: with one evaluation an epoch
  (the default), two in a row, at epochs 1 and 2. The run's last evaluation
  is judged alone (it has no next one) when it is two epochs in or later.

The first epoch is exempt because a slow but healthy run may still sit at
chance there (chapter 4's sigmoid net at lr 0.001 is at 0.10 after one epoch
of Fashion-MNIST, and 0.21 after two).
"""

from __future__ import annotations

import math
import warnings

import backend as B

__all__ = [
    "CHANCE_MARGIN",
    "LOSS_FLOOR",
    "LOSS_FLOOR_FRACTION",
    "NotLearningWarning",
    "TrainingDiverged",
    "TrainingNotLearning",
    "check_learning",
    "diverged",
    "not_learning",
    "stuck_since",
]

#: Train accuracy up to ``1/C`` plus this counts as chance.
CHANCE_MARGIN = 0.02
#: The largest loss one sample can have: ``-log(CE_DELTA)``, about 16.12.
LOSS_FLOOR = -math.log(B.CE_DELTA)
#: A mean loss of at least this fraction of ``LOSS_FLOOR`` counts as pinned.
LOSS_FLOOR_FRACTION = 0.5


class TrainingNotLearning(RuntimeError):
    """The run stopped because it is not learning (see [`nn.training.health`][])."""


class TrainingDiverged(TrainingNotLearning):
    """The loss or the weights became NaN or infinite, or every ReLU died."""


class NotLearningWarning(RuntimeWarning):
    """A run that is not learning, allowed to go on by ``allow_not_learning``."""


def _stuck(trainer, k: int) -> str | None:
    """Why evaluation ``k`` of the trainer's history is stuck, or None."""
    h = trainer.history
    limit = 1.0 / trainer.classes + CHANCE_MARGIN
    if h.train_acc[k] <= limit:
        return (
            f"train accuracy {h.train_acc[k]:.4f} is at chance for "
            f"{trainer.classes} classes (at most {limit:.2f})"
        )
    if k > 0:
        losses = h.loss[h.eval_iteration[k - 1] : h.eval_iteration[k]]
        if losses and sum(losses) / len(losses) >= LOSS_FLOOR_FRACTION * LOSS_FLOOR:
            return (
                f"the mean loss {sum(losses) / len(losses):.2f} is pinned near the "
                f"largest possible, {LOSS_FLOOR:.1f}"
            )
    return None


def stuck_since(trainer) -> tuple[int, str] | None:
    """(first iteration, reason) when the rule above stops the run now, else None.

    Reads the trainer's ``history`` (``eval_iteration``, ``train_acc``, one
    ``loss`` per iteration), ``classes``, ``iters_per_epoch``, ``iteration``
    and ``total``.
    """
    h, epoch = trainer.history, trainer.iters_per_epoch
    k = len(h.eval_iteration) - 1
    if k < 0 or h.eval_iteration[k] < epoch:
        return None
    reason = _stuck(trainer, k)
    if reason is None:
        return None
    j = k
    while j > 0 and h.eval_iteration[j - 1] >= epoch and _stuck(trainer, j - 1):
        j -= 1
    spans_epoch = h.eval_iteration[k] - h.eval_iteration[j] >= epoch
    last_late = h.eval_iteration[k] >= max(trainer.total, 2 * epoch)
    if spans_epoch or last_late:
        return h.eval_iteration[j], reason
    return None


def _remedy(lr: float) -> str:
    if lr > 0.1:  # above the book's SGD rate
        return f"the learning rate {lr} is probably too large: try a smaller --lr"
    return (
        f"try another --lr than {lr} (smaller if the loss jumps about, larger "
        "if it barely moves)"
    )


def not_learning(trainer, what: str, cls=TrainingNotLearning) -> None:
    """Stop the run for cause ``what``: raise ``cls`` with one line naming the
    remedy and the last good checkpoint. With ``trainer.config.allow_not_learning``
    warn instead (a [`NotLearningWarning`][nn.training.health.NotLearningWarning],
    once per run and kind) and return."""
    if getattr(trainer.config, "allow_not_learning", False):
        warned = vars(trainer).setdefault("_not_learning_warned", set())
        if cls not in warned:
            warned.add(cls)
            warnings.warn(
                f"{what} (allow_not_learning is set: the run goes on)",
                NotLearningWarning,
                stacklevel=2,
            )
        return
    raise cls(_message(trainer, what, cls, allowable=True))


def diverged(trainer, what: str) -> None:
    """Raise [`TrainingDiverged`][nn.training.health.TrainingDiverged] for a NaN
    or infinite loss or weight ``what``, whatever ``allow_not_learning`` says."""
    raise TrainingDiverged(_message(trainer, what, TrainingDiverged, False))


def _message(trainer, what: str, cls, allowable: bool) -> str:
    where = (
        f"the last good checkpoint is {trainer._checkpoint_path()} "
        f"(iteration {trainer.checkpoint_iteration})"
        if trainer.checkpoint_iteration is not None
        else "no checkpoint was written"
    )
    head = "training diverged" if cls is TrainingDiverged else "training stopped"
    remedy = _remedy(trainer.config.lr)
    if allowable:
        remedy += ", or let it run: --allow-not-learning"
    return f"{head}: {what} ({remedy}); stopped, {where}"


def check_learning(trainer) -> None:
    """After an evaluation: stop (or warn) if the rule above says so."""
    found = stuck_since(trainer)
    if found is not None:
        first, reason = found
        at = (
            f"at iteration {trainer.iteration}"
            if first == trainer.iteration
            else f"from iteration {first} to {trainer.iteration}"
        )
        not_learning(trainer, f"the network is not learning: {reason} {at}")
