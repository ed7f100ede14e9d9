"""xpnet-search end to end: real worker processes on real storages and data.

Each search is tiny (100 images, 2 epochs, a 20-20 network) so the whole
file runs in well under a minute; the PostgreSQL tests use the session's
real server (conftest.postgres_url).
"""

import csv
import time

import pytest

from nn.search.storage import open_storage
from tests.nn.search.conftest import kill, wait_for

optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.realdata


def _study(url, name="xpnet-search"):
    return optuna.load_study(study_name=name, storage=open_storage(url))


def _states(study):
    out = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def _check_shared(study, trials: int, workers: int, epochs: int):
    """Exactly ``trials`` finished trials, each run once, by ``workers`` workers."""
    done = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(done) == trials
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    ran = [t for t in study.trials if not t.user_attrs.get("surplus")]
    assert len({t.user_attrs["host_pid"] for t in ran}) == workers
    for t in done:  # each finished trial reported every epoch once, 0..epochs
        assert sorted(t.intermediate_values) == list(range(epochs + 1))
        assert t.value == t.intermediate_values[epochs]


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_share_one_study(search, tmp_path, kind):
    url = f"{kind}:///{tmp_path}/s.{'db' if kind == 'sqlite' else 'log'}"
    # trials of about half a second (a worker's first access to a journal can
    # take a second): long enough that both workers take some
    args = ["--workers", "2", "--trials", "8", "--epochs", "30", "--storage", url]
    args += ["--train-size", "1000", "--hidden-sizes", "100,100"]
    r = search(*args, "--out", "out")
    assert r.returncode == 0, r.stderr
    _check_shared(_study(url), trials=8, workers=2, epochs=30)
    rows = list(csv.DictReader(open(tmp_path / "out" / "trials.csv")))
    assert sorted(int(r["number"]) for r in rows) == list(range(len(rows)))
    assert {"lr", "weight_decay", "val_acc_per_epoch", "worker", "seconds"} <= set(
        rows[0]
    )
    assert "xpnet-train --dataset fashion-mnist" in r.stdout
    assert (tmp_path / "out" / "best_trials.png").stat().st_size > 1000


def test_resume_continues_to_trials_with_the_default_storage(search, tmp_path):
    assert search("--trials", "3", "--out", "run").returncode == 0
    url = f"sqlite:///{tmp_path}/run/study.db"
    first = {t.number: t.params for t in _study(url).trials}
    r = search("--trials", "5", "--out", "run")
    assert r.returncode == 0, r.stderr
    study = _study(url)
    assert _states(study) == {"COMPLETE": 5}
    assert {t.number: t.params for t in study.trials[:3]} == first  # kept as they were


#: Trials of many short epochs (a report to the storage each): seconds long,
#: so a worker can be caught mid-trial.
SLOW = ["--epochs", "150"]


def _kill_mid_trial(search, url, args):
    """Start a search, SIGKILL it once a trial has reported an epoch. -> the trial."""
    proc = search(*args, background=True)

    def running():
        try:
            trials = _study(url).get_trials(deepcopy=False)
        except Exception:  # the study is not created yet
            return False
        return any(t.state.name == "RUNNING" and t.intermediate_values for t in trials)

    try:
        wait_for(running, timeout=90)
    finally:
        kill(proc)
    (victim,) = [t for t in _study(url).trials if t.state.name == "RUNNING"]
    return victim


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_sigkill_mid_trial_fails_it_and_the_study_goes_on(search, tmp_path, kind):
    url = f"{kind}:///{tmp_path}/k.{'db' if kind == 'sqlite' else 'log'}"
    args = [
        "--storage",
        url,
        "--out",
        "out",
        "--heartbeat",
        "1",
        "--trials",
        "1",
        *SLOW,
    ]
    victim = _kill_mid_trial(search, url, args)
    if kind == "sqlite":
        time.sleep(2.5)  # past the grace period of two 1 s heartbeats
    # a journal has no heartbeat: the next worker on this host sees the pid gone
    r = search(*args)
    assert r.returncode == 0, r.stderr
    study = _study(url)
    assert study.trials[victim.number].state.name == "FAIL"
    assert _states(study) == {"FAIL": 1, "COMPLETE": 1}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--storage", "redis://localhost/0"], "unknown scheme; use sqlite:///"),
        (["--workers", "0"], "--workers: must be at least 1"),
        (["--space", "lr=1e-2:1e-6:log"], "low end must be below the high end"),
        (
            ["--storage", "postgresql://nobody:secret@127.0.0.1:9/none"],
            "cannot open the database",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(search, tmp_path, args, words):
    start = time.monotonic()
    r = search("--out", "out", *args)
    assert r.returncode == 2
    assert (
        words in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    )
    assert "secret" not in r.stderr
    assert time.monotonic() - start < 30  # an unreachable server fails fast
    assert not (tmp_path / "out" / "trials.csv").exists()


def test_other_space_is_refused_and_writes_nothing(search, tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    assert search("--storage", url, "--trials", "2").returncode == 0
    before = (tmp_path / "s.db").read_bytes()
    r = search("--storage", url, "--trials", "4", "--space", "lr=1e-4:1e-1:log")
    assert r.returncode == 2
    assert "exists with a different search (space: study lr=" in r.stderr
    assert "give a new --study name" in r.stderr
    assert (tmp_path / "s.db").read_bytes() == before
    r = search(
        "--storage",
        url,
        "--trials",
        "1",
        "--study",
        "other",
        "--space",
        "lr=1e-4:1e-1:log",
    )
    assert r.returncode == 0, r.stderr  # a new name: a second study in the same file


def test_two_workers_join_one_postgresql_study(search, postgres_url, tmp_path):
    name = f"pg-{time.time_ns()}"
    common = ["--storage", postgres_url, "--study", name, "--trials", "8"]
    common += ["--epochs", "10"]
    a = search(*common, "--out", "a", background=True)
    b = search(*common, "--out", "b", background=True)
    for p in (a, b):
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    study = _study(postgres_url, name)

    # both commands joined the one study: each trial ran once, 8 in all (a
    # command that starts late may find them all taken: it still exits 0)
    def pid(t):
        return int(t.user_attrs["host_pid"].rpartition(":")[2])

    assert {pid(t) for t in study.trials} <= {a.pid, b.pid}
    ran = {pid(t) for t in study.trials if not t.user_attrs.get("surplus")}
    _check_shared(study, trials=8, workers=len(ran), epochs=10)
