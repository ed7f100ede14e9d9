"""The error for data that is neither on disk nor downloadable: one short
paragraph (what is missing, where it looked, what to do), the library's
keyword in the library, the flag in the CLI; offline costs one attempt."""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

import nn
import nn.data.mnist as mnist
from nn.data.download import Checksums, DownloadError, download_file, is_offline

ROOT = Path(__file__).resolve().parents[3]
MIRRORS = ("https://mirror-one.example/mnist/", "https://mirror-two.example/mnist/")


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Host names never resolve (counted); a private empty cache; no env folders."""
    calls = []

    def getaddrinfo(host, *args, **kwargs):
        calls.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("XPNET_DATA_DIR", "XPNET_MNIST_MIRROR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {})
    info = dataclasses.replace(mnist.DATASETS["mnist"], mirrors=MIRRORS)
    monkeypatch.setitem(mnist.DATASETS, "mnist", info)
    monkeypatch.setattr(mnist, "DOWNLOAD_OPTIONS", {"retries": 2, "backoff": 5.0})
    return calls


def test_offline_is_one_attempt_not_one_per_mirror_and_retry(no_network, tmp_path):
    with pytest.raises(DownloadError) as info:
        download_file(
            "f.gz", tmp_path / "f.gz", MIRRORS, Checksums(), retries=2, backoff=5.0
        )
    assert info.value.offline
    assert no_network == ["mirror-one.example"]  # no retry, no second mirror
    assert len(info.value.attempts) == 1


@pytest.mark.parametrize(
    ("exc", "offline"),
    [
        (urllib.error.URLError(socket.gaierror(-3, "Temporary failure")), True),
        (urllib.error.URLError(OSError(errno.ENETUNREACH, "unreachable")), True),
        (urllib.error.URLError(ConnectionRefusedError(111, "refused")), False),
        (urllib.error.URLError(FileNotFoundError(2, "no such file")), False),
        (TimeoutError(), False),
    ],
)
def test_what_counts_as_offline(exc, offline):
    # A refused connection is one mirror down (maybe a local one), not offline.
    assert is_offline(exc) is offline


def test_library_message_is_a_short_paragraph_with_the_keyword(no_network):
    with pytest.raises(nn.DatasetNotFoundError) as info:
        nn.load_mnist()
    msg = str(info.value)
    assert len(no_network) == 1
    assert "\n" not in msg and len(msg) < 450, (len(msg), msg)
    cache = str(mnist.cache_root() / "mnist")
    assert msg.startswith("MNIST is not on this machine")
    assert "train-images-idx3-ubyte.gz" in msg and msg.count(cache) == 1
    assert "no network" in msg and "data_dir=" in msg and "$XPNET_DATA_DIR" in msg
    assert "--data-dir" not in msg and "mirror-one" not in msg
    assert "load_mnist_split('test')" in msg  # chapter 3's way round, in Python
    # One exception in the traceback, not urllib's and the socket's before it.
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_cli_message_names_the_flag_and_no_python(no_network):
    cli = nn.DatasetNotFoundError
    with pytest.raises(cli) as info:
        mnist.load_mnist_split("train")
    text = info.value.cli_message
    assert "--data-dir DIR" in text and "$XPNET_DATA_DIR" in text
    assert "data_dir=" not in text and "load_mnist_split" not in text
    assert len(text) < 400, (len(text), text)


def test_each_folder_is_named_once(no_network, tmp_path):
    folder = tmp_path / "given"
    folder.mkdir()
    with pytest.raises(nn.DatasetNotFoundError) as info:
        nn.load_mnist_split("test", data_dir=folder)
    msg = str(info.value)
    assert msg.count(str(folder)) == 1 and f"{folder} (and its mnist/)" in msg
    assert msg.count(str(mnist.cache_root() / "mnist")) == 1, msg
    assert "load_mnist_split" not in msg  # the test split needs no hint


def test_train_py_without_data(tmp_path):
    """Plain ``python train.py`` where MNIST is absent: one short paragraph.

    The mirror is a ``.invalid`` host (never resolvable), which the loader
    takes as offline before the built-in mirrors, so this needs no network.
    """
    env = dict(os.environ)
    env.update(
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XPNET_MNIST_MIRROR="http://xpnet-test.invalid/",
        MPLBACKEND="Agg",
    )
    env.pop("XPNET_DATA_DIR", None)
    proc = subprocess.run(
        [sys.executable, "train.py", "--device", "cpu", "--out", tmp_path / "run"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    prefix = "train.py: error: MNIST is not on this machine"
    assert err.startswith(prefix) and len(err) < 400 + len("train.py: error: "), err
    assert "--data-dir DIR" in err and "$XPNET_DATA_DIR" in err and "online" in err
    assert "data_dir=" not in err and "load_mnist_split" not in err
    assert err.count(str(tmp_path / "cache" / "xpnet" / "mnist")) == 1
    assert not (tmp_path / "run").exists()
