"""The total deadline of a download: a mirror dripping bytes cannot hang a run.

A local HTTP server on 127.0.0.1 serves the real MNIST test labels either at
once (``/ok/``) or a few bytes at a time with pauses shorter than the socket
timeout (``/drip/``), so that only the total deadline can stop it.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter

import pytest
from http_fixtures import QuietHandler, serve_http

from nn.data.download import (
    DEADLINE_ENV,
    DEFAULT_DEADLINE,
    Checksums,
    DownloadError,
    download_file,
)

LABELS = "t10k-labels-idx1-ubyte.gz"
#: Socket timeout far above the deadline: only the deadline can end a drip.
FAST = dict(retries=2, timeout=10.0, backoff=0.0)


class DripHandler(QuietHandler):
    body = b""
    hits: Counter = Counter()

    def do_GET(self):
        mode = self.path.strip("/").split("/")[0]
        self.hits[mode] += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        if mode == "ok":
            self.wfile.write(self.body)
            return
        try:
            for i in range(0, len(self.body), 16):  # 16 bytes every 50 ms: ~14 s
                self.wfile.write(self.body[i : i + 16])
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass  # the client gave up, as it should
        self.close_connection = True


@pytest.fixture
def server(shared_data):
    DripHandler.body = (shared_data / "mnist" / LABELS).read_bytes()
    DripHandler.hits = Counter()
    with serve_http(DripHandler) as url:
        yield url


@pytest.fixture
def sums():
    return Checksums(sha256=hashlib.sha256(DripHandler.body).hexdigest())


def test_a_dripping_mirror_is_abandoned_at_the_deadline(server, sums, tmp_path):
    dest = tmp_path / "cache" / LABELS
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        download_file(LABELS, dest, [f"{server}/drip/"], sums, deadline=0.5, **FAST)
    took = time.monotonic() - start
    assert took < 3.0, f"the deadline did not stop the download ({took:.1f} s)"
    message = str(info.value)
    assert "\n" not in message
    assert f"{server}/drip/{LABELS}" in message
    assert "0.5 s deadline" in message and DEADLINE_ENV in message
    assert str(dest.parent) in message and "--data-dir" in message
    # A mirror too slow once is not retried; nothing is left behind.
    assert DripHandler.hits["drip"] == 1
    assert not dest.exists() and os.listdir(dest.parent) == []


def test_the_next_mirror_is_tried_after_a_slow_one(server, sums, tmp_path):
    dest = tmp_path / LABELS
    mirrors = [f"{server}/drip/", f"{server}/ok/"]
    start = time.monotonic()
    assert download_file(LABELS, dest, mirrors, sums, deadline=0.5, **FAST) == dest
    assert time.monotonic() - start < 3.0
    assert dest.read_bytes() == DripHandler.body
    assert DripHandler.hits == Counter(drip=1, ok=1)


def test_the_deadline_comes_from_the_environment(server, sums, tmp_path, monkeypatch):
    monkeypatch.setenv(DEADLINE_ENV, "0.3")
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"0\.3 s deadline"):
        download_file(LABELS, tmp_path / LABELS, [f"{server}/drip/"], sums, **FAST)
    assert time.monotonic() - start < 3.0


def test_a_fast_mirror_is_unaffected_by_the_default_deadline(
    server, sums, tmp_path, monkeypatch
):
    monkeypatch.delenv(DEADLINE_ENV, raising=False)
    assert 60 <= DEFAULT_DEADLINE <= 900  # "a few minutes"
    dest = download_file(LABELS, tmp_path / LABELS, [f"{server}/ok/"], sums, **FAST)
    assert dest.read_bytes() == DripHandler.body


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan"])
def test_a_bad_deadline_setting_is_one_clear_error(value, sums, tmp_path, monkeypatch):
    monkeypatch.setenv(DEADLINE_ENV, value)
    with pytest.raises(DownloadError, match=DEADLINE_ENV) as info:
        download_file(LABELS, tmp_path / LABELS, ["http://127.0.0.1:9/"], sums)
    assert "\n" not in str(info.value)
