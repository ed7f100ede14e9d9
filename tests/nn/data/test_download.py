"""Tests of nn/download.py against a real HTTP server on 127.0.0.1.

The server serves real MNIST files from the shared data; each mirror path
prefix picks a behaviour: ``ok``, ``missing`` (404), ``corrupt`` (bytes
flipped), ``cut`` (closes mid-body every time), ``cut-once`` (closes mid-body
on the first request only) and ``silent`` (never answers).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import threading
import time
from collections import Counter

import http_fixtures
import numpy as np
import pytest
from http_fixtures import QuietHandler, serve_http

import nn.data.mnist as mnist
from nn.data.download import (
    MIRROR_ENV,
    ChecksumMismatch,
    Checksums,
    DownloadError,
    download_file,
    mirror_list,
)

LABELS = "t10k-labels-idx1-ubyte.gz"
IMAGES = "t10k-images-idx3-ubyte.gz"
FAST = dict(retries=2, timeout=5.0, backoff=0.0)


class Handler(QuietHandler):
    files: dict[str, bytes] = {}
    hits: Counter = Counter()
    lock = threading.Lock()

    def do_GET(self):
        mode, _, name = self.path.strip("/").partition("/")
        with self.lock:
            self.hits[self.path] += 1
            count = self.hits[self.path]
        body = self.files.get(name)
        if mode == "silent":
            time.sleep(3)
            return
        if body is None or mode == "missing":
            self.send_error(404)
            return
        if mode == "corrupt":
            body = body[:100] + bytes(b ^ 0x55 for b in body[100:200]) + body[200:]
        cut = mode == "cut" or (mode == "cut-once" and count == 1)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if cut else body)
        if cut:
            self.wfile.flush()
            self.close_connection = True


@pytest.fixture
def server(shared_data):
    """Base URL of a threaded HTTP server; ``server + "/ok/"`` is a good mirror."""
    Handler.files = {
        name: (shared_data / "mnist" / name).read_bytes() for name in (LABELS, IMAGES)
    }
    Handler.hits = Counter()
    with serve_http(Handler) as url:
        yield url


@pytest.fixture
def dead_url():
    """A URL on a port where nothing listens (connection refused at once)."""
    return http_fixtures.dead_url()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("XPNET_DATA_DIR", raising=False)
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {})
    monkeypatch.setattr(mnist, "DOWNLOAD_OPTIONS", FAST)


def real_checksums(name: str) -> Checksums:
    """The table's official checksums of an MNIST file."""
    kind = "images" if "images" in name else "labels"
    return mnist.DATASETS["mnist"].files["test", kind][1]


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_404_and_corrupt_mirrors_are_skipped(server, tmp_path):
    dest = tmp_path / "dl" / LABELS
    mirrors = [server + "/missing/", server + "/corrupt/", server + "/ok/"]
    download_file(LABELS, dest, mirrors, real_checksums(LABELS), **FAST)
    assert dest.read_bytes() == Handler.files[LABELS]
    # A 404 or a checksum mismatch is not retried; the good mirror is hit once.
    assert Handler.hits == {f"/{m}/{LABELS}": 1 for m in ("missing", "corrupt", "ok")}
    assert leftovers(dest.parent) == []


def test_interrupted_transfer_is_retried_and_leaves_nothing(server, tmp_path):
    dest = tmp_path / "dl" / IMAGES
    download_file(IMAGES, dest, [server + "/cut-once/"], real_checksums(IMAGES), **FAST)
    assert Handler.hits[f"/cut-once/{IMAGES}"] == 2
    assert hashlib.sha256(gzip.decompress(dest.read_bytes())).hexdigest() == (
        real_checksums(IMAGES).content_sha256
    )
    assert leftovers(dest.parent) == []


def test_always_interrupted_mirror_is_given_up_after_retries(server, tmp_path):
    dest = tmp_path / "dl" / IMAGES
    mirrors = [server + "/cut/", server + "/ok/"]
    download_file(IMAGES, dest, mirrors, real_checksums(IMAGES), **FAST)
    assert Handler.hits[f"/cut/{IMAGES}"] == 1 + FAST["retries"]
    assert dest.stat().st_size == len(Handler.files[IMAGES])


def test_all_mirrors_failing_raises_with_every_attempt(server, tmp_path, dead_url):
    dest = tmp_path / "dl" / IMAGES
    mirrors = [server + "/missing/", server + "/corrupt/", server + "/cut/", dead_url]
    with pytest.raises(DownloadError) as info:
        download_file(IMAGES, dest, mirrors, real_checksums(IMAGES), **FAST)
    reasons = [why for _, why in info.value.attempts]
    assert reasons[0] == "HTTP 404 Not Found"
    assert "checksum mismatch" in reasons[1]
    assert all("interrupted" in r for r in reasons[2:5])
    assert all("unreachable" in r for r in reasons[5:])
    assert not dest.exists()
    assert leftovers(dest.parent) == []


