"""The record of a training run: evaluations, loss history, final result, plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class EvalRecord:
    """One evaluation: accuracies on the whole train and test sets."""

    iteration: int
    epoch: float
    train_acc: float
    test_acc: float
    elapsed: float


@dataclass
class History:
    """Host-side record of a run: ``loss[i]`` is the loss of step ``i + 1``."""

    loss: list = field(default_factory=list)
    eval_iteration: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    eval_elapsed: list = field(default_factory=list)

    def save_plots(self, out_dir, iters_per_epoch: int) -> list[Path]:
        """Write ``loss.png`` (figure 4-11) and ``accuracy.png`` (figure 4-12).

        Returns the files written; none when matplotlib is not installed.
        """
        from nn.figures import plot

        if not plot.available():
            return []
        out_dir = Path(out_dir)
        loss_png, acc_png = out_dir / "loss.png", out_dir / "accuracy.png"
        plot.plot_loss(range(1, len(self.loss) + 1), self.loss, path=loss_png)
        epochs = [i / iters_per_epoch for i in self.eval_iteration]
        plot.plot_accuracy(epochs, self.train_acc, self.test_acc, path=acc_png)
        return [loss_png, acc_png]


@dataclass
class TrainResult:
    """How a call of `Trainer.fit` ended."""

    iterations: int
    train_acc: float
    test_acc: float
    elapsed: float
    seconds_per_iter: float
    first_step_seconds: float
    interrupted: bool
    checkpoint: Path | None
    history: History

    def summary(self) -> str:
        """One line: final accuracies, total time, time per iteration."""
        line = (
            f"final train acc {self.train_acc:.4f}, test acc {self.test_acc:.4f} | "
            f"{self.iterations} iterations, {self.elapsed:.1f} s total"
        )
        if self.seconds_per_iter > 0:  # 0: this call ran no step
            line += f", {self.seconds_per_iter * 1e3:.3f} ms/iteration"
        if self.first_step_seconds > max(0.5, 20 * self.seconds_per_iter):
            line += f" (first step {self.first_step_seconds:.1f} s: warm-up/JIT)"
        return line
