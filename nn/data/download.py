"""Downloading a dataset file from a list of mirrors, verified and atomic.

Each mirror is tried in order, and a mirror that fails for a transient reason
(connection refused or reset, timeout, body cut short) is retried before moving
on. A 4xx answer or a checksum mismatch moves on at once. A host name that
cannot be resolved, or no route to any network, means this machine is offline:
that one attempt ends the download (``DownloadError.offline``), since every
other mirror would fail the same way. The body is written to
a temporary file in the destination folder and renamed into place only when it
is complete and verified, so the destination never holds half a file.

``$XPNET_MNIST_MIRROR`` (one or more base URLs separated by spaces; ``{dataset}``
is replaced by the dataset name) is tried before the built-in mirrors, so that
offline sites and tests can point at their own server (``file://`` works too).

Besides the socket timeout of each read, fetching a file from one mirror has a
total deadline (``deadline=``, else ``$XPNET_DOWNLOAD_DEADLINE`` seconds, else
`DEFAULT_DEADLINE`), so that a mirror dripping bytes slowly cannot hang a
run: the mirror is abandoned and the next one tried.

This module is the policy (mirror order, retries, deadline, atomic rename);
`nn.data.http_fetch` streams one URL and `nn.data.checksums` checks the bytes.
"""

from __future__ import annotations

import errno
import http.client
import os
import socket
import time
import urllib.error
from collections.abc import Sequence
from pathlib import Path

from nn.data.checksums import ChecksumMismatch, Checksums
from nn.data.fileio import make_temp
from nn.data.http_fetch import DeadlineExceeded, fetch

__all__ = [
    "DEADLINE_ENV",
    "DEFAULT_DEADLINE",
    "MIRROR_ENV",
    "Checksums",
    "ChecksumMismatch",
    "DeadlineExceeded",
    "DownloadError",
    "download_file",
    "is_offline",
    "mirror_list",
]

MIRROR_ENV = "XPNET_MNIST_MIRROR"
DEADLINE_ENV = "XPNET_DOWNLOAD_DEADLINE"
#: Seconds fetching one file from one mirror may take in all (MNIST's largest
#: file is 10 MB: under a minute at 2 Mbit/s).
DEFAULT_DEADLINE = 300.0


class DownloadError(OSError):
    """Every mirror failed; ``attempts`` lists ``(url, reason)`` pairs;
    ``offline``: the machine has no network (the first attempt said so)."""

    def __init__(
        self,
        message: str,
        attempts: Sequence[tuple[str, str]] = (),
        offline: bool = False,
    ):
        super().__init__(message)
        self.attempts = list(attempts)
        self.offline = offline


def mirror_list(defaults: Sequence[str], dataset: str) -> list[str]:
    """Base URLs to try: ``$XPNET_MNIST_MIRROR``'s first, then ``defaults``.

    ``{dataset}`` in the variable is replaced by ``dataset``.
    """
    own = os.environ.get(MIRROR_ENV, "").split()
    return [url.replace("{dataset}", dataset) for url in own] + list(defaults)


def _join(base: str, filename: str) -> str:
    return base.rstrip("/") + "/" + filename


def _resolve_deadline(deadline: float | None) -> float:
    """``deadline``, else ``$XPNET_DOWNLOAD_DEADLINE``, else the default (seconds)."""
    if deadline is None:
        text = os.environ.get(DEADLINE_ENV, "").strip()
        try:
            deadline = float(text) if text else DEFAULT_DEADLINE
        except ValueError:
            raise DownloadError(
                f"${DEADLINE_ENV}={text!r} is not a number of seconds; set it to "
                f"e.g. {DEFAULT_DEADLINE:g} or unset it"
            ) from None
    if not deadline > 0:  # also refuses NaN
        raise DownloadError(
            f"the download deadline must be a positive number of seconds, got "
            f"{deadline!r} (check ${DEADLINE_ENV})"
        )
    return float(deadline)


