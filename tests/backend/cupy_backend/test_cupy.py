"""Host-side logic of the CuPy backend, no GPU needed.

Detection runs against the CuPy stand-in (tests/cupy_standin) with its runtime
values changed and one failure injected per cause; dispatch, conversions,
synchronisation and error messages run on a backend bound to the stand-in,
whose kernels are softmax.cu compiled for the host.
"""

from __future__ import annotations

import sys

import cupy_standin as cp
import numpy as np
import pytest

import backend as B
import backend.cupy as _cupy
from backend.cupy import detect
from backend.cupy import kernels as K

runtime = cp.cuda.runtime


def _raise(status: int):
    def fail():
        raise cp.CUDARuntimeError(status)

    return fail


class _FakeDevice:
    used: list[int] = []

    def __init__(self, index):
        self.index = index

    def use(self):
        _FakeDevice.used.append(self.index)


@pytest.fixture
def gpu_like(monkeypatch):
    """``import cupy`` gives the stand-in, reporting two H100s, a CUDA 13.2
    runtime and a CUDA 13.0 driver."""
    monkeypatch.setattr(B, "_instances", {})
    monkeypatch.setattr(detect, "driver_cuda_version", lambda: 13000)
    monkeypatch.setattr(_cupy, "_import_cupy", lambda: cp)
    monkeypatch.setattr(runtime, "device_count", 2)
    monkeypatch.setattr(runtime, "driver_version", 13000)
    monkeypatch.setattr(runtime, "runtime_version", 13020)
    props = {"name": b"NVIDIA H100 80GB HBM3", "major": 9, "minor": 0}
    monkeypatch.setattr(runtime, "properties", props)
    monkeypatch.setattr(cp.cuda, "Device", _FakeDevice)
    monkeypatch.delenv(detect.DEVICE_ENV, raising=False)
    _FakeDevice.used = []
    return monkeypatch


def _message(monkeypatch) -> str:
    with pytest.raises(B.BackendUnavailableError) as info:
        _cupy.CuPyBackend()
    return str(info.value)


def missing_cupy(mp):
    mp.setattr(_cupy, "_import_cupy", detect._import_cupy)
    mp.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError


def no_driver(mp):
    mp.setattr(runtime, "getDeviceCount", _raise(35))
    mp.setattr(runtime, "driverGetVersion", lambda: 0)


def old_driver(mp):
    mp.setattr(runtime, "getDeviceCount", _raise(35))
    mp.setattr(runtime, "driverGetVersion", lambda: 12040)
    mp.setattr(runtime, "runtimeGetVersion", lambda: 13020)


def no_device_error(mp):
    mp.setattr(runtime, "getDeviceCount", _raise(100))


def zero_devices(mp):
    mp.setattr(runtime, "getDeviceCount", lambda: 0)


def no_nvrtc(mp):
    def fail():
        raise RuntimeError('Failure finding "libnvrtc.so.13":\n  No such file\n')

    mp.setattr(cp.cuda.nvrtc, "getVersion", fail)


def bad_device_index(mp):
    mp.setenv(detect.DEVICE_ENV, "5")


def old_gpu(mp):
    props = {"name": b"Tesla V100-SXM2-16GB", "major": 7, "minor": 0}
    mp.setattr(runtime, "properties", props)


def other_cuda_error(mp):
    mp.setattr(runtime, "getDeviceCount", _raise(3))  # cudaErrorInitializationError


# What the first step needs, each failing as CuPy 14 fails (messages from its
# source: cupy_backends/cuda/libs/__init__.py, cupy/_core/core.pyx).
def no_cublas(mp):
    found = 'Failure finding "libcublasLt.so.13": No such file: libcublasLt.so.13'
    mp.setitem(cp._failures, "cublas", ImportError(found))


def no_cuda_headers(mp):
    error = RuntimeError(
        "Failed to find CUDA headers. Please install CUDA toolkit headers (e.g., "
        "pip install cupy-cuda12x[ctk]) or specify CUDA_PATH environment variable."
    )
    mp.setitem(cp._failures, "kernel", error)


def matmul_out_of_memory(mp):
    error = cp.CUDARuntimeError(2, "out of memory")
    mp.setitem(cp._failures, "matmul", error)


