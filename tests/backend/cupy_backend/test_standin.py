"""The CuPy stand-in behaves as CuPy documents (the references are CuPy 14's
source and its "Differences between CuPy and NumPy" page), and it catches what
the old NumPy-subclass emulator let through."""

from __future__ import annotations

import cupy_standin as cp
import numpy as np
import pytest

import backend as B

SAXPY = r"""
extern "C" __global__ void saxpy(const float* x, float* y, float a, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        y[i] += a * x[i];
}
"""
COOPERATE = r"""
extern "C" __global__ void cooperate(float* y) {
    __shared__ float tile[32];
    float* mine = y + blockIdx.x * 32;
    tile[threadIdx.x] = mine[threadIdx.x];
    __syncthreads();
    mine[threadIdx.x] = tile[31 - threadIdx.x];
}
"""
BLOCK_SUM = r"""
extern "C" __global__ void block_sum(const double* x, double* out, long long n) {
    __shared__ double part[128];
    double s = 0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x)
        s += x[i];
    part[threadIdx.x] = s;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = part[0];
}
"""


def dev(a):
    return cp.asarray(np.asarray(a))


def test_every_stand_in_name_exists_in_real_cupy():
    cupy = pytest.importorskip("cupy")
    missing = [n for n in cp.FUNCTIONS if not hasattr(cupy, n)]
    assert missing == []
    for name in ("asarray", "array", "asnumpy", "ascontiguousarray", "RawModule"):
        assert hasattr(cupy, name) and hasattr(cp, name)
    assert hasattr(cupy.add, "reduceat") and hasattr(cupy.add, "at")
    for name in ("getDeviceCount", "driverGetVersion", "runtimeGetVersion"):
        assert hasattr(cupy.cuda.runtime, name) and hasattr(cp.cuda.runtime, name)
    for name in ("Stream", "Device", "get_current_stream"):
        assert hasattr(cupy.cuda, name) and hasattr(cp.cuda, name)


class _OldDeviceArray(np.ndarray):
    """What the tests used before the stand-in: a NumPy subclass in a module
    named ``cuda_emulator``."""


_OldDeviceArray.__module__ = "cuda_emulator"


def test_the_shim_takes_it_for_cupy_and_the_old_emulator_for_numpy():
    assert B._is_cupy_array(dev([1.0])) and type(dev([1.0])).__name__ == "ndarray"
    from cupy_standin.install import installed

    with installed() as be:
        assert B.backend_for(dev([1.0])) is be
    old = np.ones(2).view(_OldDeviceArray)
    assert not B._is_cupy_array(old)  # why CI never ran the CuPy backend's code
    assert B.backend_for(old).name != "cupy"
    assert not isinstance(dev([1.0]), np.ndarray)


def test_implicit_conversion_that_the_old_emulator_allowed_is_refused():
    old = np.ones(2).view(_OldDeviceArray)
    assert np.asarray(old).sum() == 2.0  # silently a host array
    x = np.ones((2, 2)).view(_OldDeviceArray)
    with pytest.raises(IndexError):
        x[np.array([0, 3])]  # the old emulator raised where CuPy wraps
    with pytest.raises(TypeError):
        np.asarray(dev([1.0, 1.0]))