def test_silent_server_is_bounded_by_the_timeout(server, tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(DownloadError, match="timed out"):
        download_file(
            LABELS,
            tmp_path / LABELS,
            [server + "/silent/"],
            real_checksums(LABELS),
            retries=0,
            timeout=0.5,
        )
    assert time.perf_counter() - t0 < 2.5


def test_file_url_mirror(shared_data, tmp_path):
    dest = tmp_path / LABELS
    url = (shared_data / "mnist").as_uri()
    download_file(LABELS, dest, [url], real_checksums(LABELS), **FAST)
    assert dest.read_bytes() == (shared_data / "mnist" / LABELS).read_bytes()


def test_oversized_download_is_refused(server, tmp_path):
    with pytest.raises(DownloadError, match="too large"):
        download_file(
            IMAGES, tmp_path / IMAGES, [server + "/ok/"], real_checksums(IMAGES),
            max_bytes=1000, **FAST,
        )  # fmt: skip
    assert not (tmp_path / IMAGES).exists()


def test_progress_bar_runs_when_asked(server, tmp_path, capsys):
    pytest.importorskip("tqdm")
    download_file(
        LABELS, tmp_path / LABELS, [server + "/ok/"], real_checksums(LABELS),
        progress=True, **FAST,
    )  # fmt: skip
    assert LABELS in capsys.readouterr().err  # tqdm's description


# -- checksums ------------------------------------------------------------


def test_official_compressed_digest_is_accepted(tmp_path):
    data = gzip.compress(b"\0\0\x08\x01\0\0\0\x01\x07")
    path = tmp_path / "f.gz"
    path.write_bytes(data)
    md5, sha = hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()
    Checksums(md5=md5).check(path, md5, sha)
    Checksums(sha256=sha).check(path, md5, sha)
    with pytest.raises(ChecksumMismatch):
        Checksums(md5="0" * 32, sha256="0" * 64).check(path, md5, sha)


def test_recompressed_real_file_passes_by_content_digest(shared_data):
    # The shared copy was recompressed: its .gz digests differ from the
    # official ones, but the content digest matches.
    path = shared_data / "mnist" / LABELS
    data = path.read_bytes()
    md5, sha = hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()
    official = real_checksums(LABELS)
    assert md5 != official.md5 and sha != official.sha256
    official.check(path, md5, sha)
    no_content = dataclasses.replace(official, content_sha256=None)
    with pytest.raises(ChecksumMismatch, match="expected md5"):
        no_content.check(path, md5, sha)


@pytest.mark.parametrize(
    "env, expected",
    [
        (None, ["https://a/"]),
        ("http://m/{dataset}/", ["http://m/fashion-mnist/", "https://a/"]),
        ("  http://x/  file:///y ", ["http://x/", "file:///y", "https://a/"]),
    ],
)
def test_mirror_env_goes_first(monkeypatch, env, expected):
    if env is not None:
        monkeypatch.setenv(MIRROR_ENV, env)
    assert mirror_list(["https://a/"], "fashion-mnist") == expected


# -- end to end through load_mnist_split ------------------------------------


def offline_mnist(monkeypatch, dead_url):
    """Replace the built-in mirrors by a dead one (tests never touch the internet)."""
    info = dataclasses.replace(mnist.DATASETS["mnist"], mirrors=(dead_url,))
    monkeypatch.setitem(mnist.DATASETS, "mnist", info)


def test_load_mnist_split_downloads_into_the_cache(
    server, monkeypatch, tmp_path, dead_url, shared_data
):
    offline_mnist(monkeypatch, dead_url)
    mirrors = f"{server}/missing/ {server}/corrupt/ {server}/cut-once/"
    monkeypatch.setenv(MIRROR_ENV, mirrors)
    x, t = mnist.load_mnist_split("test", normalize=False)
    cache = tmp_path / "cache" / "xpnet" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == [
        "parsed-test.npz", IMAGES, LABELS
    ]  # fmt: skip
    x_ref, t_ref = mnist.load_mnist_split(
        "test", normalize=False, data_dir=shared_data / "mnist"
    )
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(t, t_ref)
    # Second call: everything comes from the cache, no request at all.
    before = sum(Handler.hits.values())
    mnist.load_mnist_split("test")
    assert sum(Handler.hits.values()) == before


def test_offline_error_says_what_was_tried_and_how_to_proceed(
    monkeypatch, dead_url, tmp_path
):
    offline_mnist(monkeypatch, dead_url)
    with pytest.raises(mnist.DatasetNotFoundError) as info:
        mnist.load_mnist_split("test")
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 400, msg
    host = dead_url.split("//")[1].rstrip("/")
    for needed in (IMAGES, host, "unreachable", "data_dir=", "$XPNET_DATA_DIR"):
        assert needed in msg
    assert msg.count(host) == 1  # each mirror once, not once per attempt
    assert not (tmp_path / "cache" / "xpnet" / "mnist" / IMAGES).exists()


def test_unwritable_destination_is_a_download_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(DownloadError, match="XDG_CACHE_HOME"):
        download_file(LABELS, blocker / "sub" / LABELS, ["http://x/"], Checksums())