def sync_reports_a_fault(mp):
    error = cp.CUDARuntimeError(700, "an illegal memory access was encountered")
    mp.setitem(cp._failures, "sync", error)


CAUSES = {
    # gpu_like's driver supports CUDA 13.0: the extra for it, and only it.
    missing_cupy: [
        "driver for CUDA 13.0",
        'CuPy is not installed: pip install "xpnet[cuda13]"',
    ],
    no_driver: ["no NVIDIA driver found", "cudaErrorInsufficientDriver", "13."],
    old_driver: ["driver is too old", "CUDA 12.4", "CUDA 13.2", "xpnet[cuda12]"],
    no_device_error: ["no CUDA device found", "cudaErrorNoDevice", "nvidia-smi"],
    zero_devices: ["no CUDA device found", "getDeviceCount() == 0"],
    no_nvrtc: ["NVRTC", "libnvrtc.so.13", 'pip install "nvidia-cuda-nvrtc==13.*"'],
    bad_device_index: ["XPNET_CUDA_DEVICE='5'", "use 0..1"],
    old_gpu: ["Tesla V100", "sm_70", "older than CUDA 13", "xpnet[cuda12]"],
    other_cuda_error: ["CUDA could not be initialised", "cudaErrorInitialization"],
    no_cublas: ["cuBLAS", "libcublasLt.so.13", 'pip install "nvidia-cublas==13.*"'],
    no_cuda_headers: ["CUDA headers", 'pip install "nvidia-cuda-runtime==13.*"'],
    matmul_out_of_memory: ["matrix product", "out of memory", "--device cpu"],
    sync_reports_a_fault: ["synchronisation", "illegal memory access"],
}
#: The failures found only by trying the first step (detection before this
#: issue passed them, and the first matmul or kernel raised a traceback).
FIRST_STEP = [no_cublas, no_cuda_headers, matmul_out_of_memory, sync_reports_a_fault]


@pytest.mark.parametrize("cause", list(CAUSES), ids=lambda c: c.__name__)
def test_each_cause_has_its_own_one_line_message(gpu_like, cause):
    cause(gpu_like)
    message = _message(gpu_like)
    assert "\n" not in message
    for part in CAUSES[cause]:
        assert part in message


def test_the_messages_are_distinct(gpu_like):
    messages = set()
    for cause in CAUSES:
        with pytest.MonkeyPatch.context() as mp:
            cause(mp)
            messages.add(_message(mp))
    assert len(messages) == len(CAUSES)


def test_this_machine_without_a_gpu_is_reported_not_crashed():
    cupy = pytest.importorskip("cupy")
    if cupy.is_available():
        pytest.skip("a GPU is present: nothing to report")
    with pytest.raises(B.BackendUnavailableError) as info:
        _cupy.CuPyBackend()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "cause", [no_device_error, *FIRST_STEP], ids=lambda c: c.__name__
)
def test_explicit_cuda_fails_and_auto_falls_back_with_a_warning(gpu_like, cause):
    cause(gpu_like)
    with pytest.raises(B.BackendUnavailableError) as info:
        B.get_backend("cuda")
    reason = str(info.value)
    assert "\n" not in reason and "Traceback" not in reason
    gpu_like.setitem(sys.modules, "numba", None)  # so that auto lands on numpy
    with pytest.warns(RuntimeWarning, match="auto chose numpy") as w:
        chosen = B.get_backend("auto")
    assert chosen.name == "numpy" and f"cupy: {reason}" in str(w[0].message)


def test_the_first_step_is_probed_once_with_one_launch_and_one_sync(gpu_like):
    with cp.counting() as c:
        be = B.get_backend("cuda")
    assert c.syncs == 1 and c.launches >= 3  # ones, matmul, our softmax kernel
    assert be.fused.launches == 0  # the probe used its own kernel object


@pytest.mark.parametrize("env,expected", [(None, 0), ("1", 1), (" 0 ", 0)])
def test_detection_succeeds_and_selects_the_device(gpu_like, env, expected):
    if env is not None:
        gpu_like.setenv(detect.DEVICE_ENV, env)
    be = B.get_backend("cuda")
    assert isinstance(be, _cupy.CuPyBackend) and be.xp is cp
    assert be.device_id == expected and _FakeDevice.used == [expected]
    assert not be.on_host


