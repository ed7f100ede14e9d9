"""Temporary files left by a SIGKILL are removed by the next write, safely.

An atomic write leaves ``.<name>.<8 chars>.tmp`` (``.part`` for a download)
when the process is killed before its rename. The next checkpoint save or
download into that folder removes such files, but only ours (exact naming),
only when no live process holds them and only once untouched for
``STALE_AFTER`` seconds; look-alike names and live writers' files stay.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest
from reliability_support import (
    ROOT,
    child_env,
    fault_points,
    run_train,
    tiny_train_args,
    train_command,
)

from nn.data import fileio as _fileio
from nn.data.download import Checksums, download_file
from nn.training.checkpoint import CHECKPOINT_NAME, load_checkpoint

OLD = time.time() - 2 * _fileio.STALE_AFTER
#: Names in a run folder next to checkpoint.npz: removed when stale, or kept.
STALE = [".checkpoint.npz.abcd_123.tmp", ".checkpoint.npz.zzzzzzzz.tmp"]
LOOK_ALIKES = [
    ".checkpoint.npz.abc.tmp",  # not mkstemp's 8 random characters
    "checkpoint.npz.abcd1234.tmp",  # not hidden
    ".metrics.csv.abcd1234.tmp",  # another file's: cleaned when that is written
    ".checkpoint.npz.abcd1234.tmp.keep",
    ".checkpoint.npz.ABCD1234.tmp",  # mkstemp never uses capitals
    ".checkpoint.npz.abcd1234.part",  # a download's suffix
]
#: SIGKILLed training runs whose leftover temporary file the resume removed.
KILLED_RUNS = 2
#: Cases of the README table: names, a live writer, a young file, a symlink and
#: a folder of our naming, a download's .part, killed runs.
STALE_CASES = len(STALE) + len(LOOK_ALIKES) + 4 + 1 + KILLED_RUNS


def make(path, content=b"x", mtime=OLD):
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))
    return path


def test_only_our_stale_names_are_removed(tmp_path):
    for name in STALE + LOOK_ALIKES:
        make(tmp_path / name)
    young = make(tmp_path / ".checkpoint.npz.young123.tmp", mtime=time.time())
    folder = tmp_path / ".checkpoint.npz.folder12.tmp"
    folder.mkdir()
    target = make(tmp_path / "precious")
    link = tmp_path / ".checkpoint.npz.symlink1.tmp"
    link.symlink_to(target)
    os.utime(link, (OLD, OLD), follow_symlinks=False)
    removed = _fileio.remove_stale_temps(tmp_path, CHECKPOINT_NAME, ".tmp")
    assert sorted(p.name for p in removed) == sorted(STALE)
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {*LOOK_ALIKES, young.name, folder.name, link.name, target.name}
    assert target.read_bytes() == b"x"


def test_a_live_writers_file_is_kept_until_it_dies(tmp_path):
    code = (
        "import sys, time, pathlib\n"
        "from nn.data.fileio import make_temp\n"
        f"target = pathlib.Path({str(tmp_path)!r}) / 'checkpoint.npz'\n"
        "fd, name = make_temp(target, '.tmp')\n"
        "print(name, flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        name = child.stdout.readline().strip()
        os.utime(name, (OLD, OLD))  # as if the writer had stalled for minutes
        args = (tmp_path, CHECKPOINT_NAME, ".tmp")
        assert _fileio.remove_stale_temps(*args, once=False) == []
        assert os.path.exists(name)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    removed = _fileio.remove_stale_temps(*args, once=False)
    assert [str(p) for p in removed] == [name]


def test_a_download_removes_a_killed_downloads_part_file(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    body = b"the file's bytes"
    (mirror / "f.gz").write_bytes(body)
    cache = tmp_path / "cache"
    cache.mkdir()
    left = make(cache / ".f.gz.k1lled00.part", b"half")
    sums = Checksums(sha256=hashlib.sha256(body).hexdigest())
    dest = download_file("f.gz", cache / "f.gz", [mirror.as_uri()], sums)
    assert dest.read_bytes() == body
    assert not left.exists() and sorted(os.listdir(cache)) == ["f.gz"]


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("index", range(KILLED_RUNS))
def test_resume_removes_the_temp_file_a_kill_left(
    index, tiny_data, reference_run, tmp_path
):
    # Killed inside a checkpoint's bytes, after the first checkpoint exists.
    points = fault_points({"file-write": KILLED_RUNS}, reference_run["events"], 5)
    kind, event = points[index]
    out, cache = tmp_path / "run", tmp_path / "cache"
    env = child_env(
        cache,
        XPNET_FAULT_NO_PLOTS="1",
        XPNET_FAULT="kill",
        XPNET_FAULT_KIND=kind,
        XPNET_FAULT_AT=str(max(event, 3)),
    )
    command = train_command(*tiny_train_args(tiny_data, out), faults=True)
    proc = subprocess.run(command, env=env, capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    temps = [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(temps) == 1 and temps[0].name.startswith(f".{CHECKPOINT_NAME}.")
    os.utime(temps[0], (OLD, OLD))
    env = child_env(cache, XPNET_FAULT_NO_PLOTS="1")
    args = ["--device", "numpy", "--data-dir", tiny_data, "--resume", out, "--quiet"]
    proc = run_train(*args, env=env, faults=True)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [CHECKPOINT_NAME, "metrics.csv"]
    assert load_checkpoint(out).iteration == reference_run["iteration"]
