"""Fixtures shared by the CUDA source checks of the CuPy backend's tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def _nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    candidate = Path("/usr/local/cuda/bin/nvcc")
    return str(candidate) if candidate.exists() else None


@pytest.fixture(scope="module")
def nvcc():
    """The path of nvcc; skips where the CUDA Toolkit is not installed."""
    path = _nvcc()
    if path is None:
        pytest.skip("nvcc not found: install the CUDA Toolkit to compile-check kernels")
    return path