def test_describe_names_gpu_and_versions(gpu_like):
    text = _cupy.CuPyBackend().describe()
    assert "H100" in text and "sm_90" in text and "runtime 13.2" in text
    assert "driver 13.0" in text


# -- a backend bound to the CuPy stand-in -----------------------------------


@pytest.fixture
def emulated():
    """A CuPy backend on the stand-in (detection included)."""
    return _cupy.CuPyBackend(cupy=cp)


def _dev(a):
    return cp.asarray(np.asarray(a))


def _host(a):
    return a.get() if isinstance(a, cp.ndarray) else np.asarray(a)


@pytest.mark.parametrize(
    "dtype,shape,fused",
    [
        ("float32", (4, 10), True),
        ("float64", (10,), True),
        ("float64", (2, 3, 10), True),
        ("float16", (4, 10), False),
        ("float64", (2, K.MAX_FUSED_COLS + 1), False),
    ],
)
def test_softmax_dispatch(emulated, dtype, shape, fused):
    x = _dev(np.random.default_rng(0).standard_normal(shape).astype(dtype))
    y = emulated.softmax(x)
    assert emulated.fused.launches == (1 if fused else 0)
    expected = B.get_backend("numpy").softmax(_host(x).astype(np.float64))
    np.testing.assert_allclose(_host(y).astype(np.float64), expected, rtol=2e-3)
    assert y.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_loss_forward_and_backward_dispatch(emulated, dtype):
    rng = np.random.default_rng(1)
    x = _dev(rng.standard_normal((6, 10)).astype(dtype))
    t = _dev(rng.integers(0, 10, 6))
    loss, y = emulated.softmax_cross_entropy(x, t)
    dx = emulated.softmax_cross_entropy_backward(y, t, 1.0)
    assert emulated.fused.launches == (0 if dtype == "float16" else 2)
    ref = B.get_backend("numpy")
    ref_loss, ref_y = ref.softmax_cross_entropy(_host(x), _host(t))
    ref_dx = ref.softmax_cross_entropy_backward(ref_y, _host(t))
    tol = 1e-3 if dtype == "float16" else 1e-5
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=tol)
    np.testing.assert_allclose(_host(dx), ref_dx, rtol=tol, atol=tol)


def test_kernels_never_wait_for_the_device(emulated):
    x = _dev(np.ones((3, 10)))
    t = _dev(np.arange(3))
    w, two = _dev(np.ones((10, 2))), _dev(np.asarray(2.0))
    with cp.counting() as c:
        emulated.softmax(x)
        _, y = emulated.softmax_cross_entropy(x, t)
        emulated.softmax_cross_entropy_backward(y, t, two)
        emulated.matmul(x, w)
    assert (c.syncs, c.d2h, c.h2d) == (0, 0, 0)
    with cp.counting() as c:
        emulated.synchronize()
    assert c.syncs == 1


def test_asnumpy_and_asarray_cross_the_edge(emulated):
    host = np.arange(6.0).reshape(2, 3)
    dev = emulated.asarray(host, dtype="float32")
    assert isinstance(dev, cp.ndarray) and dev.dtype == np.float32
    back = emulated.asnumpy(dev)
    assert type(back) is np.ndarray
    np.testing.assert_array_equal(back, host)


class _CupyLike:
    """Looks like a cupy.ndarray to the shim (only its module name is read)."""

    shape = (2, 2)
    ndim = 2


_CupyLike.__module__ = "cupy._core.core"
_CupyLike.__name__ = "ndarray"


@pytest.mark.parametrize(
    "call",
    [
        lambda be, h, d: be.matmul(h, d),
        lambda be, h, d: be.softmax_cross_entropy(d, h),
        lambda be, h, d: be.softmax(h),
        lambda be, h, d: be.numerical_gradient(lambda w: 0.0, h),
    ],
)
def test_host_arrays_in_a_device_kernel_are_a_clear_type_error(emulated, call):
    with pytest.raises(TypeError, match=r"numpy\.ndarray.*cupy\.ndarray"):
        call(emulated, np.ones((2, 2)), _CupyLike())