def test_implicit_conversion_is_a_type_error():
    a = dev([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError):
        float(a)
    with pytest.raises(TypeError, match="Unsupported type"):
        a + np.ones(3)  # a host operand in a device ufunc
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.exp([1.0, 2.0])
    with pytest.raises(ValueError, match="ambiguous"):
        bool(a > 0)


def test_explicit_transfers_are_counted_with_their_waits():
    a = dev(np.arange(4.0))
    with cp.counting() as c:
        host = a.get()
        value = float(a.sum())
        cp.asnumpy(a)
        a[1].item()
    assert type(host) is np.ndarray and value == 6.0
    assert (c.d2h, c.syncs) == (4, 4)
    assert c.launches == 1  # the sum; a[1] is a view, no launch
    with cp.counting() as c:
        cp.cuda.get_current_stream().synchronize()
    assert c.snapshot() == {"launches": 0, "h2d": 0, "d2h": 0, "syncs": 1}


def test_reductions_and_element_access_are_0d_device_arrays():
    a = dev(np.arange(6.0).reshape(2, 3))
    for r in (a.sum(), cp.max(a), a[1, 2], cp.argmax(a)):
        assert type(r) is cp.ndarray and r.ndim == 0


def test_out_of_range_integer_array_indices_wrap_as_in_cupys_docs():
    x = dev([0, 1, 2])
    x[[1, 3]] = 10  # the example of CuPy's "Differences" page
    np.testing.assert_array_equal(x.get(), [10, 10, 2])
    np.testing.assert_array_equal(x[dev([4, -4])].get(), [10, 2])
    with pytest.raises(IndexError):
        x[3]  # a scalar index is still checked


def test_add_reduceat_and_add_at_follow_numpy():
    values = np.arange(12.0).reshape(6, 2)
    starts = np.array([0, 2, 5])
    got = cp.add.reduceat(dev(values), dev(starts), axis=0)
    np.testing.assert_array_equal(got.get(), np.add.reduceat(values, starts, axis=0))
    out = cp.zeros((3, 2))
    cp.add.at(out, dev([0, 0, 2]), dev(np.ones((3, 2))))
    np.testing.assert_array_equal(out.get(), [[2, 2], [0, 0], [1, 1]])
    with pytest.raises(NotImplementedError):
        cp.maximum.reduceat(dev(values), dev(starts))


def test_raw_kernels_run_the_cuda_source_and_check_argument_types():
    kernel = cp.RawModule(code=SAXPY).get_function("saxpy")
    x, y = dev(np.arange(300, dtype=np.float32)), cp.ones(300, dtype=np.float32)
    with cp.counting() as c:
        kernel((2,), (64,), (x, y, np.float32(2), 300))  # Python int is int64
    assert c.launches == 1
    np.testing.assert_array_equal(y.get(), 1 + 2 * np.arange(300, dtype=np.float32))
    with pytest.raises(TypeError, match="misread"):
        kernel((1,), (32,), (x, y, 2.0, 300))  # a double where float is read
    with pytest.raises(TypeError, match="numpy.ndarray"):
        kernel((1,), (32,), (x.get(), y, np.float32(2), 300))
    with pytest.raises(TypeError, match="float64"):
        kernel((1,), (32,), (cp.ones(3), y, np.float32(2), 3))


def test_cooperating_threads_meet_at_the_barrier():
    """Shared memory and __syncthreads: each block reverses its 32 values, which
    reads what other threads wrote before the barrier."""
    kernel = cp.RawModule(code=COOPERATE).get_function("cooperate")
    y = dev(np.arange(64, dtype=np.float32))
    kernel((2,), (32,), (y,))
    want = np.concatenate([np.arange(32)[::-1], np.arange(32, 64)[::-1]])
    np.testing.assert_array_equal(y.get(), want)


def test_a_block_reduction_through_shared_memory():
    kernel = cp.RawModule(code=BLOCK_SUM).get_function("block_sum")
    x = dev(np.arange(1000, dtype=np.float64))
    out = cp.zeros(4, dtype=np.float64)
    kernel((4,), (128,), (x, out, 1000))
    assert out.get().sum() == np.arange(1000).sum()
    assert out.get()[0] == np.arange(0, 1000, 4 * 128).sum() + sum(
        np.arange(i, 1000, 512).sum() for i in range(1, 128)
    )


def test_pickling_goes_through_the_host():
    import pickle

    a = dev(np.arange(3.0))
    with cp.counting() as c:
        b = pickle.loads(pickle.dumps(a))
    assert type(b) is cp.ndarray and c.d2h == 1
    np.testing.assert_array_equal(b.get(), [0.0, 1.0, 2.0])


def test_injected_failures_are_scoped():
    with cp.failing("cublas", ImportError("Failure finding libcublasLt.so.13")):
        with pytest.raises(ImportError, match="libcublasLt"):
            cp.cuda.cublas  # noqa: B018 (the attribute access is what fails)
    assert cp.cuda.cublas.getVersion() > 0


def test_sorts_are_stable_as_in_cupy():
    a = dev(np.array([3, 1, 3, 1, 2, 1]))
    np.testing.assert_array_equal(cp.argsort(a).get(), [1, 3, 5, 4, 0, 2])
    np.testing.assert_array_equal(a.argsort().get(), [1, 3, 5, 4, 0, 2])
    with pytest.raises(ValueError, match="stable"):
        cp.argsort(a, kind="quicksort")
    a.sort()
    np.testing.assert_array_equal(a.get(), [1, 1, 1, 2, 3, 3])
