"""A trainer's evaluation: accuracies on the whole train and test sets.

Run at every ``eval_every`` iterations (the book: once an epoch). Records the
result in the trainer's history and ``metrics.csv``, reports it, stops a run
that is not learning (see `nn.training.health`), and writes the checkpoint.
"""

from __future__ import annotations

import time

from nn.training.health import TrainingDiverged, check_learning, not_learning
from nn.training.record import EvalRecord


def accuracy_alive(trainer, x, t) -> tuple[float, bool]:
    """x: (N, D), t: (N,) labels, on the trainer's backend.

    -> (fraction of rows predicted right, whether some hidden ReLU unit fired
    on some row of x).
    """
    correct, fired = trainer.net.count_correct(x, t)
    return correct / len(x), fired


def evaluate(trainer, metrics) -> None:
    """Evaluate ``trainer`` now; ``metrics``: its MetricsWriter or None."""
    t0 = time.perf_counter()
    train_acc, alive = accuracy_alive(trainer, trainer.x_train, trainer.t_train)
    record = EvalRecord(
        iteration=trainer.iteration,
        epoch=trainer.iteration / trainer.iters_per_epoch,
        train_acc=train_acc,
        test_acc=accuracy_alive(trainer, trainer.x_test, trainer.t_test)[0],
        elapsed=time.perf_counter() - trainer._clock0,
    )
    h = trainer.history
    h.eval_iteration.append(record.iteration)
    h.train_acc.append(record.train_acc)
    h.test_acc.append(record.test_acc)
    h.eval_elapsed.append(record.elapsed)
    trainer.elapsed = record.elapsed
    if metrics is not None:
        metrics.write_eval(
            record.iteration,
            record.epoch,
            record.elapsed,
            record.train_acc,
            record.test_acc,
        )
    trainer.reporter.evaluation(record)
    if not alive:
        # Every ReLU outputs 0 on every training sample, so no gradient
        # reaches W1, b1 or W2 again: the net is stuck predicting one class.
        not_learning(
            trainer,
            f"every hidden ReLU unit is dead at iteration {trainer.iteration} "
            f"(outputs 0 on all {trainer.train_size} training samples), so the "
            "network predicts one class and cannot recover",
            TrainingDiverged,
        )
    else:
        check_learning(trainer)  # chance accuracy or a pinned loss
    trainer._save_checkpoint()
    trainer._overhead += time.perf_counter() - t0
