"""Published digests of a dataset file, and the check a download must pass.

A file passes when it matches any one digest it has: the md5 or sha256 of the
file as published (the ``.gz``), or the sha256 of its gunzipped content, which
stays the same when a mirror or a distribution recompresses the file.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ChecksumMismatch", "Checksums"]


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
        """Raise `ChecksumMismatch` unless ``path`` matches a digest.

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
