"""Downloading a dataset file from a list of mirrors, verified and atomic.

Each mirror is tried in order, and a mirror that fails for a transient reason
(connection refused or reset, timeout, body cut short) is retried before moving
on. A 4xx answer or a checksum mismatch moves on at once. The body is written to
a temporary file in the destination folder and renamed into place only when it
is complete and verified, so the destination never holds half a file.

``$XPNET_MNIST_MIRROR`` (one or more base URLs separated by spaces; ``{dataset}``
is replaced by the dataset name) is tried before the built-in mirrors, so that
offline sites and tests can point at their own server (``file://`` works too).

Besides the socket timeout of each read, fetching a file from one mirror has a
total deadline (``deadline=``, else ``$XPNET_DOWNLOAD_DEADLINE`` seconds, else
:data:`DEFAULT_DEADLINE`), so that a mirror dripping bytes slowly cannot hang a
run: the mirror is abandoned and the next one tried.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nn._fileio import make_temp

__all__ = [
    "DEADLINE_ENV",
    "DEFAULT_DEADLINE",
    "MIRROR_ENV",
    "Checksums",
    "ChecksumMismatch",
    "DeadlineExceeded",
    "DownloadError",
    "download_file",
    "mirror_list",
]

MIRROR_ENV = "XPNET_MNIST_MIRROR"
USER_AGENT = "xpnet-data/0.1 (+https://pypi.org/project/xpnet)"
DEADLINE_ENV = "XPNET_DOWNLOAD_DEADLINE"
#: Seconds fetching one file from one mirror may take in all (MNIST's largest
#: file is 10 MB: under a minute at 2 Mbit/s).
DEFAULT_DEADLINE = 300.0
_CHUNK = 1 << 16


class DownloadError(OSError):
    """Every mirror failed; ``attempts`` lists ``(url, reason)`` pairs."""

    def __init__(self, message: str, attempts: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.attempts = list(attempts)


class DeadlineExceeded(TimeoutError):
    """A mirror did not deliver the whole file within the total deadline."""


class ChecksumMismatch(ValueError):
    """A downloaded file matches none of its published digests."""


@dataclass(frozen=True)
class Checksums:
    """Published digests of one file; a download must match at least one.

    ``md5`` and ``sha256`` are digests of the file as published (the ``.gz``);
    ``content_sha256`` is the digest of its gunzipped content, which stays the
    same when a mirror recompresses the file.
    """

    md5: str | None = None
    sha256: str | None = None
    content_sha256: str | None = None

    def check(self, path: Path, md5: str, sha256: str) -> None:
        """Raise :class:`ChecksumMismatch` unless ``path`` matches a digest.

        ``md5`` and ``sha256`` are the digests of the downloaded bytes.
        """
        if sha256 == self.sha256 or md5 == self.md5:
            return
        if self.content_sha256 and _content_sha256(path) == self.content_sha256:
            return
        expected = ", ".join(
            f"{k} {v}"
            for k, v in (
                ("md5", self.md5),
                ("sha256", self.sha256),
                ("content sha256", self.content_sha256),
            )
            if v
        )
        raise ChecksumMismatch(
            f"checksum mismatch (got md5 {md5}; expected {expected})"
        )


def _content_sha256(path: Path) -> str | None:
    """sha256 of the gunzipped content of ``path``; None if it is not gzip."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error):
        return None
    return digest.hexdigest()


def mirror_list(defaults: Sequence[str], dataset: str) -> list[str]:
    """Base URLs to try: ``$XPNET_MNIST_MIRROR``'s first, then ``defaults``.

    ``{dataset}`` in the variable is replaced by ``dataset``.
    """
    own = os.environ.get(MIRROR_ENV, "").split()
    return [url.replace("{dataset}", dataset) for url in own] + list(defaults)


def _join(base: str, filename: str) -> str:
    return base.rstrip("/") + "/" + filename


def _progress_bar(total: int | None, name: str, enabled: bool | None):
    """A tqdm bar when tqdm is installed and stderr is a terminal, else None."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=name, unit="B", unit_scale=True, leave=False)


def _fetch(url, out, timeout, deadline, max_bytes, progress, name):
    """Stream ``url`` into the open file ``out``. -> (md5, sha256) of the bytes.

    Raises :class:`DeadlineExceeded` once ``deadline`` seconds have passed.
    """
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    start = time.monotonic()
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    # A read may block up to the socket timeout: never longer than the deadline.
    with urllib.request.urlopen(request, timeout=min(timeout, deadline)) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > max_bytes:
            raise ValueError(f"file too large ({total} bytes, limit {max_bytes})")
        bar = _progress_bar(total, name, progress)
        received = 0
        try:
            while chunk := _read_some(response, start, deadline):
                received += len(chunk)
                if received > max_bytes:
                    raise ValueError(f"file too large (over {max_bytes} bytes)")
                out.write(chunk)
                md5.update(chunk)
                sha256.update(chunk)
                if bar is not None:
                    bar.update(len(chunk))
                if time.monotonic() - start > deadline:
                    raise DeadlineExceeded(
                        f"{received} bytes" + (f" of {total}" if total else "")
                    )
        finally:
            if bar is not None:
                bar.close()
        if total is not None and received != total:
            raise http.client.IncompleteRead(b"", total - received)
    return md5.hexdigest(), sha256.hexdigest()


def _read_some(response, start: float, deadline: float) -> bytes:
    # read1 returns what has arrived; read(n) would wait for all n bytes,
    # however slowly they drip in.
    try:
        return response.read1(_CHUNK)
    except TimeoutError:
        if time.monotonic() - start >= deadline:
            raise DeadlineExceeded("no more bytes") from None
        raise


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
    if isinstance(exc, urllib.error.URLError):
        return f"unreachable ({exc.reason})"
    if isinstance(exc, http.client.IncompleteRead):
        return f"transfer interrupted ({len(exc.partial)} bytes, more expected)"
    if isinstance(exc, TimeoutError):
        return "timed out (no data for the socket timeout)"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


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
        The published digests (see :class:`Checksums`).
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
        ``$XPNET_DOWNLOAD_DEADLINE``, else :data:`DEFAULT_DEADLINE`.

    Raises :class:`DownloadError` listing every attempt when all mirrors fail.
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
                    md5, sha256 = _fetch(
                        url, out, timeout, deadline, max_bytes, progress, filename
                    )
                checksums.check(Path(tmp), md5, sha256)
                os.replace(tmp, dest)
                return dest
            except (OSError, http.client.HTTPException, ValueError) as exc:
                attempts.append((url, _describe(exc, deadline, dest)))
                if _is_permanent(exc):
                    break
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    tried = "; ".join(f"{url}: {reason}" for url, reason in attempts) or "no mirrors"
    raise DownloadError(f"could not download {filename} ({tried})", attempts)
