"""Host-side logic of the CuPy backend, with CuPy installed and no GPU needed.

Detection is driven by monkeypatching CuPy's runtime functions; dispatch,
conversions, synchronisation and error messages run on a backend bound to
``FakeCuPy``, whose kernels are softmax.cu compiled for the host.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from cuda_emulator import DeviceArray, FakeCuPy

import backend as B
import backend.cupy as _cupy
from backend.cupy import detect
from backend.cupy import kernels as K

cupy = pytest.importorskip("cupy")
runtime = cupy.cuda.runtime


def _raise(status: int):
    def fail():
        raise runtime.CUDARuntimeError(status)

    return fail


class _FakeDevice:
    used: list[int] = []

    def __init__(self, index):
        self.index = index

    def use(self):
        _FakeDevice.used.append(self.index)


@pytest.fixture
def gpu_like(monkeypatch):
    """CuPy's runtime patched to report two H100s, a CUDA 13 driver and NVRTC."""
    monkeypatch.setattr(B, "_instances", {})
    monkeypatch.setattr(runtime, "getDeviceCount", lambda: 2)
    monkeypatch.setattr(runtime, "driverGetVersion", lambda: 13000)
    monkeypatch.setattr(cupy.cuda.nvrtc, "getVersion", lambda: (13, 0))
    monkeypatch.setattr(cupy.cuda, "Device", _FakeDevice)
    monkeypatch.setattr(runtime, "runtimeGetVersion", lambda: 13020)
    props = {"name": b"NVIDIA H100 80GB HBM3", "major": 9, "minor": 0}
    monkeypatch.setattr(runtime, "getDeviceProperties", lambda i: props)
    monkeypatch.delenv(detect.DEVICE_ENV, raising=False)
    _FakeDevice.used = []
    return monkeypatch


def _message(monkeypatch) -> str:
    with pytest.raises(B.BackendUnavailableError) as info:
        _cupy.CuPyBackend()
    return str(info.value)


def missing_cupy(mp):
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

    mp.setattr(cupy.cuda.nvrtc, "getVersion", fail)


def bad_device_index(mp):
    mp.setenv(detect.DEVICE_ENV, "5")


def old_gpu(mp):
    props = {"name": b"Tesla V100-SXM2-16GB", "major": 7, "minor": 0}
    mp.setattr(runtime, "getDeviceProperties", lambda i: props)


def other_cuda_error(mp):
    mp.setattr(runtime, "getDeviceCount", _raise(3))  # cudaErrorInitializationError


CAUSES = {
    missing_cupy: ['pip install "xpnet[cuda13]"', '"xpnet[cuda12]"'],
    no_driver: ["no NVIDIA driver found", "cudaErrorInsufficientDriver", "13."],
    old_driver: ["driver is too old", "CUDA 12.4", "CUDA 13.2", "xpnet[cuda12]"],
    no_device_error: ["no CUDA device found", "cudaErrorNoDevice", "nvidia-smi"],
    zero_devices: ["no CUDA device found", "getDeviceCount() == 0"],
    no_nvrtc: ["NVRTC", "libnvrtc.so.13", 'pip install "cupy-cuda13x[ctk]"'],
    bad_device_index: ["XPNET_CUDA_DEVICE='5'", "use 0..1"],
    old_gpu: ["Tesla V100", "sm_70", "older than CUDA 13", "xpnet[cuda12]"],
    other_cuda_error: ["CUDA could not be initialised", "cudaErrorInitialization"],
}


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
    if cupy.is_available():
        pytest.skip("a GPU is present: nothing to report")
    with pytest.raises(B.BackendUnavailableError) as info:
        _cupy.CuPyBackend()
    assert "\n" not in str(info.value)


def test_explicit_cuda_fails_and_auto_falls_back_with_a_warning(gpu_like):
    no_device_error(gpu_like)
    with pytest.raises(B.BackendUnavailableError, match="no CUDA device found"):
        B.get_backend("cuda")
    gpu_like.setitem(sys.modules, "numba", None)  # so that auto lands on numpy
    with pytest.warns(RuntimeWarning, match="cupy: no CUDA device found"):
        chosen = B.get_backend("auto")
    assert chosen.name == "numpy"


