"""The CUDA C kernels of the CuPy backend, checked without a GPU.

backend/cupy/softmax.cu is (1) compiled by nvcc for sm_80 and sm_90, (2)
compiled by NVRTC the way ``cupy.RawModule`` does at run time, and (3) compiled
as host C++ by the CuPy stand-in's ``RawModule`` (tests/cupy_standin/hostcc.py)
and run, thread by thread, against the NumPy backend.
"""

from __future__ import annotations

import re
import subprocess

import cupy_standin as cp
import numpy as np
import pytest
from cupy_standin.hostcc import HostModule

import backend as B
from backend.cupy import kernels as K

ARCHS = ["sm_80", "sm_90"]
TOL = {"float32": dict(rtol=2e-6, atol=1e-7), "float64": dict(rtol=1e-13, atol=1e-16)}


def _host(out):
    if isinstance(out, tuple):
        return tuple(_host(o) for o in out)
    return out.get() if isinstance(out, cp.ndarray) else out


class _OnHost:
    """``FusedSoftmax`` on the stand-in, taking and giving host arrays, so each
    test reads as a comparison of NumPy arrays."""

    def __init__(self):
        self.inner = K.FusedSoftmax(cp)
        self.xp = cp

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            # A host 0-d dout stays on the host: the launcher takes it as a number.
            args = [
                cp.asarray(a) if isinstance(a, np.ndarray) and a.ndim else a
                for a in args
            ]
            return _host(attr(*args, **kwargs))

        return call


@pytest.fixture
def fused():
    return _OnHost()


def test_the_host_build_is_warning_free():
    """-Wall -Werror: the host compiler finds nothing to say about the source."""
    module = HostModule(K.SOURCE_PATH.read_text(), werror=True)
    assert sorted(module.kernels) == sorted(K.kernel_names())


