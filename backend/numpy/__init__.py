"""The NumPy backend: the reference every other backend is checked against."""

from __future__ import annotations

import numpy as np

from backend.base import Backend


class NumPyBackend(Backend):
    """Host arrays and NumPy's own kernels (BLAS for ``matmul``)."""

    name = "numpy"
    xp = np
    on_host = True


#: What the shim's registry instantiates for this backend.
BACKEND = NumPyBackend
