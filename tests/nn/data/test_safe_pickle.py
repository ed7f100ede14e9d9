"""Tests of nn/safe_pickle.py: arrays load, code in the pickle never runs."""

from __future__ import annotations

import builtins
import collections
import os
import pickle
import subprocess

import numpy as np
import pytest

from nn.data.safe_pickle import UnsafePickleError, load_array_dict


def test_book_sample_weight_loads_like_pickle(shared_data):
    path = shared_data / "book" / "sample_weight.pkl"
    params = load_array_dict(path)
    with open(path, "rb") as f:
        reference = pickle.load(f)  # trusted here: the book's real file
    shapes = {"W1": (784, 50), "b1": (50,), "W2": (50, 100), "b2": (100,),
              "W3": (100, 10), "b3": (10,)}  # fmt: skip
    assert {k: v.shape for k, v in params.items()} == shapes
    for key, value in params.items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, reference[key])


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("ordered", [False, True])
def test_round_trip_every_protocol(tmp_path, protocol, ordered):
    rng = np.random.default_rng(0)
    data = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f64": rng.standard_normal(5),
        "i64": np.arange(6).reshape(2, 3),
        "u8": np.arange(7, dtype=np.uint8),
        "fortran": np.asfortranarray(rng.standard_normal((4, 3))),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 3)),
        "big-endian": np.arange(4, dtype=">i4"),
        "record": np.zeros(2, dtype=[("a", "<f4"), ("b", "<i2")]),
    }
    obj = collections.OrderedDict(data) if ordered else data
    path = tmp_path / "w.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    out = load_array_dict(path)
    reference = pickle.loads(path.read_bytes())  # trusted: we just wrote it
    assert list(out) == list(data)
    for key, value in data.items():
        # (NumPy itself turns '>i4' into native int32 below protocol 5.)
        assert out[key].dtype == reference[key].dtype
        np.testing.assert_array_equal(out[key], value)


class SystemCall:
    """Unpickling runs ``os.system(command)``."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class WriteFile:
    """Unpickling runs ``open(path, "w")``: creates the file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (builtins.open, (str(self.path), "w"))


class Popen:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (subprocess.Popen, (["touch", str(self.path)],))


class Eval:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (builtins.eval, (f"open({str(self.path)!r}, 'w')",))


PAYLOADS = {
    "os.system": lambda marker: SystemCall(f"touch {marker}"),
    "open": WriteFile,
    "subprocess": Popen,
    "eval": Eval,
}
WRAPPERS = {
    "top level": lambda evil: evil,
    "dict value": lambda evil: {"W1": np.zeros(2), "b1": evil},
    "inside a list": lambda evil: {"W1": [np.zeros(2), evil]},
    "in an object array": lambda evil: {"W1": np.array([evil, 1], dtype=object)},
}


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, payload, wrapper):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(WRAPPERS[wrapper](PAYLOADS[payload](marker))))
    with pytest.raises(UnsafePickleError, match="refused") as info:
        load_array_dict(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_the_payload_is_real(tmp_path):
    # The plain pickle module does run it: the test above is meaningful.
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps({"W1": SystemCall(f"touch {marker}")}))
    assert marker.exists()


@pytest.mark.parametrize(
    "obj, problem",
    [
        ([np.zeros(2)], "holds a list"),
        ({"W1": 3.0}, "entry 'W1' is a float"),
        ({1: np.zeros(2)}, "entry 1"),
        ({"W1": np.float32(1.0)}, "float32"),
        ({"M": np.ma.masked_array([1.0, 2.0])}, "refused"),
        ({"M": np.array([None, 1], dtype=object)}, "object"),
    ],
)
def test_anything_but_a_dict_of_arrays_is_refused(tmp_path, obj, problem):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(UnsafePickleError, match=problem):
        load_array_dict(path)


@pytest.mark.parametrize("data", [b"", b"hello world", b"\x80\x04\x95"])
def test_not_a_pickle(tmp_path, data):
    path = tmp_path / "junk.pkl"
    path.write_bytes(data)
    with pytest.raises(UnsafePickleError, match="not a readable pickle") as info:
        load_array_dict(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "crafted",
    [
        b"c_codecs\nencode\n(Vabc\nVrot13\ntR.",  # an encoding other than latin1
        b"c__builtin__\nbytes\n(I1000000000000\ntR.",  # bytes(10**12): memory bomb
        b"cnumpy\ndtype\n(VO8\nI00\nI01\ntR.",  # object dtype
        b"cposix\nsystem\n(Vtouch /tmp/x\ntR.",  # protocol 0 spelling of os.system
        b"\x80\x02}q\x00Vk\nq\x01Q.",  # persistent id
        b"cnumpy\nndarray\n((I100000000000\nttR.",  # ndarray(shape): allocation
        b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n"
        b"(I100000000000\ntVb\ntR.",  # a huge shell to fill
    ],
    ids=[
        "codec",
        "bytes-bomb",
        "object-dtype",
        "posix-system",
        "persistent-id",
        "ndarray-call",
        "huge-shell",
    ],  # fmt: skip
)
def test_crafted_pickles_are_refused(tmp_path, crafted):
    path = tmp_path / "crafted.pkl"
    path.write_bytes(crafted)
    with pytest.raises(UnsafePickleError, match="refused|not allowed"):
        load_array_dict(path)
