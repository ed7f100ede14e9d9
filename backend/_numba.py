"""The Numba backend: NumPy arrays, Numba-jitted CPU kernels."""

from __future__ import annotations

import numpy as np

from backend._base import Backend, BackendUnavailableError


def _import_numba():
    try:
        import numba
    except ImportError as exc:
        raise BackendUnavailableError(
            'the numba backend needs Numba: pip install "xpnet[numba]"'
        ) from exc
    return numba


class NumbaBackend(Backend):
    """Host NumPy arrays with jitted kernels where they beat NumPy."""

    name = "numba"
    xp = np
    on_host = True

    def __init__(self):
        self.numba = _import_numba()

    def describe(self) -> str:
        return f"numba ({self.numba.__version__}, numpy {np.__version__}, CPU)"
