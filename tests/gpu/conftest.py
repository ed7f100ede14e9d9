"""GPU tests: the CuPy backend on a real CUDA device, else on the stand-in.

Where no GPU is usable they run on the CuPy stand-in (tests/cupy_standin),
so that they cannot rot; what they then verify is the Python side and the
kernels compiled for the host, not the device. Set ``XPNET_REQUIRE_GPU=1`` on
a GPU machine to make an unusable GPU a failure instead of a silent fallback
(``bench/gpu_report.py`` does).
"""

from __future__ import annotations

import pytest
from cupy_standin.hostcc import compiler
from cupy_standin.install import installed

import backend as B


@pytest.fixture(scope="session")
def cuda_backend(real_gpu):
    """The CuPy backend: the real GPU (``real_gpu`` fails under
    XPNET_REQUIRE_GPU=1 without one), else the stand-in."""
    if real_gpu is not None:
        yield real_gpu
        return
    if compiler() is None:
        pytest.skip("no GPU, and no C++ compiler for the CuPy stand-in")
    with installed() as be:
        yield be


@pytest.fixture
def on_gpu(cuda_backend):
    """The CuPy backend made current for one test, then restored."""
    previous = B.current()
    B.use(cuda_backend)
    yield cuda_backend
    B.use(previous)
