"""``--device auto``: what it says on a machine without a usable GPU.

Without an NVIDIA driver it picks a CPU backend without importing CuPy and
says only ``no NVIDIA GPU found``; with a driver but no CuPy it names the
extra for that driver's CUDA version. The driver probe is monkeypatched.
"""

from __future__ import annotations

import sys
import warnings

import pytest

import backend as B
from backend.cupy import detect
from nn.training.cli import _select_device


@pytest.fixture
def fresh(monkeypatch):
    """An empty backend cache and no process default, restored afterwards;
    -> the list of backend names the shim loads."""
    monkeypatch.setattr(B, "_current", None)
    monkeypatch.setattr(B, "_instances", {})
    loaded = []
    load = B._load

    def counting(name):
        loaded.append(name)
        return load(name)

    monkeypatch.setattr(B, "_load", counting)
    return loaded


def driver(monkeypatch, version):
    monkeypatch.setattr(detect, "driver_cuda_version", lambda: version)


def test_no_driver_chooses_a_cpu_backend_quietly_and_never_tries_cupy(
    fresh, monkeypatch
):
    driver(monkeypatch, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all
        be = B.get_backend("auto")
    assert be.on_host and "cupy" not in fresh
    chosen, why = B.choose_auto()
    assert chosen is be and why.startswith("no NVIDIA GPU found")


def test_cli_line_without_a_gpu(fresh, monkeypatch):
    pytest.importorskip("numba")
    driver(monkeypatch, None)
    previous = B.current()
    try:
        be, line = _select_device("auto")
    finally:
        B.use(previous)
    assert be.name == "numba"
    assert line.startswith("backend: numba (") and line.endswith(
        "; --device auto: no NVIDIA GPU found)"
    )
    for word in ("fell back", "CuPy", "cupy", "cuda", "pip install"):
        assert word not in line


@pytest.mark.parametrize(
    ("version", "needles", "absent"),
    [
        (12040, ["CUDA 12.4", 'pip install "xpnet[cuda12]"'], "cuda13"),
        (13020, ["CUDA 13.2", 'pip install "xpnet[cuda13]"'], "cuda12"),
        (0, ['"xpnet[cuda13]" (or "xpnet[cuda12]"'], "for CUDA"),
        (11080, ["CUDA 11.8", "update the driver"], "cuda13"),
    ],
)
def test_driver_without_cupy_names_the_exact_extra(
    fresh, monkeypatch, version, needles, absent
):
    driver(monkeypatch, version)
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` fails
    previous = B.current()
    try:
        be, line = _select_device("auto")  # says it in its line, not as a warning
    finally:
        B.use(previous)
    assert be.on_host and "cupy" in fresh
    assert "--device auto: cupy: " in line and "fell back" not in line
    for needle in needles:
        assert needle in line, line
    assert absent not in line


class FakeLibcuda:
    def __init__(self, version):
        self.version = version

    def cuDriverGetVersion(self, ref):  # noqa: N802 (the driver API's name)
        ref._obj.value = self.version
        return 0


@pytest.mark.parametrize(
    ("lib", "proc", "expected"),
    [
        (None, False, None),  # neither the library nor the kernel driver
        (None, True, 0),  # kernel driver loaded, library not found
        (FakeLibcuda(12080), False, 12080),
    ],
)
def test_driver_probe(monkeypatch, lib, proc, expected):
    def cdll(name):
        assert name == detect.LIBCUDA
        if lib is None:
            raise OSError(f"{name}: cannot open shared object file")
        return lib

    monkeypatch.setattr(detect.ctypes, "CDLL", cdll)
    monkeypatch.setattr(detect.os.path, "exists", lambda p: proc)
    assert detect.driver_cuda_version() == expected
