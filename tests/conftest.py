"""Shared fixtures: one test body for every backend, and the real-data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from cupy_standin.hostcc import compiler
from cupy_standin.install import installed, real_gpu_backend

import backend as B

ROOT = Path(__file__).resolve().parents[1]
BACKEND_NAMES = ["numpy", "numba", "cupy"]
#: Set to 1 on a GPU machine: an unavailable cupy backend then fails, not skips.
REQUIRE_GPU = "XPNET_REQUIRE_GPU"


def _skip_reason(name: str) -> str | None:
    try:
        B.get_backend(name)
    except B.BackendUnavailableError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def real_gpu():
    """The CuPy backend on a real GPU, or None (then tests use the stand-in)."""
    be = real_gpu_backend()
    if be is None and os.environ.get(REQUIRE_GPU) == "1":
        pytest.fail(
            f"{REQUIRE_GPU}=1 but the cupy backend is unavailable: "
            f"{_skip_reason('cupy')}"
        )
    return be


@pytest.fixture(params=BACKEND_NAMES)
def backend(request):
    """Each backend in turn, made current for the test and restored after.

    ``cupy`` is the real GPU where there is one, else the CuPy stand-in
    (tests/cupy_standin), so that the CuPy backend's code runs everywhere.
    Skips (with the reason) a backend whose library is missing.
    """
    previous = B.current()
    if request.param == "cupy" and request.getfixturevalue("real_gpu") is None:
        if compiler() is None:
            pytest.skip("no C++ compiler: the CuPy stand-in runs the kernels with it")
        with installed() as be:
            B.use(be)
            yield be
            B.use(previous)
        return
    reason = _skip_reason(request.param)
    if reason:
        pytest.skip(f"{request.param} backend unavailable: {reason}")
    be = B.use(request.param)
    yield be
    B.use(previous)


def pytest_collection_modifyitems(items):
    """Mark every test that runs on the cupy backend ``gpu``: ``pytest -m gpu``
    then runs the whole suite's CuPy cases plus tests/gpu (on a machine without
    a GPU, all of them on the stand-in)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "cupy":
            item.add_marker(pytest.mark.gpu)


@pytest.fixture
def to_host():
    """Convert any backend's array (or scalar) to float64 host NumPy."""
    return lambda a: np.asarray(B.to_numpy(a), dtype=np.float64)


def shared_data_dir() -> Path | None:
    """``$XPNET_SHARED_DATA`` or ``../shared/data`` beside the repo, if present."""
    env = os.environ.get("XPNET_SHARED_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data():
    """The real-data folder; skips when absent, fails under XPNET_REQUIRE_DATA=1."""
    path = shared_data_dir()
    if path is None:
        if os.environ.get("XPNET_REQUIRE_DATA") == "1":
            pytest.fail(
                "real data required (XPNET_REQUIRE_DATA=1) but ../shared/data "
                "is missing"
            )
        pytest.skip(
            "real data not found: set XPNET_SHARED_DATA or place ../shared/data"
        )
    return path
