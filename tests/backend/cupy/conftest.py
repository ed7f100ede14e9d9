"""Fixtures shared by the CUDA kernel and CuPy backend tests."""

from __future__ import annotations

import pytest
from cuda_emulator import build_host_library, host_compiler


@pytest.fixture(scope="session")
def host_lib(tmp_path_factory):
    """backend/cupy/softmax.cu compiled as host C++ (see cuda_emulator.py)."""
    if host_compiler() is None:
        pytest.skip("no C++ compiler (g++/clang++) to run softmax.cu on the host")
    return build_host_library(tmp_path_factory.mktemp("cuda_host"))
