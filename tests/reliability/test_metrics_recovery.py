"""``MetricsWriter`` resuming over a damaged metrics.csv: what is kept and said.

The end-to-end cases (a real run, damaged, resumed through train.py) are in
test_kill_resume.py; these check the repair itself on a hand-made file.
"""

from __future__ import annotations

from nn.training.metrics import METRICS_NAME, MetricsWriter, read_metrics
from nn.training.record import History

IPE = 5  # iterations per epoch


def write_run(folder, steps: int = 10) -> History:
    """A 10-step run evaluated at 0, 5 and 10. -> the history a checkpoint holds."""
    h = History(
        loss=[round(2.0 - 0.1 * i, 6) for i in range(steps)],
        eval_iteration=[0, 5, 10],
        train_acc=[0.1, 0.5, 0.8],
        test_acc=[0.12, 0.45, 0.75],
        eval_elapsed=[0.01, 0.6, 1.1],
    )
    with MetricsWriter(folder) as w:
        for k, it in enumerate(h.eval_iteration):
            if it:
                first = h.eval_iteration[k - 1] + 1
                times = [0.1 * i for i in range(first, it + 1)]
                w.write_steps(first, h.loss[first - 1 : it], times, IPE)
            w.write_eval(it, it / IPE, h.eval_elapsed[k], h.train_acc[k], h.test_acc[k])
    return h


def resume(folder, history, resume_at=10) -> list[str]:
    said = []
    kwargs = dict(history=history, iters_per_epoch=IPE, warn=said.append)
    MetricsWriter(folder, resume_at=resume_at, **kwargs).close()
    return said


def test_an_intact_file_resumes_silently_and_unchanged(tmp_path):
    history = write_run(tmp_path)
    before = (tmp_path / METRICS_NAME).read_text()
    assert resume(tmp_path, history) == []
    assert (tmp_path / METRICS_NAME).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [METRICS_NAME]


def test_a_plausible_row_with_a_wrong_value_is_replaced(tmp_path):
    history = write_run(tmp_path)
    path = tmp_path / METRICS_NAME
    original = path.read_text()
    lines = original.splitlines(keepends=True)
    lines[3] = lines[3].replace(",1.9,", ",7.5,")  # step 2: valid CSV, wrong loss
    path.write_text("".join(lines))
    (said,) = resume(tmp_path, history)
    assert "1 row disagreeing with the checkpoint" in said
    m = read_metrics(path)
    assert m.loss == history.loss and m.eval_iteration == [0, 5, 10]
    assert m.elapsed[1] is None and m.elapsed[0] == 0.1  # rebuilt / kept as it was


def test_rows_without_a_history_are_reported_lost(tmp_path):
    write_run(tmp_path)
    path = tmp_path / METRICS_NAME
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:4] + lines[6:]))  # steps 3 and 4 deleted
    said = []
    MetricsWriter(tmp_path, resume_at=10, warn=said.append).close()
    assert len(said) == 1 and "\n" not in said[0]
    assert "2 step rows up to iteration 10 cannot be recovered" in said[0]
    assert read_metrics(path).iteration == [1, 2, 5, 6, 7, 8, 9, 10]


def test_every_damaged_original_is_kept(tmp_path):
    history = write_run(tmp_path)
    path = tmp_path / METRICS_NAME
    for n, junk in enumerate([b"\xff\xfe junk\n", b"more junk\n"], start=1):
        path.write_bytes(path.read_bytes() + junk)
        (said,) = resume(tmp_path, history)
        aside = METRICS_NAME + (".damaged" if n == 1 else f".damaged{n}")
        assert said.endswith(f"the damaged file is kept as {aside}")
        assert (tmp_path / aside).read_bytes().endswith(junk)
    assert read_metrics(path).loss == history.loss


def test_the_default_warning_is_one_stderr_line(tmp_path, capsys):
    history = write_run(tmp_path)
    (tmp_path / METRICS_NAME).write_bytes(b"\x00" * 100)
    MetricsWriter(tmp_path, resume_at=10, history=history, iters_per_epoch=IPE).close()
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and err.count("\n") == 1
    assert "13 rebuilt from the checkpoint" in err


def test_a_missing_file_is_rebuilt_from_the_checkpoint(tmp_path):
    history = write_run(tmp_path)
    (tmp_path / METRICS_NAME).unlink()
    (said,) = resume(tmp_path, history)
    assert "was missing" in said and "13 rebuilt from the checkpoint" in said
    m = read_metrics(tmp_path / METRICS_NAME)
    assert m.loss == history.loss and m.test_acc == history.test_acc
    assert sorted(p.name for p in tmp_path.iterdir()) == [METRICS_NAME]


def test_without_a_history_a_missing_file_starts_empty_as_before(tmp_path):
    said = []
    MetricsWriter(tmp_path, resume_at=10, warn=said.append).close()
    assert said == [] and read_metrics(tmp_path / METRICS_NAME).iteration == []
