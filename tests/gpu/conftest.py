"""GPU-only tests: the CuPy backend on a real CUDA device.

Skipped with the detection message where no GPU is usable; set
``XPNET_REQUIRE_GPU=1`` to turn that skip into a failure (on a GPU machine,
so that a broken driver or install cannot pass as "skipped").
"""

from __future__ import annotations

import os

import pytest

import backend as B


@pytest.fixture(scope="session")
def cuda_backend():
    """The CuPy backend, or a skip naming why it is unavailable."""
    try:
        return B.get_backend("cupy")
    except B.BackendUnavailableError as exc:
        if os.environ.get("XPNET_REQUIRE_GPU") == "1":
            pytest.fail(
                f"XPNET_REQUIRE_GPU=1 but the cupy backend is unavailable: {exc}"
            )
        pytest.skip(f"no usable CUDA GPU: {exc}")


@pytest.fixture
def on_gpu(cuda_backend):
    """The CuPy backend made current for one test, then restored."""
    previous = B.current()
    B.use(cuda_backend)
    yield cuda_backend
    B.use(previous)
