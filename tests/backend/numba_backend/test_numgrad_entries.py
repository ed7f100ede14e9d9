"""backend/numba/numgrad.py's entries of the first layer (found by hashing
the values' bits) against NumPy's np.unique, sample by sample."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from backend.numba import numgrad as ng  # noqa: E402


def _entries(x):
    x = np.ascontiguousarray(x, dtype=np.float64)
    return ng._distinct_inputs(x, x.view(np.int64))


def _inputs():
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (6, 784)).astype(np.float64) / 255  # the data
    pixels[1] = 0.0  # a blank image: only the bias entry
    distinct = rng.normal(size=(3, 300))  # every value distinct, negatives
    mixed = np.array([[0.5, -0.0, 0.0, 0.5, -0.5, 1.0, 1e-300, 0.5, 1.0, -0.5]])
    return [pixels, distinct, mixed]


@pytest.mark.parametrize("x", _inputs(), ids=["pixels", "distinct", "mixed"])
def test_entries_are_each_samples_distinct_non_zero_values_then_one(x):
    seg, values, pixel, entry = _entries(x)
    assert seg[0] == 0 and seg[-1] == values.size
    for n, row in enumerate(x):
        mine = values[seg[n] : seg[n + 1]]
        assert mine[-1] == 1.0  # b1's input
        want = np.unique(row[row != 0])
        np.testing.assert_array_equal(np.sort(mine[:-1]), want)
    # Every non-zero pixel, sample by sample and by column, points at its value.
    rows, cols = np.nonzero(x)
    np.testing.assert_array_equal(pixel, cols)
    np.testing.assert_array_equal(values[entry], x[rows, cols])
    assert np.all((seg[rows] <= entry) & (entry < seg[rows + 1] - 1))


def test_global_distinct_matches_unique():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 40, 5000) / 7.0
    uniq, which = ng._global_distinct(values, values.view(np.int64))
    np.testing.assert_array_equal(np.sort(uniq), np.unique(values))
    np.testing.assert_array_equal(uniq[which], values)
