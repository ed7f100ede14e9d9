"""``train.py`` against bad arguments and environments: one line, non-zero, no harm.

Every case runs the CLI in a workspace holding a finished run and a data
folder. Each must exit with the documented code (2 for usage errors, 1 for a
run that cannot start), print exactly one ``train.py: error:`` line on stderr
and nothing that looks like a traceback, and leave every file in the
workspace byte for byte as it was (no new files either). Most cases call
``train.main`` in-process (fast); a sample also runs ``python train.py`` as a
child process to check the real entry point.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile

import numpy as np
import pytest
from reliability_support import (
    child_env,
    run_train,
    tiny_train_args,
    tree_digest,
)

import backend as B
import nn.data.mnist as mnist
import train
from nn.data.download import DownloadError
from nn.training.checkpoint import CHECKPOINT_NAME

USAGE, FAILED = 2, 1
# (case id, flags replacing or adding to the tiny run's flags, exit code, stderr).
# A flag given as None is removed; True gives the flag without a value.
ARGUMENT_CASES = [
    ("unknown device", {"device": "tpu"}, USAGE, "invalid choice: 'tpu'"),
    ("zero hidden size", {"hidden-size": "0"}, USAGE, "at least 1"),
    ("negative hidden size", {"hidden-size": "-3"}, USAGE, "at least 1"),
    ("non-integer hidden size", {"hidden-size": "1e3"}, USAGE, "not an integer"),
    ("hidden size 2**63", {"hidden-size": str(2**63)}, USAGE, "below 2**63"),
    ("hidden size 10**12", {"hidden-size": str(10**12)}, FAILED, "not enough memory"),
    ("zero iterations", {"iters": "0"}, USAGE, "at least 1"),
    ("negative iterations", {"iters": "-5"}, USAGE, "at least 1"),
    ("zero epochs", {"iters": None, "epochs": "0"}, USAGE, "at least 1"),
    ("iters and epochs", {"epochs": "1"}, USAGE, "not allowed with"),
    ("zero batch size", {"batch-size": "0"}, USAGE, "at least 1"),
    ("negative batch size", {"batch-size": "-10"}, USAGE, "at least 1"),
    ("batch size 2**63", {"batch-size": str(2**63)}, USAGE, "below 2**63"),
    ("batch size 10**12", {"batch-size": str(10**12)}, FAILED, "out of memory"),
    ("non-numeric lr", {"lr": "abc"}, USAGE, "not a number"),
    ("empty lr", {"lr": ""}, USAGE, "not a number"),
    ("NaN lr", {"lr": "nan"}, USAGE, "positive number"),
    ("infinite lr", {"lr": "inf"}, USAGE, "positive number"),
    ("zero lr", {"lr": "0"}, USAGE, "positive number"),
    ("negative lr", {"lr": "-0.1"}, USAGE, "positive number"),
    ("negative seed", {"seed": "-1"}, USAGE, "non-negative"),
    ("non-integer seed", {"seed": "x"}, USAGE, "not an integer"),
    ("zero eval-every", {"eval-every": "0"}, USAGE, "at least 1"),
    ("unknown dtype", {"dtype": "float16"}, USAGE, "invalid choice"),
    ("unknown dataset", {"dataset": "cifar10"}, USAGE, "invalid choice"),
    ("unknown activation", {"activation": "tanh"}, USAGE, "invalid choice"),
    ("unknown gradient", {"grad": "magic"}, USAGE, "invalid choice"),
    ("unknown flag", {"colour": "red"}, USAGE, "unrecognized arguments"),
    ("missing data dir", {"data-dir": "{ws}/nowhere"}, USAGE, "does not exist"),
    (
        "out is a file",
        {"out": "{ws}/data/t10k-labels-idx1-ubyte.gz"},
        USAGE,
        "not a directory",
    ),
    (
        "out below a file",
        {"out": "{ws}/data/t10k-labels-idx1-ubyte.gz/run"},
        USAGE,
        "not writable",
    ),
    ("out holds a run", {"out": "{ws}/run"}, USAGE, "already holds a run"),
    ("resume missing", {"resume": "{ws}/nowhere"}, USAGE, "does not exist"),
    ("resume without run", {"out": None, "resume": True}, USAGE, "needs --out"),
    (
        "resume other hidden size",
        {"resume": "{ws}/run", "hidden-size": "16"},
        USAGE,
        "differs",
    ),
    (
        "resume other dataset",
        {"resume": "{ws}/run", "dataset": "mnist"},
        USAGE,
        "differs",
    ),
]
# (case id, damage done to the finished run's checkpoint, stderr).
CHECKPOINT_CASES = [
    ("truncated to 0 bytes", "truncate:0", "not a readable checkpoint"),
    ("truncated to 10%", "truncate:0.1", "not a readable checkpoint"),
    ("truncated to 50%", "truncate:0.5", "not a readable checkpoint"),
    ("truncated to 99%", "truncate:0.99", "not a readable checkpoint"),
    ("random bytes", "garbage", "not a readable checkpoint"),
    ("array header declaring 8 TiB", "bomb", "not a readable checkpoint"),
    ("newer format version", "version", "newer than this"),
    ("other network shape", "shape", "another network"),
    ("other input size", "input", "another network"),
    ("damaged meta record", "meta", "damaged 'meta'"),
    ("not a checkpoint", "foreign", "not an xpnet checkpoint"),
]
# (case id, what is broken, exit code, stderr).
ENVIRONMENT_CASES = [
    ("device without its library", "device", FAILED, "--device cuda"),
    ("unwritable out", "unwritable", None, "writ"),
    ("corrupt data file", "corrupt-data", FAILED, "cannot load fashion-mnist"),
    ("data dir lacking files, offline", "offline", FAILED, "is not on this machine"),
    ("XPNET_DATA_DIR names no folder", "env-data-dir", FAILED, "XPNET_DATA_DIR"),
]
#: Bad command lines and environments tried (README table).
CLI_CASES = len(ARGUMENT_CASES) + len(CHECKPOINT_CASES) + len(ENVIRONMENT_CASES)
#: Of which also run as a real ``python train.py`` child process.
SUBPROCESS_CASES = [
    "unknown device",
    "non-numeric lr",
    "truncated to 50%",
    "newer format version",
    "unwritable out",
]


@pytest.fixture(scope="module")
def finished_run(tiny_data, tmp_path_factory):
    """A finished 20-iteration run (checkpoint and metrics), made once."""
    tmp = tmp_path_factory.mktemp("finished")
    args = tiny_train_args(tiny_data, tmp / "run", iters=20)
    env = child_env(tmp / "cache", XPNET_FAULT_NO_PLOTS="1")
    proc = run_train(*args, env=env, faults=True)
    assert proc.returncode == 0, proc.stderr
    return tmp / "run"


@pytest.fixture
def workspace(tmp_path, tiny_data, finished_run):
    """tmp_path/ws with data/ (tiny dataset) and run/ (a finished run)."""
    ws = tmp_path / "ws"
    shutil.copytree(tiny_data, ws / "data")
    shutil.copytree(finished_run, ws / "run")
    return ws


@pytest.fixture(autouse=True)
def restore_backend():
    previous = B.current()
    yield
    B.use(previous)


def command_line(ws, changes: dict) -> list[str]:
    """The tiny run's flags in workspace ``ws``, with ``changes`` applied."""
    changes = {
        k: (v.format(ws=ws) if isinstance(v, str) else v) for k, v in changes.items()
    }
    data_dir = changes.pop("data-dir", f"{ws}/data")
    out = changes.pop("out", f"{ws}/new-run")
    return tiny_train_args(data_dir, out, **changes)


