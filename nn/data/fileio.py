"""Atomic file writes: a file is either its old complete self or its new one.

Checkpoints, metrics rewrites and figures are written to a temporary file in
the destination's directory and renamed over it with `os.replace`, which
is atomic on POSIX and Windows, so a crash or Ctrl-C never leaves half a file.

A SIGKILL can still leave the hidden temporary file behind
(``.<name>.<8 random chars>.tmp``, or ``.part`` for downloads). The next write
of the same file removes such leftovers with `remove_stale_temps`: only
names of exactly that pattern, only when no live process holds the file's
lock (every writer holds one while it writes) and only when untouched for
`STALE_AFTER` seconds.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the age rule alone decides
    fcntl = None

#: Seconds a leftover temporary file must be untouched before it is removed;
#: covers the moment between a writer closing its file and renaming it.
STALE_AFTER = 60.0
#: Without file locks (Windows) a live writer cannot be told apart: wait longer.
STALE_AFTER_NO_LOCKS = 3600.0
# tempfile.mkstemp's random part: 8 characters of this alphabet.
_RANDOM = r"[a-z0-9_]{8}"
_cleaned: set[tuple[str, str, str]] = set()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def make_temp(path: Path, suffix: str) -> tuple[int, str]:
    """A locked, hidden temporary file next to ``path``. -> (fd, name).

    The lock (released when the fd is closed, or when the process dies) tells
    `remove_stale_temps` in other processes that the file is in use.
    """
    remove_stale_temps(path.parent, path.name, suffix)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    if fcntl is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd, tmp


def remove_stale_temps(
    directory: str | os.PathLike, name: str, suffix: str, *, once: bool = True
) -> list[Path]:
    """Remove temporary files of ``name`` that a killed writer left in ``directory``.

    Only ``.<name>.<8 chars>.<suffix>`` files (our own naming) that no process
    holds locked and that are older than `STALE_AFTER`. ``once``: scan a
    given directory and name once per process. Never raises. -> files removed.
    """
    key = (os.path.abspath(directory), name, suffix)
    if once and key in _cleaned:
        return []
    _cleaned.add(key)
    pattern = re.compile(rf"\.{re.escape(name)}\.{_RANDOM}{re.escape(suffix)}")
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if pattern.fullmatch(entry.name) and _remove_if_stale(entry.path):
            removed.append(Path(entry.path))
    return removed


def _remove_if_stale(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False  # renamed or removed meanwhile, or a symlink: not ours
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # a live writer holds it
        limit = STALE_AFTER if fcntl is not None else STALE_AFTER_NO_LOCKS
        st = os.fstat(fd)
        if time.time() - st.st_mtime < limit or not stat.S_ISREG(st.st_mode):
            return False
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary file that replaces ``path`` when the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is
    removed and ``path`` is left untouched.
    """
    path = Path(path)
    fd, tmp = make_temp(path, ".tmp")
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on every OS.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