@pytest.mark.parametrize("arch", ARCHS)
def test_nvcc_compiles_the_shipped_source(nvcc, arch, tmp_path):
    out = tmp_path / f"softmax_{arch}.cubin"
    cmd = [nvcc, f"-arch={arch}", "-cubin", "-Werror", "all-warnings"]
    result = subprocess.run(
        cmd + ["-o", str(out), str(K.SOURCE_PATH)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0


def test_ptx_entry_points_are_the_ones_python_launches(nvcc, tmp_path):
    out = tmp_path / "softmax.ptx"
    cmd = [nvcc, "-arch=compute_90", "-ptx", "-o", str(out), str(K.SOURCE_PATH)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    entries = re.findall(r"\.visible \.entry (\w+)\(", out.read_text())
    assert sorted(entries) == sorted(K.kernel_names())


@pytest.mark.parametrize("arch", ["80", "90"])
def test_nvrtc_compiles_the_source_as_cupy_does(arch):
    cupy = pytest.importorskip("cupy")
    nvrtc = cupy.cuda.nvrtc
    try:
        nvrtc.getVersion()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"NVRTC not loadable ({exc}); pip install nvidia-cuda-nvrtc")
    prog = nvrtc.createProgram(K.SOURCE_PATH.read_text(), "softmax.cu", (), ())
    try:
        # -ftz=true is what cupy.RawModule adds to every compile.
        nvrtc.compileProgram(prog, (f"-arch=sm_{arch}", "-ftz=true"))
        cubin = nvrtc.getCUBIN(prog)
    except nvrtc.NVRTCError as exc:
        pytest.fail(f"NVRTC failed: {exc}\n{nvrtc.getProgramLog(prog)}")
    finally:
        nvrtc.destroyProgram(prog)
    for name in K.kernel_names():
        assert name.encode() in cubin


@pytest.mark.parametrize("rows", [0, 1, 127, 128, 129, 10**6])
def test_launch_shape_covers_every_row(rows):
    (blocks,), (threads,) = K.launch_shape(rows)
    assert 1 <= blocks <= K.MAX_BLOCKS
    assert threads == K.THREADS_PER_BLOCK
    # Either one thread per row, or a capped grid that the stride loop repeats.
    assert blocks * threads >= rows or blocks == K.MAX_BLOCKS


@pytest.mark.parametrize("grid,block", [(1, 1), (2, 3), (3, 64), (40, 128)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_any_launch_geometry_gives_the_same_softmax(grid, block, dtype):
    rng = np.random.default_rng(1)
    x = (5 * rng.standard_normal((53, 10))).astype(dtype)
    y = cp.asarray(np.full_like(x, np.nan))
    module = cp.RawModule(code=K.SOURCE_PATH.read_text())
    kernel = module.get_function(f"softmax_rows_{K.DTYPE_SUFFIX[dtype]}")
    kernel((grid,), (block,), (cp.asarray(x), y, np.int64(53), np.int64(10)))
    expected = B.get_backend("numpy").softmax(x)
    np.testing.assert_allclose(y.get(), expected, **TOL[dtype])


def _scores(kind: str, shape, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape)
    if kind == "huge":  # would overflow exp without the max subtraction
        x = x * 1000 + np.sign(x) * 800
    elif kind == "ties":
        x = np.round(x)
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["normal", "huge", "ties"])
@pytest.mark.parametrize("shape", [(10,), (1, 1), (7, 10), (300, 10), (2, 3, 33)])
def test_fused_softmax_matches_numpy_backend(fused, dtype, kind, shape):
    x = _scores(kind, shape, dtype)
    y = fused.softmax(x)
    expected = B.get_backend("numpy").softmax(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, expected, **TOL[dtype])
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=10 * TOL[dtype]["rtol"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_softmax_special_values_follow_numpy(fused, dtype):
    x = np.array(
        [
            [-np.inf, 0.0, 1.0],
            [np.nan, 0.0, 1.0],
            [-np.inf, -np.inf, -np.inf],
            [3.0, 3.0, 3.0],
            [1e30 if dtype == "float32" else 1e300, 0.0, -1.0],
        ],
        dtype=dtype,
    )
    with np.errstate(invalid="ignore"):
        expected = B.get_backend("numpy").softmax(x)
    y = fused.softmax(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_allclose(y, expected, equal_nan=True, **TOL[dtype])
    np.testing.assert_allclose(y[3], [1 / 3] * 3, **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("label_dtype", ["int64", "int32", "uint8"])
@pytest.mark.parametrize("kind", ["normal", "huge"])
def test_fused_loss_with_labels_matches_numpy(fused, dtype, label_dtype, kind):
    x = _scores(kind, (257, 10), dtype)
    t = (np.arange(257) * 7 % 10).astype(label_dtype)
    loss, y = fused.softmax_cross_entropy(x, t)
    ref_loss, ref_y = B.get_backend("numpy").softmax_cross_entropy(x, t)
    np.testing.assert_allclose(y, ref_y, **TOL[dtype])
    np.testing.assert_allclose(loss, ref_loss, rtol=10 * TOL[dtype]["rtol"])
    assert np.asarray(loss).dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_loss_with_one_hot_matches_numpy(fused, dtype):
    x = _scores("normal", (64, 10), dtype)
    labels = np.arange(64) % 10
    t = np.eye(10, dtype=dtype)[labels]
    loss, y = fused.softmax_cross_entropy(x, t)
    ref_loss, ref_y = B.get_backend("numpy").softmax_cross_entropy(x, t)
    np.testing.assert_allclose(y, ref_y, **TOL[dtype])
    np.testing.assert_allclose(loss, ref_loss, rtol=10 * TOL[dtype]["rtol"])
    # Labels and one-hot are the same loss.
    loss_labels, _ = fused.softmax_cross_entropy(x, labels)
    np.testing.assert_allclose(loss, loss_labels, rtol=10 * TOL[dtype]["rtol"])


def test_fused_loss_hand_computed_case(fused):
    # softmax([0, ln 3]) = [1/4, 3/4]; label 1 -> -log(3/4 + 1e-7).
    x = np.array([[0.0, np.log(3.0)]])
    loss, y = fused.softmax_cross_entropy(x, np.array([1]))
    np.testing.assert_allclose(y, [[0.25, 0.75]], rtol=1e-15)
    np.testing.assert_allclose(loss, -np.log(0.75 + 1e-7), rtol=1e-15)


def test_negative_labels_index_like_numpy_and_bad_labels_give_nan(fused):
    x = _scores("normal", (4, 10), "float64")
    loss, _ = fused.softmax_cross_entropy(x, np.array([-1, -10, 0, 9]))
    ref, _ = B.get_backend("numpy").softmax_cross_entropy(x, np.array([9, 0, 0, 9]))
    np.testing.assert_allclose(loss, ref, rtol=1e-14)
    bad, _ = fused.softmax_cross_entropy(x, np.array([0, 10, 1, 2]))
    assert np.isnan(bad)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("targets", ["labels", "one-hot"])
@pytest.mark.parametrize("dout", [1.0, 2.5, "device", "host-0d"])
def test_fused_backward_matches_numpy(fused, dtype, targets, dout):
    rng = np.random.default_rng(3)
    y = B.get_backend("numpy").softmax(rng.standard_normal((33, 10)).astype(dtype))
    labels = rng.integers(0, 10, 33)
    t = labels if targets == "labels" else np.eye(10, dtype=dtype)[labels]
    d = {"device": fused.xp.asarray(np.asarray(1.5, dtype)), "host-0d": np.asarray(0.5)}
    d = d.get(dout, dout)
    dx = fused.softmax_cross_entropy_backward(y, t, d)
    expected = B.get_backend("numpy").softmax_cross_entropy_backward(
        y, t, _host(d) if isinstance(d, cp.ndarray) else np.asarray(d)
    )
    assert fused.launches == 1
    assert dx.shape == y.shape and dx.dtype == y.dtype
    np.testing.assert_allclose(dx, expected, **TOL[dtype])


def test_one_launch_per_call_and_one_compile(fused):
    x = _scores("normal", (5, 10), "float32")
    t = np.arange(5)
    fused.softmax(x)
    _, y = fused.softmax_cross_entropy(x, t)
    fused.softmax_cross_entropy_backward(y, t)
    fused.softmax(x.astype("float64"))
    assert fused.launches == 4
    assert fused.inner._module.code == K.SOURCE_PATH.read_text()  # one module


def test_float_labels_are_rejected(fused):
    x = _scores("normal", (3, 10), "float64")
    with pytest.raises(TypeError, match="labels must be integers"):
        fused.softmax_cross_entropy(x, np.array([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("targets", ["labels", "one-hot"])
def test_batched_loss_equals_one_loss_per_batch(fused, dtype, targets):
    x = _scores("normal", (7, 33, 10), dtype)
    labels = np.arange(33) * 3 % 10
    t = labels if targets == "labels" else np.eye(10, dtype=dtype)[labels]
    losses, y = fused.softmax_cross_entropy_batched(x, t)
    assert losses.shape == (7,) and y.shape == x.shape and fused.launches == 1
    ref = B.get_backend("numpy")
    for p in range(7):
        ref_loss, ref_y = ref.softmax_cross_entropy(x[p], t)
        np.testing.assert_allclose(losses[p], ref_loss, rtol=10 * TOL[dtype]["rtol"])
        np.testing.assert_allclose(y[p], ref_y, **TOL[dtype])


@pytest.mark.parametrize("t_shape", [(4,), (5, 9), (5, 10, 1), (2, 5, 10)])
def test_targets_of_the_wrong_shape_never_reach_a_kernel(fused, t_shape):
    x = _scores("normal", (2, 5, 10), "float64")
    t = np.zeros(t_shape, dtype=np.int64 if len(t_shape) == 1 else np.float64)
    with pytest.raises(ValueError, match=r"targets of shape .* do not fit"):
        fused.softmax_cross_entropy_batched(x, t)
    with pytest.raises(ValueError, match=r"targets of shape .* do not fit"):
        fused.softmax_cross_entropy(x[0], t)
    with pytest.raises(ValueError, match=r"targets of shape .* do not fit"):
        fused.softmax_cross_entropy_backward(x[0], t)
    assert fused.launches == 0
