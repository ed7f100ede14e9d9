"""Where a study lives: an Optuna storage from a ``--storage`` URL.

- ``sqlite:///path/study.db``: one machine (the default, in the ``--out`` folder).
- ``journal:///path/study.log`` (or ``journal:relative.log``): an append-only
  journal file (Optuna's ``JournalFileBackend``), for a filesystem several
  machines share (NFS); no database server.
- ``postgresql://user:pass@host:5432/db``, ``mysql://...``: a database server
  that workers on several machines reach.

Workers killed mid-trial: on databases, Optuna's heartbeat (a thread records
each running trial's pulse every ``heartbeat`` seconds; a trial silent for two
of them is marked failed by the next worker to start a trial). A journal has no
heartbeat: each trial records its host and process id, and a worker marks failed
the running trials of dead processes on its own host (see ``fail_dead_trials``).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

#: Seconds to wait for a database server before calling it unreachable.
CONNECT_TIMEOUT = 5
SCHEMES = ("sqlite", "journal", "postgresql", "mysql")


class StorageError(ValueError):
    """A storage URL that cannot be used (message names the fix)."""


def require_optuna():
    """Import optuna, or raise ImportError naming the extra to install."""
    try:
        import optuna
    except ImportError:
        raise ImportError(
            'xpnet-search needs Optuna: pip install "xpnet[search]"'
        ) from None
    import warnings

    # Failed trials are reported by xpnet-search itself, in one line.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def default_url(out: str | os.PathLike) -> str:
    """The default storage: ``study.db`` (SQLite) in the results folder."""
    return f"sqlite:///{Path(out).resolve() / 'study.db'}"


def scheme(url: str) -> str:
    """``url``'s scheme without its driver (``postgresql+psycopg2`` -> postgresql)."""
    return url.partition(":")[0].partition("+")[0].lower()


def check_url(url: str) -> None:
    """Raise StorageError for a scheme xpnet-search cannot open."""
    if ":" not in url or scheme(url) not in SCHEMES:
        raise StorageError(
            f"--storage {url!r}: unknown scheme; use sqlite:///FILE.db, "
            "journal:///FILE.log, postgresql://USER@HOST/DB or mysql://USER@HOST/DB"
        )


def journal_path(url: str) -> Path:
    """The file of a ``journal:`` URL (``journal:///abs``, ``journal:rel``)."""
    rest = url.partition(":")[2]
    if rest.startswith("//"):
        rest = rest[2:]
    if not rest:
        raise StorageError(
            f"--storage {url!r} names no file; e.g. journal:///tmp/s.log"
        )
    return Path(rest)


def open_storage(url: str, heartbeat: int = 60):
    """An Optuna storage for ``url``. Raises StorageError when it cannot be reached.

    Opening a database creates Optuna's tables in it when they are missing
    (an empty database), and nothing else.
    """
    optuna = require_optuna()
    check_url(url)
    kind = scheme(url)
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        path = journal_path(url)
        if not path.parent.is_dir():
            raise StorageError(
                f"--storage {url!r}: folder {path.parent} does not exist; create it"
            )
        backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
        return optuna.storages.JournalStorage(backend)
    if kind == "sqlite":
        db = url.partition(":///")[2]
        if db and db != ":memory:" and not Path(db).parent.is_dir():
            raise StorageError(
                f"--storage {url!r}: folder {Path(db).parent} does not exist; create it"
            )
        # Workers wait for each other's writes instead of failing "locked".
        connect_args = {"timeout": 60}
    else:
        connect_args = {"connect_timeout": CONNECT_TIMEOUT}
    import sqlalchemy.exc

    for attempt in range(4):
        try:
            return optuna.storages.RDBStorage(
                with_driver(url),
                engine_kwargs={"connect_args": connect_args},
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
            )
        except sqlalchemy.exc.IntegrityError:
            # Two commands creating Optuna's tables in an empty database at
            # once: one wins; the other finds them made when it tries again.
            if attempt == 3:
                raise StorageError(
                    f"--storage {_redact(url)}: the database's tables could not "
                    "be created (another command creating them?); run again"
                ) from None
            time.sleep(0.5 + attempt)
        except ImportError as exc:
            _no_driver(url, kind, exc.__cause__ or exc)
        except (sqlalchemy.exc.SQLAlchemyError, ValueError) as exc:
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StorageError(
                f"--storage {_redact(url)}: cannot open the database ({first}); "
                "check that the server runs, the URL (user, password, host, port, "
                "database) and that this machine may connect"
            ) from None


def _no_driver(url: str, kind: str, exc: Exception):
    fix = {
        "postgresql": 'pip install "xpnet[search]" (psycopg2-binary)',
        "mysql": "pip install pymysql (or mysqlclient)",
    }.get(kind, "install the driver the URL names")
    raise StorageError(f"--storage {_redact(url)}: no database driver ({exc}); {fix}")


def with_driver(url: str) -> str:
    """``url`` naming an installed driver when it names none.

    SQLAlchemy 2.1 reads ``postgresql://`` as psycopg 3 and older versions as
    psycopg2; the ``search`` extra installs psycopg2, so either is used, the
    one present. ``mysql://``: mysqlclient, else PyMySQL.
    """
    head, sep, rest = url.partition("://")
    if "+" in head or not sep:
        return url
    drivers = {"postgresql": ("psycopg", "psycopg2"), "mysql": ("MySQLdb", "pymysql")}
    names = {"MySQLdb": "mysqldb"}
    for module in drivers.get(head.lower(), ()):
        if _importable(module):
            return f"{head}+{names.get(module, module)}://{rest}"
    return url


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def fail_dead_trials(study) -> list[int]:
    """Mark failed this host's running trials whose worker process is gone.

    For storages without a heartbeat (the journal). -> the trial numbers failed.
    """
    from optuna.trial import TrialState

    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get("host_pid", "")
        name, _, pid = owner.rpartition(":")
        if name == host and pid.isdigit() and not _alive(int(pid)):
            if study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                failed.append(trial.number)
    return failed


def has_heartbeat(storage) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _redact(url: str) -> str:
    """``url`` with its password replaced by ***."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    prefix, _, cred = head.partition("://")
    user, colon, _ = cred.partition(":")
    return f"{prefix}://{user}{':***' if colon else ''}@{tail}"
