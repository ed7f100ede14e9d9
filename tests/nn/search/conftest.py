"""Fixtures of the search tests: tiny searches run as real commands, and a
real PostgreSQL server (Debian's package) started for the session."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip(
    "optuna", reason='the search tests need pip install "xpnet[search]"'
)

ROOT = Path(__file__).resolve().parents[3]
#: Tiny trials: 100 images (80 train, 20 validate), 2 epochs of 2 steps, 20x2 net.
TINY = [
    "--dataset",
    "fashion-mnist",
    "--train-size",
    "100",
    "--epochs",
    "2",
    "--batch-size",
    "40",
    "--hidden-sizes",
    "20,20",
    "--device",
    "numpy",
    "--quiet",
]


@pytest.fixture
def search(shared_data, tmp_path):
    """Run ``python -m nn.search`` with the tiny settings; -> its CompletedProcess.

    ``background=True`` returns the running Popen instead.
    """

    def run(*args, background=False, timeout=120, **kwargs):
        cmd = [sys.executable, "-m", "nn.search", *TINY]
        cmd += ["--data-dir", str(shared_data / "fashion-mnist"), *map(str, args)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
        if background:
            return subprocess.Popen(
                cmd, cwd=tmp_path, env=env, text=True, **kwargs,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
        return subprocess.run(
            cmd, cwd=tmp_path, env=env, text=True, capture_output=True, timeout=timeout
        )

    return run


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server on a free localhost port, in a temporary folder.

    -> its URL. Skips where PostgreSQL is not installed, except under CI=true
    (where .ci/run installs it) which fails instead. initdb refuses to run as
    root, so as root the server runs as the ``postgres`` user.
    """
    pytest.importorskip("psycopg2", reason="PostgreSQL tests need psycopg2-binary")
    bindir = _pg_bin()
    if bindir is None:
        why = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}; CI must have it")
        pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="xpnet-pg-"))
    data, port = folder / "data", _free_port()
    prefix = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*prefix, bindir / "initdb", "-D", data, "-U", "xpnet", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [*prefix, bindir / "pg_ctl", "-D", data, "-o", options, "-w", "-t", "30"]
    subprocess.run(
        [*start, "-l", folder / "log", "start"], check=True, capture_output=True
    )
    try:
        yield f"postgresql://xpnet@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, bindir / "pg_ctl", "-D", data, "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def wait_for(predicate, timeout: float = 60.0, every: float = 0.1):
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(every)
    pytest.fail(
        f"timed out after {timeout} s waiting for {predicate.__doc__ or predicate}"
    )


def kill(proc) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
