"""Downloads cut at random byte offsets, or served wrong, leave nothing trusted.

A local HTTP server on 127.0.0.1 serves the real MNIST test labels, cut after
a random number of bytes (with and without a Content-Length header), or
wrong: bytes flipped, another dataset's file, an HTML page, an empty body, a
gzip of different content. ``load_mnist_split`` goes through the real
mirror list (``$XPNET_MNIST_MIRROR``; the built-in mirrors are replaced by a
dead local port so that nothing leaves the machine). Each fault must give a
one-line DatasetNotFoundError and leave no file in the cache; a later load
from a good mirror must return exactly the real data. A download process
SIGKILLed mid-transfer leaves at most a hidden ``.part`` file that no later
load reads, and that the next download removes once it is stale.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from http_fixtures import QuietHandler, dead_url, serve_http
from reliability_support import ROOT, child_env

import nn.data.mnist as mnist
from nn.data.download import MIRROR_ENV
from nn.data.fileio import STALE_AFTER
from nn.data.idx import read_idx

LABELS = "t10k-labels-idx1-ubyte.gz"
IMAGES = "t10k-images-idx3-ubyte.gz"
FAST = {"retries": 1, "timeout": 5.0, "backoff": 0.0}
SEED = 9
#: Transfers cut at a random byte offset, with / without Content-Length (README).
CUT_WITH_LENGTH, CUT_WITHOUT_LENGTH = 12, 6
WRONG_BODIES = ("flipped-byte", "other-dataset", "html-page", "empty", "other-content")
#: Download processes SIGKILLed after a random number of bytes (README).
KILLED_DOWNLOADS = 3
DOWNLOAD_FAULTS = (
    CUT_WITH_LENGTH + CUT_WITHOUT_LENGTH + len(WRONG_BODIES) + KILLED_DOWNLOADS
)


def offsets(count: int, size: int, salt: int) -> list[int]:
    """``count`` cut points in [0, size): always 0 and size - 1, the rest random."""
    rng = np.random.default_rng([SEED, salt])
    return sorted({0, size - 1, *rng.integers(1, size - 1, count - 2).tolist()})[:count]


class Handler(QuietHandler):
    """``/<mode>/<param>/<file>``: ok, cut, nolength, wrong, stall."""

    files: dict = {}
    sent = threading.Event()

    def do_GET(self):
        mode, param, name = self.path.strip("/").split("/")
        body = self.files.get(name)
        if body is None:
            self.send_error(404)
            return
        if mode == "wrong":
            body = wrong_body(param, body)
        length = len(body)
        if mode in ("cut", "nolength", "stall"):
            body = body[: int(param)]
        self.send_response(200)
        if mode != "nolength":
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if mode == "stall":
            self.sent.set()
            time.sleep(30)  # the client is killed meanwhile
        self.close_connection = True


def wrong_body(kind: str, body: bytes) -> bytes:
    if kind == "flipped-byte":
        i = len(body) // 2
        return body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
    if kind == "other-dataset":
        return Handler.files["fashion-" + LABELS]
    if kind == "html-page":
        return b"<html><body>Rate limit exceeded</body></html>"
    if kind == "empty":
        return b""
    labels = gzip.decompress(body)  # valid gzip IDX, one label changed
    return gzip.compress(labels[:-1] + bytes([(labels[-1] + 1) % 10]))


@pytest.fixture(scope="module")
def server(shared_data):
    Handler.files = {
        LABELS: (shared_data / "mnist" / LABELS).read_bytes(),
        "fashion-" + LABELS: (shared_data / "fashion-mnist" / LABELS).read_bytes(),
    }
    with serve_http(Handler) as url:
        yield url


@pytest.fixture
def offline(monkeypatch, tmp_path, shared_data):
    """Built-in mirrors replaced by a dead local port; data_dir holds the images.

    -> (data_dir, reference labels).
    """
    info = dataclasses.replace(mnist.DATASETS["mnist"], mirrors=(dead_url(),))
    monkeypatch.setitem(mnist.DATASETS, "mnist", info)
    monkeypatch.setattr(mnist, "DOWNLOAD_OPTIONS", FAST)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / IMAGES).symlink_to(shared_data / "mnist" / IMAGES)
    return data_dir, read_idx(shared_data / "mnist" / LABELS)


def cache_files() -> list[str]:
    folder = mnist.cache_root() / "mnist"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def assert_refused_then_recovers(mirror, server, data_dir, labels, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, mirror)
    with pytest.raises(mnist.DatasetNotFoundError) as info:
        mnist.load_mnist_split("test", data_dir=data_dir)
    assert "\n" not in str(info.value) and LABELS in str(info.value)
    assert cache_files() == [], "a failed download left a file in the cache"
    monkeypatch.setenv(MIRROR_ENV, f"{server}/ok/0/")
    _, t = mnist.load_mnist_split("test", data_dir=data_dir)
    np.testing.assert_array_equal(t, labels)
    assert cache_files() == ["parsed-test.npz", LABELS]


def cut_cases():
    size = 4542  # bytes of the stored t10k labels .gz (checked in the test)
    return [("cut", o) for o in offsets(CUT_WITH_LENGTH, size, 1)] + [
        ("nolength", o) for o in offsets(CUT_WITHOUT_LENGTH, size, 2)
    ]


@pytest.mark.parametrize("mode, offset", cut_cases())
def test_cut_transfer_leaves_nothing_trusted(
    mode, offset, server, offline, monkeypatch
):
    data_dir, labels = offline
    assert len(Handler.files[LABELS]) == 4542
    mirror = f"{server}/{mode}/{offset}/"
    assert_refused_then_recovers(mirror, server, data_dir, labels, monkeypatch)


@pytest.mark.parametrize("kind", WRONG_BODIES)
def test_mirror_serving_wrong_bytes_is_never_trusted(
    kind, server, offline, monkeypatch
):
    data_dir, labels = offline
    mirror = f"{server}/wrong/{kind}/"
    assert_refused_then_recovers(mirror, server, data_dir, labels, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("offset", offsets(KILLED_DOWNLOADS, 4542, 3))
def test_download_killed_mid_transfer(offset, server, offline, monkeypatch, tmp_path):
    data_dir, labels = offline
    Handler.sent.clear()
    code = (
        "import dataclasses, nn.data.mnist as m\n"
        "m.DATASETS['mnist'] = dataclasses.replace(m.DATASETS['mnist'], mirrors=())\n"
        f"m.load_mnist_split('test', data_dir={str(data_dir)!r})\n"
    )
    env = child_env(tmp_path / "cache", **{MIRROR_ENV: f"{server}/stall/{offset}/"})
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    try:
        assert Handler.sent.wait(30), "the child never started its download"
        time.sleep(0.05)  # let the bytes reach the child's .part file
    finally:
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    left = cache_files()
    assert LABELS not in left, "a cut download was put in place"
    assert all(name.startswith(".") and name.endswith(".part") for name in left), left
    old = time.time() - 2 * STALE_AFTER  # as if the kill were minutes ago
    for name in left:
        os.utime(mnist.cache_root() / "mnist" / name, (old, old))
    monkeypatch.setenv(MIRROR_ENV, f"{server}/ok/0/")
    _, t = mnist.load_mnist_split("test", data_dir=data_dir)
    np.testing.assert_array_equal(t, labels)
    # The next download into the cache removed the dead download's .part file.
    assert cache_files() == ["parsed-test.npz", LABELS]
