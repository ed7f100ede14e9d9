"""backend/numba/blas.py: BLAS on the calling thread inside serial_blas()."""

from __future__ import annotations

import pytest

pytest.importorskip("numba")

from backend.base import Backend  # noqa: E402
from backend.numba import blas  # noqa: E402


def _blas_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    pools = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    if not pools:
        pytest.skip("no BLAS library that threadpoolctl can see")
    return [p["num_threads"] for p in pools]


def test_serial_blas_limits_blas_to_one_thread_and_restores_it():
    before = _blas_threads()
    with blas.serial_blas():
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before


def test_without_threadpoolctl_it_is_a_no_op(monkeypatch):
    monkeypatch.setattr(blas, "_controller", False)
    with blas.serial_blas():
        pass  # nothing to limit, and no error


def test_the_numba_backend_uses_it_and_the_base_class_does_nothing():
    import backend as B

    before = _blas_threads()
    with B.get_backend("numba").serial_blas():
        assert _blas_threads() == [1] * len(before)
    with Backend.serial_blas(B.get_backend("numpy")):
        assert _blas_threads() == before