def test_shim_rejects_numpy_and_cupy_together():
    with pytest.raises(TypeError, match=r"cupy\.\S*ndarray.*numpy\.ndarray"):
        B.matmul(np.ones((2, 2)), _CupyLike())


def test_numerical_gradient_falls_back_to_the_generic_loop(emulated):
    x = _dev(np.array([[1.0, -2.0], [0.5, 3.0]]))
    original = _host(x)
    grad = emulated.numerical_gradient(lambda w: (w**3).sum(), x)
    np.testing.assert_allclose(_host(grad), 3 * original**2, rtol=1e-7)
    np.testing.assert_array_equal(_host(x), original)  # restored exactly
    assert "generic loop" in _cupy.CuPyBackend.numerical_gradient.__doc__


@pytest.mark.parametrize("dtype,fused", [("float64", True), ("float16", False)])
@pytest.mark.parametrize("targets", ["labels", "one-hot"])
def test_batched_loss_dispatch(emulated, dtype, fused, targets):
    rng = np.random.default_rng(2)
    x = _dev(rng.standard_normal((5, 8, 10)).astype(dtype))
    labels = rng.integers(0, 10, 8)
    t = _dev(labels if targets == "labels" else np.eye(10, dtype=dtype)[labels])
    losses, y = emulated.softmax_cross_entropy_batched(x, t)
    assert emulated.fused.launches == (1 if fused else 0)
    assert losses.shape == (5,) and losses.dtype == np.dtype(dtype)
    ref = B.get_backend("numpy")
    for p in range(5):
        ref_loss, _ = ref.softmax_cross_entropy(_host(x[p]), _host(t))
        tol = 1e-12 if fused else 2e-3
        np.testing.assert_allclose(float(losses[p]), float(ref_loss), rtol=tol)


def test_real_rawmodule_takes_the_shipped_source_and_compiles_lazily():
    cupy = pytest.importorskip("cupy")
    source = K.SOURCE_PATH.read_text()
    module = cupy.RawModule(code=source)  # no device needed until get_function
    assert module.code == source
    fused = K.FusedSoftmax(cupy)
    assert fused._module is None and fused.launches == 0


def test_scaled_rows_stay_on_the_device_and_equal_the_normalized_images(emulated):
    pixels = np.random.default_rng(2).integers(0, 256, (9, 16), dtype=np.uint8)
    rows, device_pixels = _dev(np.array([8, 0, 3])), _dev(pixels)
    with cp.counting() as c:
        got = emulated.scaled_rows(device_pixels, rows, 255.0, "float32")
    assert isinstance(got, cp.ndarray) and got.flags.c_contiguous
    want = pixels[[8, 0, 3]].astype(np.float32)
    want /= 255.0
    np.testing.assert_array_equal(_host(got), want, strict=False)
    assert got.dtype == np.float32
    assert (c.syncs, c.d2h, c.h2d) == (0, 0, 0)


def test_the_cuda_extras_install_what_detection_tells_users_to_install():
    tomllib = pytest.importorskip("tomllib")
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    for major, packages in detect.RUNTIME_PACKAGES.items():
        assert set(packages.values()) <= set(extras[f"cuda{major}"])
        assert any(
            p.startswith(f"cupy-cuda{major}x>=14") for p in extras[f"cuda{major}"]
        )


@pytest.mark.parametrize("batched", [False, True])
def test_generic_loss_path_gives_nan_for_bad_labels_as_the_kernel_does(
    emulated, batched
):
    """float16 takes the generic code, where CuPy would wrap label 10 to 0."""
    x = _dev(np.random.default_rng(4).standard_normal((3, 10)).astype("float16"))
    t = _dev(np.array([0, 10, -1]))
    if batched:
        losses, _ = emulated.softmax_cross_entropy_batched(x[None], t)
        loss = losses[0]
    else:
        loss, _ = emulated.softmax_cross_entropy(x, t)
    assert np.isnan(float(loss))
    good, _ = emulated.softmax_cross_entropy(x, _dev(np.array([0, 0, -1])))
    ref, _ = B.get_backend("numpy").softmax_cross_entropy(_host(x), np.array([0, 0, 9]))
    np.testing.assert_allclose(float(good), float(ref), rtol=1e-3)
