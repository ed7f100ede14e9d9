"""A search's results: ``trials.csv``, the best trial, and figure 6-24.

Read from the study (any worker's trials, on any machine), so the results of
a search that several commands ran are written whole by whichever finishes.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from nn.data.fileio import atomic_write
from nn.search.settings import train_command, trial_seed, trial_values

CSV_NAME = "trials.csv"
FIGURE_NAME = "best_trials.png"
#: The book's grid: the best 20 trials, 5 to a row.
GRAPH_DRAW_NUM, COL_NUM = 20, 5


def trial_rows(study) -> list[dict]:
    """One dict per trial, by number: state, score, values, curves, worker, time."""
    rows = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        curve = [t.intermediate_values[k] for k in sorted(t.intermediate_values)]
        seconds = t.user_attrs.get("seconds")
        if seconds is None and t.datetime_start and t.datetime_complete:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds()
        note = t.user_attrs.get("stopped", "")
        if t.user_attrs.get("surplus"):
            note = "not run: --trials already reached"
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "val_acc": t.value,
                "params": dict(t.params),
                "val_curve": curve,
                "train_curve": list(t.user_attrs.get("train_acc", [])),
                "seconds": seconds,
                "worker": t.user_attrs.get("worker", ""),
                "note": note,
            }
        )
    return rows


def write_csv(rows: list[dict], path) -> Path:
    """``trials.csv``: a row per trial; per-epoch accuracies joined by spaces."""
    names = sorted({k for r in rows for k in r["params"]})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["number", "state", "val_acc", *names, "epochs", "seconds", "worker"]
        + ["val_acc_per_epoch", "train_acc_per_epoch", "note"]
    )
    for r in rows:
        w.writerow(
            [r["number"], r["state"], _num(r["val_acc"])]
            + [_num(r["params"].get(n)) for n in names]
            + [max(len(r["val_curve"]) - 1, 0), _num(r["seconds"], 3), r["worker"]]
            + [" ".join(f"{v:.4f}" for v in r[k]) for k in ("val_curve", "train_curve")]
            + [r["note"]]
        )
    path = Path(path)
    with atomic_write(path, "w") as f:
        f.write(buf.getvalue())
    return path


def ranked(rows: list[dict]) -> list[dict]:
    """Complete trials, best final validation accuracy first (ties: earlier first)."""
    done = [r for r in rows if r["state"] == "COMPLETE" and r["val_acc"] is not None]
    return sorted(done, key=lambda r: (-r["val_acc"], r["number"]))


def best_lines(rows: list[dict], settings, top: int = 5) -> list[str]:
    """The book's "Best-1(val acc:...) | lr:..., weight decay:..." lines, and
    the ``xpnet-train`` command of the best trial."""
    best = ranked(rows)
    if not best:
        return ["no trial has completed yet"]
    lines = []
    for i, r in enumerate(best[:top]):
        values = ", ".join(f"{k}:{_num(v)}" for k, v in sorted(r["params"].items()))
        lines.append(f"Best-{i + 1}(val acc:{r['val_acc']:.4f}) | {values}")
    r = best[0]
    command = train_command(
        settings, trial_values(settings, r["params"]), trial_seed(settings, r["number"])
    )
    lines.append(f"train the best trial (#{r['number']}) on the full training set:")
    lines.append(f"  {command}")
    return lines


def plot_best(rows: list[dict], path=None, top: int = GRAPH_DRAW_NUM, dataset=None):
    """Figure 6-24: the best trials' validation (solid) and training (dashed)
    accuracy per epoch, ``COL_NUM`` to a row, as the book draws them.

    -> the matplotlib Figure (also written to ``path`` as PNG), or None when
    no trial has completed. ``dataset``: named in the title.
    """
    from nn.figures import plot

    best = ranked(rows)[:top]
    if not best:
        return None
    rows_n = math.ceil(len(best) / COL_NUM)
    fig, _ = plot.new_figure(1, width=2.4 * COL_NUM, height=2.0 * rows_n)
    fig.clear()
    axes = fig.subplots(rows_n, COL_NUM, squeeze=False).ravel()
    for i, (ax, r) in enumerate(zip(axes, best, strict=False)):
        ax.set_title(f"Best-{i + 1}", fontsize=9)
        ax.set_ylim(0.0, 1.0)
        if i % COL_NUM:
            ax.set_yticks([])
        ax.set_xticks([])
        ax.plot(range(len(r["val_curve"])), r["val_curve"])
        ax.plot(range(len(r["train_curve"])), r["train_curve"], "--")
    for ax in axes[len(best) :]:
        ax.set_axis_off()
    title = "validation (solid) and training (dashed) accuracy per epoch"
    fig.suptitle(f"{dataset}: {title}" if dataset else title)
    if path is not None:
        plot.save_figure(fig, path)
    return fig


def _num(value, digits: int = 6) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)