@pytest.mark.parametrize("env,expected", [(None, 0), ("1", 1), (" 0 ", 0)])
def test_detection_succeeds_and_selects_the_device(gpu_like, env, expected):
    if env is not None:
        gpu_like.setenv(detect.DEVICE_ENV, env)
    be = B.get_backend("cuda")
    assert isinstance(be, _cupy.CuPyBackend) and be.xp is cupy
    assert be.device_id == expected and _FakeDevice.used == [expected]
    assert not be.on_host


def test_describe_names_gpu_and_versions(gpu_like):
    text = _cupy.CuPyBackend().describe()
    assert "H100" in text and "sm_90" in text and "runtime 13.2" in text
    assert "driver 13.0" in text


# -- a backend bound to the host-emulated CuPy ------------------------------


@pytest.fixture
def emulated(host_lib):
    be = _cupy.CuPyBackend.__new__(_cupy.CuPyBackend)
    be.device_id = 0
    be._bind(FakeCuPy(host_lib))
    return be


def _dev(a):
    return np.asarray(a).view(DeviceArray)


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
    expected = B.get_backend("numpy").softmax(np.asarray(x, dtype=np.float64))
    np.testing.assert_allclose(np.asarray(y, dtype=np.float64), expected, rtol=2e-3)
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
    ref_loss, ref_y = ref.softmax_cross_entropy(np.asarray(x), np.asarray(t))
    ref_dx = ref.softmax_cross_entropy_backward(ref_y, np.asarray(t))
    tol = 1e-3 if dtype == "float16" else 1e-5
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=tol)
    np.testing.assert_allclose(np.asarray(dx), np.asarray(ref_dx), rtol=tol, atol=tol)


def test_kernels_never_wait_for_the_device(emulated):
    x = _dev(np.ones((3, 10)))
    t = _dev(np.arange(3))
    emulated.softmax(x)
    _, y = emulated.softmax_cross_entropy(x, t)
    emulated.softmax_cross_entropy_backward(y, t, _dev(np.asarray(2.0)))
    emulated.matmul(x, _dev(np.ones((10, 2))))
    assert emulated.xp.stream.synchronized == 0
    emulated.synchronize()
    assert emulated.xp.stream.synchronized == 1


def test_asnumpy_and_asarray_cross_the_edge(emulated):
    host = np.arange(6.0).reshape(2, 3)
    dev = emulated.asarray(host, dtype="float32")
    assert isinstance(dev, DeviceArray) and dev.dtype == np.float32
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
    original = x.copy()
    grad = emulated.numerical_gradient(lambda w: (w**3).sum(), x)
    np.testing.assert_allclose(grad, 3 * original**2, rtol=1e-7)
    np.testing.assert_array_equal(x, original)  # restored exactly
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
        ref_loss, _ = ref.softmax_cross_entropy(np.asarray(x[p]), np.asarray(t))
        tol = 1e-12 if fused else 2e-3
        np.testing.assert_allclose(float(losses[p]), float(ref_loss), rtol=tol)


def test_real_rawmodule_takes_the_shipped_source_and_compiles_lazily():
    source = K.SOURCE_PATH.read_text()
    module = cupy.RawModule(code=source)  # no device needed until get_function
    assert module.code == source
    fused = K.FusedSoftmax(cupy)
    assert fused._module is None and fused.launches == 0


def test_scaled_rows_stay_on_the_device_and_equal_the_normalized_images(emulated):
    pixels = np.random.default_rng(2).integers(0, 256, (9, 16), dtype=np.uint8)
    rows = _dev(np.array([8, 0, 3]))
    got = emulated.scaled_rows(_dev(pixels), rows, 255.0, "float32")
    assert isinstance(got, DeviceArray) and got.flags.c_contiguous
    want = pixels[[8, 0, 3]].astype(np.float32)
    want /= 255.0
    np.testing.assert_array_equal(np.asarray(got), want, strict=False)
    assert got.dtype == np.float32
    assert emulated.xp.stream.synchronized == 0
