"""Tests of ``python -m nn.inference``, chapter 3's command line."""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

import backend as B
import nn.data.mnist as mnist
from nn.data.safe_pickle import load_array_dict
from nn.inference import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in ("XPNET_DATA_DIR", "XPNET_SAMPLE_WEIGHT", "XPNET_MNIST_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {})
    monkeypatch.setattr(B, "_current", B._current)  # main() selects a backend


@pytest.fixture
def paths(shared_data):
    return {
        "weights": str(shared_data / "book" / "sample_weight.pkl"),
        "data": str(shared_data / "mnist"),
    }


def run_module(*args, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "nn.inference", *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip


def test_book_figure_from_the_command_line(paths):
    proc = run_module(
        "--weights",
        paths["weights"],
        "--data-dir",
        paths["data"],
        "--batch-size",
        "100",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Accuracy:0.9352 (9352/10000 correct)" in proc.stdout
    assert re.search(r"time: [0-9.]+ s inference \(batch size 100", proc.stdout)
    # The default device is auto, as train.py's: one line says what it chose.
    first = proc.stdout.splitlines()[0]
    assert first.startswith("backend: ") and "--device auto" in first
    assert proc.stdout.count("backend: ") == 1
    assert proc.stderr == ""


def test_weights_from_the_environment_and_raw_pixels(paths):
    proc = run_module(
        "--data-dir", paths["data"], "--no-normalize", "--batch-size", "1000",
        env_extra={"XPNET_SAMPLE_WEIGHT": paths["weights"]},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Accuracy:0.9207" in proc.stdout and "raw 0..255" in proc.stdout


@pytest.mark.parametrize("batch_size", ["1", "7", "10000"])
def test_batch_size_does_not_change_the_accuracy(paths, capsys, batch_size):
    args = ["--weights", paths["weights"], "--data-dir", paths["data"]]
    assert main([*args, "--batch-size", batch_size]) == 0
    assert "Accuracy:0.9352" in capsys.readouterr().out


def test_data_dir_from_the_environment(paths, monkeypatch, capsys):
    monkeypatch.setenv("XPNET_DATA_DIR", paths["data"])
    assert main(["--weights", paths["weights"]]) == 0
    assert "Accuracy:0.9352" in capsys.readouterr().out


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_missing_weights_setting_is_a_usage_error(paths, capsys):
    assert main(["--data-dir", paths["data"]]) == 2
    err = one_line_error(capsys)
    assert "--weights" in err and "XPNET_SAMPLE_WEIGHT" in err


def test_weights_file_not_found(paths, tmp_path, capsys):
    assert main(["--weights", str(tmp_path / "nope.pkl")]) == 2
    assert "does not exist" in one_line_error(capsys)


def test_unknown_device_is_a_usage_error(paths, capsys):
    assert main(["--weights", paths["weights"], "--device", "tpu"]) == 2
    assert "unknown backend" in one_line_error(capsys)


def test_missing_data_dir(paths, tmp_path, capsys):
    assert main(["--weights", paths["weights"], "--data-dir", str(tmp_path / "x")]) == 1
    assert "does not exist" in one_line_error(capsys)


def test_data_dir_without_files_and_no_download(paths, tmp_path, capsys):
    args = ["--weights", paths["weights"], "--data-dir", str(tmp_path), "--no-download"]
    assert main(args) == 1
    err = one_line_error(capsys)
    assert "looked for t10k-images-idx3-ubyte.gz in" in err


def test_offline_download_failure_is_one_paragraph(
    paths, tmp_path, monkeypatch, capsys
):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    info = dataclasses.replace(mnist.DATASETS["mnist"], mirrors=(dead,))
    monkeypatch.setitem(mnist.DATASETS, "mnist", info)
    monkeypatch.setattr(mnist, "DOWNLOAD_OPTIONS", dict(retries=0, timeout=2.0))
    data = tmp_path / "data"
    data.mkdir()
    assert main(["--weights", paths["weights"], "--data-dir", str(data)]) == 1
    err = one_line_error(capsys)
    host = dead.split("//")[1].rstrip("/")
    assert host in err and "unreachable" in err
    assert "--data-dir DIR" in err and "data_dir=" not in err
    folders = (str(data), str(mnist.cache_root() / "mnist"))
    assert all(err.count(f) == 1 for f in folders)  # each place once
    assert len(err) - sum(map(len, folders)) < 320, err


def test_malicious_weights_are_refused(paths, tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"W1": Evil()}))
    assert main(["--weights", str(path), "--data-dir", paths["data"]]) == 1
    assert "refused to load" in one_line_error(capsys)
    assert not marker.exists()


def test_bad_batch_size_exits_2_from_the_command_line():
    proc = run_module("--batch-size", "0")
    assert proc.returncode == 2
    assert "must be a positive integer" in proc.stderr
    assert "Traceback" not in proc.stderr


def bad_weights(kind: str, book: dict) -> object:
    """The book's weights spoiled one way (see BAD_WEIGHTS)."""
    w = dict(book)
    if kind == "int W1":
        w["W1"] = (w["W1"] * 100).astype(np.int64)
    elif kind == "bool W1":
        w["W1"] = w["W1"] > 0
    elif kind == "complex W3":
        w["W3"] = w["W3"].astype(np.complex64)
    elif kind == "strings b2":
        w["b2"] = np.array(["x"] * 100)
    elif kind == "object W1":
        w["W1"] = np.array([1, "a"], dtype=object)
    elif kind == "missing b3":
        del w["b3"]
    elif kind == "empty dict":
        w = {}
    elif kind == "a list":
        w = list(w.values())
    elif kind == "W1 rows":
        w["W1"] = w["W1"][:100]
    elif kind == "W2 shape":
        w["W2"] = w["W2"][:10]
    elif kind == "b1 shape":
        w["b1"] = w["b1"][:7]
    elif kind == "W1 3-d":
        w["W1"] = w["W1"].reshape(784, 5, 10)
    elif kind == "5 classes":
        w["W3"], w["b3"] = w["W3"][:, :5], w["b3"][:5]
    elif kind == "NaN W3":
        w["W3"] = np.full_like(w["W3"], np.nan)
    elif kind == "scalar b1":
        w["b1"] = np.float32(0.5)
    return w


#: kind -> words the one-line error must contain (besides the file's path).
BAD_WEIGHTS = {
    "int W1": ["W1 holds int64", "float32"],
    "bool W1": ["W1 holds bool", "float32"],
    "complex W3": ["W3 holds complex64"],
    "strings b2": ["b2 holds <U1"],
    "object W1": ["object array", "refused"],
    "missing b3": ["missing b3", "needs W1, b1, W2, b2, W3, b3"],
    "empty dict": ["missing W1, b1, W2, b2, W3, b3"],
    "a list": ["holds a list", "dict"],
    "W1 rows": ["W1 has shape (100, 50), expected (784, M)", "784 pixels"],
    "W2 shape": ["W2 has shape (10, 100), expected (50, M)"],
    "b1 shape": ["b1 has shape (7,), expected (50,)"],
    "W1 3-d": ["W1 has shape (784, 5, 10)"],
    "5 classes": ["W3 has shape (100, 5), expected (100, 10)", "10 classes"],
    "NaN W3": ["W3 contains NaN"],
    "scalar b1": ["'b1' is a float32"],
}


@pytest.mark.parametrize("kind", BAD_WEIGHTS)
def test_unusable_weights_are_one_clear_error(kind, paths, tmp_path):
    book = load_array_dict(paths["weights"])
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps(bad_weights(kind, book)))
    # The weights are checked before any data is looked for or downloaded.
    empty = tmp_path / "no-data"
    empty.mkdir()
    proc = run_module("--weights", str(path), "--data-dir", str(empty), "--no-download")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = proc.stderr
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert f"weights {path}: " in err
    assert "ch03/sample_weight.pkl" in err  # the fix
    for words in BAD_WEIGHTS[kind]:
        assert words in err, err


def test_float16_and_float64_weights_still_work(paths, tmp_path, capsys):
    book = load_array_dict(paths["weights"])
    w = {
        k: v.astype(np.float64 if k[0] == "W" else np.float16) for k, v in book.items()
    }
    path = tmp_path / "mixed.pkl"
    path.write_bytes(pickle.dumps({**w, "note": np.arange(3)}))  # extras ignored
    assert main(["--weights", str(path), "--data-dir", paths["data"]]) == 0
    assert "Accuracy:0.935" in capsys.readouterr().out
