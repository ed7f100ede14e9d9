"""Property tests of the shim (Hypothesis): skipped where Hypothesis is not
installed, so that a GPU machine with only NumPy, CuPy and pytest collects the
rest of the suite."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hypothesis")

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
from hypothesis import given, settings

import backend as B


@settings(max_examples=40, deadline=None, database=None)
@given(
    values=hnp.arrays(
        dtype=st.sampled_from([np.float64, np.float32]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3),
        elements={"allow_nan": True, "allow_infinity": True},
    )
)
def test_numerical_gradient_restores_any_floats_bitwise(values):
    for name in ("numpy", "numba", "cupy"):
        try:
            be = B.get_backend(name)
        except B.BackendUnavailableError:
            continue
        x = be.asarray(values.copy())
        with np.errstate(all="ignore"):
            grad = be.numerical_gradient(lambda w, xp=be.xp: xp.sum(w * w), x)
        assert grad.shape == values.shape
        assert B.to_numpy(x).tobytes() == values.tobytes(), name
