"""metrics.csv: complete rows only, exact resume truncation, NaN kept."""

from __future__ import annotations

import math

from nn.training.metrics import COLUMNS, METRICS_NAME, MetricsWriter, read_metrics


def write_run(folder, steps: int = 10):
    with MetricsWriter(folder) as w:
        w.write_eval(0, 0.0, 0.01, 0.1, 0.12)
        w.write_steps(1, [2.0 - 0.1 * i for i in range(steps)], [0.1] * steps, 5)
        w.write_eval(steps, steps / 5, 0.2, 0.8, 0.75)


def test_rows_round_trip(tmp_path):
    write_run(tmp_path)
    text = (tmp_path / METRICS_NAME).read_text().splitlines()
    assert text[0] == ",".join(COLUMNS) and len(text) == 1 + 10 + 2
    m = read_metrics(tmp_path / METRICS_NAME)
    assert m.iteration == list(range(1, 11))
    assert m.loss[0] == 2.0 and abs(m.loss[-1] - 1.1) < 1e-12
    assert m.eval_iteration == [0, 10] and m.test_acc == [0.12, 0.75]
    assert m.eval_epoch == [0.0, 2.0]


def test_an_unfinished_last_line_is_ignored(tmp_path):
    write_run(tmp_path)
    path = tmp_path / METRICS_NAME
    path.write_text(path.read_text() + "11,2.2000,0.3,0.9")  # killed mid-write
    m = read_metrics(path)
    assert m.iteration[-1] == 10 and 11 not in m.eval_iteration


def test_resume_keeps_rows_up_to_the_checkpoint(tmp_path):
    write_run(tmp_path)
    with MetricsWriter(tmp_path, resume_at=4) as w:
        w.write_steps(5, [9.0], [1.0], 5)
    m = read_metrics(tmp_path / METRICS_NAME)
    assert m.iteration == [1, 2, 3, 4, 5] and m.loss[-1] == 9.0
    assert m.eval_iteration == [0]


def test_nan_and_inf_losses_are_written_and_read_back(tmp_path):
    with MetricsWriter(tmp_path) as w:
        w.write_steps(1, [float("nan"), float("inf")], [0.0, 0.0], 1)
    a, b = read_metrics(tmp_path / METRICS_NAME).loss
    assert math.isnan(a) and b == math.inf


def test_new_run_replaces_an_old_file(tmp_path):
    write_run(tmp_path)
    MetricsWriter(tmp_path).close()
    assert (tmp_path / METRICS_NAME).read_text() == ",".join(COLUMNS) + "\n"