def run_in_process(argv, capsys) -> tuple[int, str]:
    try:
        code = train.main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


def damage_checkpoint(path, how: str) -> None:
    data = path.read_bytes()
    if how.startswith("truncate:"):
        path.write_bytes(data[: int(len(data) * float(how.split(":")[1]))])
        return
    if how == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
        return
    if how == "bomb":  # a valid checkpoint plus a 300-byte member claiming 8 TiB
        with zipfile.ZipFile(path, "a") as zf, zf.open("history.bomb.npy", "w") as f:
            header = {"descr": "<f8", "fortran_order": False, "shape": (2**40,)}
            np.lib.format.write_array_header_1_0(f, header)
            f.write(bytes(64))
        return
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    if how == "version":
        arrays["format_version"] = np.asarray(99)
    elif how == "shape":
        arrays["param.W1"] = np.zeros((784, 16), np.float32)
        arrays["param.b1"] = np.zeros(16, np.float32)
        arrays["param.W2"] = np.zeros((16, 10), np.float32)
    elif how == "input":
        arrays["param.W1"] = np.zeros((100, meta["config"]["hidden_size"]), np.float32)
    elif how == "meta":
        arrays["meta"] = np.asarray("{not json")
    elif how == "foreign":
        arrays = {"weights": arrays["param.W1"]}
    with zipfile.ZipFile(path, "w") as zf:  # np.savez, without touching the ws
        for key, value in arrays.items():
            with zf.open(f"{key}.npy", "w") as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)


