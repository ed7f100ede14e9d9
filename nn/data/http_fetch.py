"""Streaming one URL into an open file, hashing it, within a total deadline.

Reads take whatever bytes have arrived (``read1``), so a mirror dripping a few
bytes at a time cannot keep a read waiting past the deadline; the socket
timeout still bounds a silent connection. ``file://`` URLs work too
(``urllib``). Retries and the choice of mirror are `nn.data.download`'s job.
"""

from __future__ import annotations

import hashlib
import http.client
import sys
import time
import urllib.request

__all__ = ["USER_AGENT", "DeadlineExceeded", "fetch"]

USER_AGENT = "xpnet-data/0.1 (+https://pypi.org/project/xpnet)"
_CHUNK = 1 << 16


class DeadlineExceeded(TimeoutError):
    """A mirror did not deliver the whole file within the total deadline."""


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


def fetch(url, out, timeout, deadline, max_bytes, progress, name):
    """Stream ``url`` into the open file ``out``. -> (md5, sha256) hex digests.

    Parameters
    ----------
    url : str
        What to fetch (``http(s)://`` or ``file://``).
    out : binary file
        Receives the body as it arrives.
    timeout : float
        Seconds to wait for the connection or for any bytes of a read.
    deadline : float
        Seconds the whole transfer may take; then `DeadlineExceeded`.
    max_bytes : int
        Larger bodies raise ``ValueError`` (by Content-Length or as they come).
    progress : bool or None
        Show a tqdm bar; None: when stderr is a terminal.
    name : str
        The bar's label.

    A body shorter than its Content-Length raises ``http.client.IncompleteRead``.
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
