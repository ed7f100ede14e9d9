"""``metrics.csv``: the training log, one row per iteration and per evaluation.

Columns: ``iteration, epoch, elapsed_s, loss, train_acc, test_acc``. A step
row has ``loss`` and empty accuracies; an evaluation row has the accuracies
and an empty ``loss``. Each batch of rows is appended with a single
``os.write`` on an ``O_APPEND`` descriptor, so a killed process leaves at most
one incomplete last line, which `read_metrics` ignores. A resume keeps
the rows up to its checkpoint; a file damaged otherwise is recovered as far as
possible (see `nn.training.metrics_recovery`). A step row rebuilt that way has an
empty ``elapsed_s`` (read back as None).
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nn.data.fileio import atomic_write
from nn.training.metrics_recovery import describe, recover_rows, set_aside

COLUMNS = ("iteration", "epoch", "elapsed_s", "loss", "train_acc", "test_acc")
METRICS_NAME = "metrics.csv"


@dataclass
class Metrics:
    """Columns of a metrics file as Python lists (steps and evaluations apart)."""

    iteration: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    elapsed: list = field(default_factory=list)
    eval_iteration: list = field(default_factory=list)
    eval_epoch: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    eval_elapsed: list = field(default_factory=list)


def _fmt(value, spec: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # "nan" / "inf" / "-inf", which float() reads back
    return format(value, spec)


def _float(text: str) -> float | None:
    return float(text) if text != "" else None


def _complete_lines(path: Path) -> list[str]:
    """The file's lines with their newline, minus an unterminated last one."""
    # A damaged file must not stop a resume: undecodable rows are dropped later.
    text = path.read_text(encoding="utf-8", errors="replace")
    return text[: text.rfind("\n") + 1].splitlines(keepends=True)


def read_metrics(path: str | os.PathLike, upto: int | None = None) -> Metrics:
    """Parse a metrics file; rows after iteration ``upto`` are dropped.

    A last line without its newline (the process was killed while writing)
    is ignored rather than trusted.
    """
    text = "".join(_complete_lines(Path(path)))
    out = Metrics()
    for row in csv.DictReader(io.StringIO(text)):
        try:
            it = int(row["iteration"])
            loss, train = _float(row["loss"]), _float(row["train_acc"])
            elapsed = _float(row["elapsed_s"])
        except (KeyError, TypeError, ValueError):
            continue
        if upto is not None and it > upto:
            continue
        if loss is not None:
            out.iteration.append(it)
            out.loss.append(loss)
            out.elapsed.append(elapsed)
        elif train is not None:
            out.eval_iteration.append(it)
            out.eval_epoch.append(float(row["epoch"]))
            out.train_acc.append(train)
            out.test_acc.append(float(row["test_acc"]))
            out.eval_elapsed.append(elapsed)
    return out


def _print_warning(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


class MetricsWriter:
    """Appends rows to ``metrics.csv`` in ``directory``.

    ``resume_at``: keep the rows of an existing file up to this iteration
    (what the checkpoint being resumed has seen) and drop the rest; ``None``
    starts a new file. ``history`` (the checkpoint's
    `History`) and ``iters_per_epoch`` let a damaged
    file be checked and its missing rows rebuilt; ``warn`` receives the one
    line describing such a repair (default: printed to stderr).
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        resume_at: int | None = None,
        *,
        history=None,
        iters_per_epoch: int | None = None,
        warn=None,
    ):
        self.path = Path(directory) / METRICS_NAME
        kept = []
        # A missing file is rebuilt too, when a history can tell its rows.
        if resume_at is not None and (self.path.is_file() or history is not None):
            header = ",".join(COLUMNS)
            fmt = (self._step_row, self._eval_row)
            rec = recover_rows(
                self.path, header, resume_at, history, iters_per_epoch, fmt
            )
            kept = rec.rows
            if rec.damaged:
                aside = set_aside(self.path)
                (warn or _print_warning)(describe(rec, self.path, aside, resume_at))
        with atomic_write(self.path, "w") as f:
            f.write(",".join(COLUMNS) + "\n" + "".join(kept))
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    @staticmethod
    def _step_row(iteration, epoch, elapsed, loss) -> str:
        return (
            f"{iteration},{_fmt(epoch, '.4f')},{_fmt(elapsed, '.4f')},"
            f"{_fmt(loss, '.7g')},,\n"
        )

    @staticmethod
    def _eval_row(iteration, epoch, elapsed, train_acc, test_acc) -> str:
        return (
            f"{iteration},{_fmt(epoch, '.4f')},{_fmt(elapsed, '.4f')},,"
            f"{_fmt(train_acc, '.6f')},{_fmt(test_acc, '.6f')}\n"
        )

    def write_steps(self, first_iteration, losses, elapsed, iters_per_epoch) -> None:
        """Append one row per loss; iterations count from ``first_iteration``."""
        rows = [
            self._step_row(it, it / iters_per_epoch, t, loss)
            for it, loss, t in zip(
                range(first_iteration, first_iteration + len(losses)),
                losses,
                elapsed,
                strict=True,
            )
        ]
        self._append("".join(rows))

    def write_eval(self, iteration, epoch, elapsed, train_acc, test_acc) -> None:
        """Append an evaluation row and make the file durable."""
        self._append(self._eval_row(iteration, epoch, elapsed, train_acc, test_acc))
        os.fsync(self._fd)

    def _append(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(self._fd, data) :]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