def _describe(exc: BaseException, deadline: float, dest: Path) -> str:
    if isinstance(exc, DeadlineExceeded):
        return (
            f"too slow: not complete after the {deadline:g} s deadline ({exc} "
            f"received); raise ${DEADLINE_ENV}, or put the file in {dest.parent} "
            "(or a folder passed as --data-dir / data_dir=)"
        )
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError) and isinstance(
        exc.reason, socket.gaierror
    ):
        return f"no network (host name not resolved: {exc.reason.strerror})"
    if isinstance(exc, urllib.error.URLError):
        return f"unreachable ({exc.reason})"
    if isinstance(exc, http.client.IncompleteRead):
        return f"transfer interrupted ({len(exc.partial)} bytes, more expected)"
    if isinstance(exc, TimeoutError):
        return "timed out (no data for the socket timeout)"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def is_offline(exc: BaseException) -> bool:
    """True when ``exc`` says the machine has no network at all: a host name
    that does not resolve, or no route to any network."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, socket.gaierror):
        return True
    return isinstance(reason, OSError) and reason.errno == errno.ENETUNREACH


def _is_permanent(exc: BaseException) -> bool:
    """True when retrying the same mirror cannot help."""
    if isinstance(exc, urllib.error.HTTPError):
        return 400 <= exc.code < 500 and exc.code not in (408, 429)
    # Checksum mismatch, file too large; a mirror too slow once stays too slow.
    return isinstance(exc, (ValueError, DeadlineExceeded))


def download_file(
    filename: str,
    dest: str | os.PathLike,
    mirrors: Sequence[str],
    checksums: Checksums,
    *,
    retries: int = 2,
    timeout: float = 30.0,
    backoff: float = 1.0,
    max_bytes: int = 200_000_000,
    progress: bool | None = None,
    deadline: float | None = None,
) -> Path:
    """Download ``filename`` from the first mirror that serves it verified.

    Parameters
    ----------
    filename : str
        Name appended to each mirror's base URL.
    dest : path
        Final path; written only once the file is complete and verified.
    mirrors : sequence of str
        Base URLs, tried in order.
    checksums : Checksums
        The published digests (see `Checksums`).
    retries : int
        Extra attempts per mirror after a transient failure.
    timeout : float
        Seconds to wait for a connection or for each read.
    backoff : float
        Seconds slept before the k-th retry, times k.
    progress : bool, optional
        Show a tqdm bar; default when stderr is a terminal.
    deadline : float, optional
        Seconds one mirror may take for the whole file (connection to last
        byte) before it is abandoned for the next one; default
        ``$XPNET_DOWNLOAD_DEADLINE``, else `DEFAULT_DEADLINE`.

    Raises `DownloadError` listing every attempt when all mirrors fail.
    """
    dest = Path(dest)
    deadline = _resolve_deadline(deadline)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"cannot create the folder {dest.parent} ({exc.strerror}); set "
            "XDG_CACHE_HOME to a writable folder"
        ) from exc
    attempts: list[tuple[str, str]] = []
    for base in mirrors:
        url = _join(base, filename)
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(backoff * attempt)
            fd, tmp = make_temp(dest, ".part")
            try:
                with os.fdopen(fd, "wb") as out:
                    md5, sha256 = fetch(
                        url, out, timeout, deadline, max_bytes, progress, filename
                    )
                checksums.check(Path(tmp), md5, sha256)
                os.replace(tmp, dest)
                return dest
            except (OSError, http.client.HTTPException, ValueError) as exc:
                attempts.append((url, _describe(exc, deadline, dest)))
                if is_offline(exc):
                    raise DownloadError(
                        f"could not download {filename}: {attempts[-1][1]} at {url}",
                        attempts,
                        offline=True,
                    ) from exc
                if _is_permanent(exc):
                    break
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    tried = "; ".join(f"{url}: {reason}" for url, reason in attempts) or "no mirrors"
    raise DownloadError(f"could not download {filename} ({tried})", attempts)
