"""Chapter 6's CUDA kernels (backend/cupy/updates.cu) on the stand-in: each
update rule and Dropout's mask against the NumPy backend, with their launches."""

from __future__ import annotations

import cupy_standin as cp
import numpy as np
import pytest

import backend as B
from backend.cupy.updates import FusedUpdates

SHAPES = [(5, 4), (4,), (4, 3), (3,)]
RULES = {
    "momentum": ("momentum_update", (0.05, 0.8), 1),
    "nesterov": ("nesterov_update", (0.05, 0.8), 1),
    "adagrad": ("adagrad_update", (0.3,), 1),
    "rmsprop": ("rmsprop_update", (0.02, 0.9), 1),
    "adam": ("adam_update", (0.01, 0.8, 0.95), 2),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_is_the_generic_code_one_launch_per_array(rule, dtype):
    from backend.cupy import CuPyBackend

    method, scalars, slots = RULES[rule]
    rng = np.random.default_rng(0)
    host = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(2)]
    state = [[np.abs(rng.standard_normal(s)).astype(dtype) for s in SHAPES]] * slots
    ref = [[a.copy() for a in arrays] for arrays in (*host, *state)]
    getattr(B.get_backend("numpy"), method)(ref[0], ref[1], *ref[2:], *scalars)

    be = CuPyBackend.__new__(CuPyBackend)
    be._bind(cp)
    dev = [[cp.asarray(a) for a in arrays] for arrays in (*host, *state)]
    getattr(be, method)(dev[0], dev[1], *dev[2:], *scalars)
    assert be.fused_updates.launches == len(SHAPES)
    tol = {"float32": 1e-6, "float64": 1e-15}[dtype]
    for got, want in zip(dev, ref, strict=True):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g.get(), w, rtol=tol, atol=tol)


def test_dropout_mask_is_the_generic_hash_bit_for_bit():
    fused = FusedUpdates(cp)
    from backend.updates import dropout_keys, keep_threshold

    for ratio, seed, counter in ((0.5, 1, 0), (0.2, 99, 7), (0.0, 3, 2)):
        keys = dropout_keys(seed, counter)
        mask = fused.dropout_mask((7, 9), keys, keep_threshold(ratio))
        want = B.get_backend("numpy").dropout_mask((7, 9), ratio, seed, counter)
        assert mask.dtype == np.bool_ and mask.shape == (7, 9)
        np.testing.assert_array_equal(mask.get(), want)
    assert fused.launches == 3


def test_other_layouts_fall_back_to_the_generic_code():
    fused = FusedUpdates(cp)
    p = [cp.asarray(np.ones((4, 3)))[:, :2]]  # not contiguous
    assert not fused.update("adam", p, ([p[0]], [p[0]], [p[0]]), (1, 1, 1, 1))
    assert fused.launches == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batchnorm_kernels_equal_the_books_code_one_launch_each(dtype):
    from backend.cupy.batchnorm import FusedBatchNorm

    rng = np.random.default_rng(2)
    x = (rng.standard_normal((9, 5)) * 3 + 1).astype(dtype)
    gamma, beta = (rng.standard_normal(5).astype(dtype) for _ in range(2))
    dout = rng.standard_normal((9, 5)).astype(dtype)
    npb = B.get_backend("numpy")
    want = npb.batchnorm_forward(x, gamma, beta)
    want_back = npb.batchnorm_backward(dout, gamma, *want[1:4])
    fused = FusedBatchNorm(cp)
    got = fused.forward(cp.asarray(x), cp.asarray(gamma), cp.asarray(beta))
    back = fused.backward(cp.asarray(dout), cp.asarray(gamma), got[2], got[3])
    assert fused.launches == 2
    tol = {"float32": 2e-5, "float64": 1e-12}[dtype]
    for g, w in zip((*got, *back), (*want, *want_back), strict=True):
        np.testing.assert_allclose(g.get(), w, rtol=tol, atol=tol)
    # Not a batch of rows: the caller's generic code takes it.
    assert fused.forward(cp.asarray(x[0]), cp.asarray(gamma), cp.asarray(beta)) is None