def prepare(ws, case_id: str, monkeypatch) -> tuple[list[str], int, str]:
    """Set the workspace up for one case. -> (argv, exit code, stderr text)."""
    for cid, changes, code, text in ARGUMENT_CASES:
        if cid == case_id:
            return command_line(ws, changes), code, text
    for cid, how, text in CHECKPOINT_CASES:
        if cid == case_id:
            damage_checkpoint(ws / "run" / CHECKPOINT_NAME, how)
            return command_line(ws, {"resume": f"{ws}/run", "out": None}), USAGE, text
    _, what, code, text = next(c for c in ENVIRONMENT_CASES if c[0] == case_id)
    argv = command_line(ws, {})
    if what == "device":
        from backend.cupy import CuPyBackend  # the real CuPy, not the stand-in

        try:
            CuPyBackend()
            pytest.skip("a usable GPU is present: --device cuda would work")
        except B.BackendUnavailableError:
            pass
        # The CLI runs in this process, whose registry may hold the tests'
        # CuPy stand-in: make it find the real CuPy, as a user's process does.
        monkeypatch.delitem(B._instances, "cupy", raising=False)
        argv = command_line(ws, {"device": "cuda"})
    elif what == "unwritable":
        if os.geteuid() == 0:  # root writes anywhere; /proc accepts no new folders
            argv, code = (
                command_line(ws, {"out": "/proc/xpnet-reliability/run"}),
                FAILED,
            )
        else:
            (ws / "locked").mkdir()
            (ws / "locked").chmod(0o500)
            argv, code = command_line(ws, {"out": f"{ws}/locked/run"}), USAGE
    elif what == "corrupt-data":
        images = ws / "data" / "train-images-idx3-ubyte.gz"
        images.write_bytes(images.read_bytes()[:-100])
    elif what == "offline":
        (ws / "data" / "train-labels-idx1-ubyte.gz").unlink()

        def offline(*args, **kwargs):
            raise DownloadError("could not download (network unreachable)", [])

        monkeypatch.setattr(mnist, "download_file", offline)
    elif what == "env-data-dir":
        monkeypatch.setenv("XPNET_DATA_DIR", f"{ws}/missing")
        argv = command_line(ws, {"data-dir": None})
    return argv, code, text


ALL_CASES = (
    [c[0] for c in ARGUMENT_CASES]
    + [c[0] for c in CHECKPOINT_CASES]
    + [c[0] for c in ENVIRONMENT_CASES]
)


def check_outcome(code, err, expected_code, text, before, ws) -> None:
    """One error line, the exit code, and no harm to the workspace.

    A usage error changes nothing at all; a run that fails once started may
    only have created files in its new --out folder.
    """
    assert code == expected_code, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("train.py: error: "), err
    assert text in lines[0]
    assert "Traceback" not in err
    after = tree_digest(ws)
    assert {k: after.get(k) for k in before} == before, "an existing file changed"
    new = set(after) - set(before)
    assert not new or (code != USAGE and all("ws/new-run" in k for k in new)), new


@pytest.mark.parametrize("case_id", ALL_CASES)
def test_bad_input_is_one_line_and_harmless(workspace, case_id, capsys, monkeypatch):
    argv, code, text = prepare(workspace, case_id, monkeypatch)
    before = tree_digest(workspace)
    got, err = run_in_process(argv, capsys)
    check_outcome(got, err, code, text, before, workspace)


@pytest.mark.slow
@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_real_entry_point_gives_the_same_one_line(workspace, case_id, monkeypatch):
    argv, code, text = prepare(workspace, case_id, monkeypatch)
    before = tree_digest(workspace)
    proc = run_train(*argv, env=child_env(workspace.parent / "cache"))
    check_outcome(proc.returncode, proc.stderr, code, text, before, workspace)
    assert proc.stdout == ""
