"""Recovering ``metrics.csv`` on resume: keep every valid row, rebuild the rest.

Rows up to the checkpoint's iteration are normally all on disk (each
evaluation row is fsynced before its checkpoint is written). When the file
was damaged instead (bytes overwritten, cut in the middle, a bad header), every
row that still parses and agrees with the checkpoint's history is kept, the
missing ones are rebuilt from that history (the losses and accuracies exactly;
a step's elapsed time is not in a checkpoint and is left empty), the damaged
original is moved aside to ``metrics.csv.damaged`` and one warning line says
what happened, including rows that nothing can bring back.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

#: A number as `MetricsWriter` formats one
#: (``nan``/``inf`` too).
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?(?:e[-+]?\d+)?|nan|inf)"
_ROW = re.compile(
    rf"(?P<it>\d+),(?P<epoch>{_NUMBER}),(?P<elapsed>{_NUMBER})?,"
    rf"(?:(?P<loss>{_NUMBER}),,|,(?P<train>{_NUMBER}),(?P<test>{_NUMBER}))"
)


@dataclass
class Recovery:
    """What `recover_rows` kept, and what it found wrong."""

    rows: list = field(default_factory=list)  # lines, in the file's order
    missing_file: bool = False
    damaged_lines: int = 0
    bad_header: bool = False
    undecodable: bool = False
    mismatched: int = 0
    rebuilt: int = 0
    lost: list = field(default_factory=list)  # step iterations nothing can restore

    @property
    def damaged(self) -> bool:
        return bool(
            self.damaged_lines
            or self.bad_header
            or self.undecodable
            or self.mismatched
            or self.rebuilt
            or self.lost
        )


def recover_rows(path, header, resume_at, history=None, iters_per_epoch=None, fmt=None):
    """The rows of metrics file ``path`` to keep when resuming at ``resume_at``.

    ``history``: the checkpoint's `History` (``loss[i]``
    is step ``i + 1``'s loss); with ``iters_per_epoch`` it checks the rows and
    rebuilds the missing ones. ``fmt``: the writer's ``(step_row, eval_row)``.
    -> `Recovery`.
    """
    path = Path(path)
    out = Recovery(missing_file=not path.exists())
    raw = b"" if out.missing_file else path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        out.undecodable = True
        text = raw.decode("utf-8", errors="replace")
    # A last line without its newline is a write cut short, not damage.
    lines = text[: text.rfind("\n") + 1].split("\n")[:-1]
    if lines and lines[0] == header:
        lines = lines[1:]
    elif lines or raw:
        out.bad_header = True
    steps, evals = {}, {}
    for line in lines:
        m = _ROW.fullmatch(line)
        if m is None:
            out.damaged_lines += 1
            continue
        it = int(m["it"])
        if it > resume_at:
            continue  # after the checkpoint: replayed by the resumed run
        table = steps if m["loss"] is not None else evals
        if it in table:
            out.damaged_lines += 1  # a second row for one iteration: keep the first
            continue
        table[it] = (line + "\n", m)
    if history is not None and iters_per_epoch:
        _check_and_rebuild(out, steps, evals, history, iters_per_epoch, fmt)
    out.lost = [it for it in range(1, resume_at + 1) if it not in steps]
    order = sorted({*steps, *evals})
    # In the file a step's row comes before the evaluation after that step.
    out.rows = [table[it][0] for it in order for table in (steps, evals) if it in table]
    return out


def _check_and_rebuild(out, steps, evals, history, iters_per_epoch, fmt):
    step_row, eval_row = fmt
    for i, loss in enumerate(history.loss):
        it = i + 1
        line = step_row(it, it / iters_per_epoch, None, loss)
        if it in steps and steps[it][1]["loss"] == _field(line, 3):
            continue
        out.mismatched += it in steps
        out.rebuilt += 1
        steps[it] = (line, None)
    # strict=False: a tampered checkpoint's lists may differ in length; the
    # rows they do describe are still worth checking.
    values = zip(
        history.train_acc, history.test_acc, history.eval_elapsed, strict=False
    )
    known = dict(zip(history.eval_iteration, values, strict=False))
    if not known:
        return  # a checkpoint without a history: nothing to check evaluations by
    for it in [it for it in evals if it not in known]:
        out.mismatched += 1
        del evals[it]
    for it, (train, test, elapsed) in known.items():
        line = eval_row(it, it / iters_per_epoch, elapsed, train, test)
        if it in evals and evals[it][0] == line:
            continue
        out.mismatched += it in evals
        out.rebuilt += 1
        evals[it] = (line, None)


def _field(line: str, index: int) -> str:
    return line.rstrip("\n").split(",")[index]


def set_aside(path: Path) -> Path | None:
    """Keep the damaged file under a new name (never overwriting). -> that name.

    None when there is no file to keep.
    """
    if not path.exists():
        return None
    for n in range(1, 1000):
        aside = path.with_name(path.name + (".damaged" if n == 1 else f".damaged{n}"))
        try:
            os.link(path, aside)  # atomic, and fails rather than overwrite
            return aside
        except FileExistsError:
            continue
        except OSError:  # no hard links here (some file systems)
            if not aside.exists():
                shutil.copy2(path, aside)
                return aside
    raise FileExistsError(f"too many damaged copies of {path} already kept")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def describe(rec: Recovery, path: Path, aside: Path, resume_at: int) -> str:
    """The one-line warning about a damaged (``aside``) or missing (None) file."""
    what = []
    if rec.undecodable:
        what.append("bytes that are not UTF-8")
    if rec.bad_header:
        what.append("no header line")
    if rec.damaged_lines:
        what.append(_n(rec.damaged_lines, "unreadable line"))
    if rec.mismatched:
        what.append(_n(rec.mismatched, "row") + " disagreeing with the checkpoint")
    missing = rec.rebuilt - rec.mismatched
    if missing > 0:
        what.append(_n(missing, "row") + " missing")
    state = (
        "was missing"
        if aside is None
        else f"was damaged ({', '.join(what) or 'rows missing'})"
    )
    line = (
        f"{path} {state}; resuming at "
        f"iteration {resume_at} with {_n(len(rec.rows), 'row')}: "
        f"{len(rec.rows) - rec.rebuilt} kept as they were, {rec.rebuilt} rebuilt "
        "from the checkpoint (losses and accuracies exact; a rebuilt step row has "
        "no elapsed time)"
    )
    if rec.lost:
        line += (
            f"; {_n(len(rec.lost), 'step row')} up to iteration {resume_at} "
            "cannot be recovered (the checkpoint holds no loss history for them)"
        )
    return line + (f"; the damaged file is kept as {aside.name}" if aside else "")
