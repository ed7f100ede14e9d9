"""Checkpoints: exact round trips, atomic writes, clear errors for bad files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from nn.training.checkpoint import (
    CHECKPOINT_NAME,
    FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)


def make_checkpoint(seed: int = 0, hidden: int = 5) -> Checkpoint:
    rng = np.random.default_rng(seed)
    rng.standard_normal(7)  # move the state away from the seed's
    return Checkpoint(
        params={
            "W1": rng.standard_normal((8, hidden)).astype(np.float32),
            "b1": rng.standard_normal(hidden).astype(np.float32),
            "W2": rng.standard_normal((hidden, 3)).astype(np.float32),
            "b2": rng.standard_normal(3).astype(np.float32),
        },
        iteration=42,
        config={"hidden_size": hidden, "lr": 0.1, "seed": seed},
        optimizer={"lr": 0.1},
        rng_state=rng.bit_generator.state,
        dataset="fashion-mnist",
        backend="numba",
        elapsed=3.25,
        history={"loss": [2.3, 2.1, float("nan")], "eval_iteration": [0, 42]},
    )


def test_round_trip_is_exact(tmp_path):
    ckpt = make_checkpoint()
    path = save_checkpoint(tmp_path, ckpt)
    assert path == tmp_path / CHECKPOINT_NAME
    back = load_checkpoint(tmp_path)
    for key, value in ckpt.params.items():
        assert back.params[key].dtype == value.dtype
        np.testing.assert_array_equal(back.params[key], value)
    assert (back.iteration, back.dataset, back.backend) == (
        42,
        "fashion-mnist",
        "numba",
    )
    assert back.config == ckpt.config and back.optimizer == {"lr": 0.1}
    assert back.elapsed == 3.25 and back.format_version == FORMAT_VERSION
    np.testing.assert_array_equal(back.history["loss"], [2.3, 2.1, np.nan])
    assert back.history["eval_iteration"].tolist() == [0, 42]
    # The 128-bit PCG64 state survives JSON: both generators continue alike.
    a, b = np.random.default_rng(), np.random.default_rng()
    a.bit_generator.state = ckpt.rng_state
    b.bit_generator.state = back.rng_state
    np.testing.assert_array_equal(a.integers(0, 2**62, 20), b.integers(0, 2**62, 20))


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, make_checkpoint(seed=1))
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(tmp_path, make_checkpoint(seed=2))
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file_is_a_clear_error(tmp_path, fraction):
    path = save_checkpoint(tmp_path, make_checkpoint())
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match="truncated or corrupt|not an xpnet"):
        load_checkpoint(path)


def _write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "new.npz"
    meta = json.dumps({"iteration": 1})
    _write_npz(path, format_version=np.int64(FORMAT_VERSION + 1), meta=np.asarray(meta))
    with pytest.raises(CheckpointError, match=r"newer than this xpnet.*upgrade"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"W1": np.zeros(3)}, "not an xpnet checkpoint"),
        (
            {"format_version": np.int64(1), "meta": np.asarray("{not json")},
            "damaged 'meta'",
        ),
        (
            {"format_version": np.int64(1), "meta": np.asarray('{"iteration": 3}')},
            "damaged 'meta'",
        ),
    ],
)
def test_foreign_or_damaged_npz_is_refused(tmp_path, arrays, message):
    path = tmp_path / "x.npz"
    _write_npz(path, **arrays)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


PAYLOAD_RUNS = []


def _payload():
    PAYLOAD_RUNS.append(1)


class Payload:
    def __reduce__(self):
        return (_payload, ())


def test_pickled_arrays_are_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    obj = np.empty(1, dtype=object)
    obj[0] = Payload()
    _write_npz(path, format_version=np.int64(1), meta=np.asarray("{}"), W1=obj)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert PAYLOAD_RUNS == []


@pytest.mark.parametrize(
    "content", [b"", b"not a zip at all", b"PK\x05\x06" + b"\0" * 18]
)
def test_garbage_files_are_refused(tmp_path, content):
    path = tmp_path / CHECKPOINT_NAME
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(tmp_path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere.npz")


def test_corrupt_member_inside_a_valid_zip(tmp_path):
    path = save_checkpoint(tmp_path, make_checkpoint())
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    members["param.W1.npy"] = members["param.W1.npy"][:-40]  # short payload
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        (
            {"W1": (8, 7), "b1": (7,), "W2": (7, 3), "b2": (3,)},
            r"W1 has shape \(8, 5\)",
        ),
        ({"W1": (8, 5), "b1": (5,)}, "another network"),
    ],
)
def test_other_network_shapes_are_refused(expected, message):
    with pytest.raises(CheckpointError, match=message):
        make_checkpoint().check_params(expected)


def test_matching_shapes_pass():
    make_checkpoint().check_params({"W1": (8, 5), "b1": (5,), "W2": (5, 3), "b2": (3,)})
