"""Run ``train.py`` with faults injected at chosen file-system events.

Usage: ``python fault_runner.py [train.py flags]``, with environment variables:

``XPNET_FAULT_NO_PLOTS=1``
    behave as if matplotlib were not installed (saves a second per run);
``XPNET_FAULT_AT=K``, ``XPNET_FAULT_KIND`` and ``XPNET_FAULT=kill|enospc``
    at the K-th event (1-based) of that kind SIGKILL this process, or fail
    with ENOSPC as a full disk does. A write event first writes half of its
    bytes;
``XPNET_FAULT_COUNT=PATH``
    write the number of events of each kind seen to PATH (JSON) at exit;
``XPNET_FAULT_DELAY=SECONDS``
    sleep that long at every event, so that a run lasts long enough for a
    kill sent from outside at a random moment to land mid-run.

The kinds of events: ``file-write``, every write to a file opened with
``os.fdopen`` (how ``atomic_write`` writes checkpoints and the data cache);
``os.write`` (metrics appends); ``fsync``; ``replace`` (atomic renames).
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAULT_AT = int(os.environ.get("XPNET_FAULT_AT", "0"))
FAULT_KIND = os.environ.get("XPNET_FAULT_KIND", "file-write")
FAULT = os.environ.get("XPNET_FAULT", "kill")
DELAY = float(os.environ.get("XPNET_FAULT_DELAY", "0"))
KINDS = ("file-write", "os.write", "fsync", "replace")
_real = {"fdopen": os.fdopen, "write": os.write, "fsync": os.fsync}
_real["replace"] = os.replace
_counts = dict.fromkeys(KINDS, 0)


def _due(kind: str) -> bool:
    _counts[kind] += 1
    if DELAY:
        time.sleep(DELAY)
    return kind == FAULT_KIND and _counts[kind] == FAULT_AT


def _fail() -> None:
    if FAULT == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FaultyFile:
    """A file object whose writes count as events."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        if _due("file-write"):
            self._f.write(data[: len(data) // 2])  # bytes, or str in text mode
            self._f.flush()
            _fail()
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


def _fdopen(*args, **kwargs):
    return _FaultyFile(_real["fdopen"](*args, **kwargs))


def _write(fd, data):
    if _due("os.write"):
        _real["write"](fd, bytes(data)[: len(data) // 2])
        _fail()
    return _real["write"](fd, data)


def _fsync(fd):
    if _due("fsync"):
        _fail()
    return _real["fsync"](fd)


def _replace(src, dst, **kwargs):
    if _due("replace"):
        _fail()
    return _real["replace"](src, dst, **kwargs)


def main() -> int:
    if os.environ.get("XPNET_FAULT_NO_PLOTS") == "1":
        sys.modules["matplotlib"] = None  # import matplotlib -> ImportError
    count_path = os.environ.get("XPNET_FAULT_COUNT")
    if count_path:
        atexit.register(lambda: Path(count_path).write_text(json.dumps(_counts)))
    sys.path.insert(0, str(ROOT))
    import train

    os.fdopen, os.write, os.fsync, os.replace = _fdopen, _write, _fsync, _replace
    return train.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
