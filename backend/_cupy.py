"""The CuPy backend: arrays on an NVIDIA GPU.

Detection runs in ``CuPyBackend()`` and fails with a distinct one-line
:class:`BackendUnavailableError` for each cause: CuPy missing, NVIDIA driver
missing or too old, no CUDA device, NVRTC (CuPy's kernel compiler) missing.
The shim's ``auto`` turns that into a warning and a CPU backend; an explicit
``cupy``/``cuda`` lets it propagate.

Kernels queue work on the current stream and never wait for it: only
:meth:`CuPyBackend.synchronize`, ``asnumpy`` and the caller's ``float(loss)``
wait for the device.
"""

from __future__ import annotations

import os

from backend._base import CE_DELTA, Backend, BackendUnavailableError
from backend._cuda_kernels import FusedSoftmax

#: CUDA runtime status codes that detection tells apart.
CUDA_ERROR_INSUFFICIENT_DRIVER = 35
CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER = 36
CUDA_ERROR_NO_DEVICE = 100

#: Oldest compute capability (major * 10 + minor) each CUDA major version
#: compiles for: CUDA 13 dropped Maxwell, Pascal and Volta.
MIN_COMPUTE_CAPABILITY = {12: 50, 13: 75}

#: Environment variable choosing the GPU by index (after CUDA_VISIBLE_DEVICES).
DEVICE_ENV = "XPNET_CUDA_DEVICE"

MISSING_CUPY = (
    'the cupy backend needs CuPy: pip install "xpnet[cuda13]" for a CUDA 13 '
    'driver, or "xpnet[cuda12]" for a CUDA 12 driver'
)


def _cuda_version(code: int) -> str:
    """13020 -> '13.2' (the runtime's and driver's integer encoding)."""
    return f"{code // 1000}.{code % 1000 // 10}"


def _one_line(exc) -> str:
    return " ".join(str(exc).split())


def _driver_message(runtime, exc) -> str:
    driver = runtime.driverGetVersion()
    needed = _cuda_version(runtime.runtimeGetVersion())
    if driver == 0:
        return (
            f"no NVIDIA driver found ({_one_line(exc)}); install the NVIDIA driver "
            f"(this CuPy is built for CUDA {needed}) or use --device cpu"
        )
    return (
        f"the NVIDIA driver is too old: it supports CUDA {_cuda_version(driver)} "
        f"but this CuPy needs CUDA {needed} ({_one_line(exc)}); update the driver, "
        'or for a CUDA 12 driver pip install "xpnet[cuda12]" instead of '
        '"xpnet[cuda13]"'
    )


def _no_device_message(detail: str) -> str:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = "unset" if visible is None else repr(visible)
    return (
        f"no CUDA device found ({detail}); check nvidia-smi and "
        f"CUDA_VISIBLE_DEVICES (now {where}), or use --device cpu"
    )


def check_device(cupy) -> int:
    """Raise :class:`BackendUnavailableError` unless ``cupy`` can run kernels.

    Returns the index of the device to use (``$XPNET_CUDA_DEVICE``, default 0).
    """
    runtime = cupy.cuda.runtime
    try:
        count = runtime.getDeviceCount()
    except runtime.CUDARuntimeError as exc:
        if exc.status in (
            CUDA_ERROR_INSUFFICIENT_DRIVER,
            CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER,
        ):
            raise BackendUnavailableError(_driver_message(runtime, exc)) from exc
        if exc.status == CUDA_ERROR_NO_DEVICE:
            raise BackendUnavailableError(_no_device_message(_one_line(exc))) from exc
        raise BackendUnavailableError(
            f"CUDA could not be initialised: {_one_line(exc)}"
        ) from exc
    if count == 0:
        raise BackendUnavailableError(_no_device_message("getDeviceCount() == 0"))
    try:
        # Every CuPy kernel, ours and CuPy's own elementwise ones, is compiled
        # at run time by NVRTC, which CuPy's wheels do not bundle.
        cupy.cuda.nvrtc.getVersion()
    except Exception as exc:  # noqa: BLE001 (CuPy raises several types here)
        major = runtime.runtimeGetVersion() // 1000
        raise BackendUnavailableError(
            f"CuPy cannot load NVRTC, its kernel compiler ({_one_line(exc)}); "
            f'pip install "cupy-cuda{major}x[ctk]" or install CUDA Toolkit {major}'
        ) from exc
    raw = os.environ.get(DEVICE_ENV, "0").strip() or "0"
    if not raw.isdigit() or int(raw) >= count:
        raise BackendUnavailableError(
            f"{DEVICE_ENV}={raw!r} is not a device index; {count} device(s) "
            f"visible, so use 0..{count - 1}"
        )
    _check_architecture(runtime, int(raw))
    return int(raw)


def _check_architecture(runtime, device: int) -> None:
    """A GPU older than the CUDA major version of this CuPy build supports."""
    major = runtime.runtimeGetVersion() // 1000
    oldest = MIN_COMPUTE_CAPABILITY.get(major, 0)
    props = runtime.getDeviceProperties(device)
    capability = props["major"] * 10 + props["minor"]
    if capability < oldest:
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else name
        raise BackendUnavailableError(
            f"GPU {device} ({name}, sm_{capability}) is older than CUDA {major} "
            f'supports (sm_{oldest} and newer); pip install "xpnet[cuda12]" '
            "instead, or use --device cpu"
        )


def _import_cupy():
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailableError(MISSING_CUPY) from exc
    return cupy


def _kind(a) -> str:
    """'numpy.ndarray' / 'cupy.ndarray' / type name, for error messages."""
    cls = type(a)
    return f"{cls.__module__.split('.')[0]}.{cls.__name__}"


def _is_numpy_array(a) -> bool:
    return type(a).__module__.split(".")[0] == "numpy" and hasattr(a, "shape")


class CuPyBackend(Backend):
    """Device arrays on one CUDA device; cuBLAS matmul and fused softmax kernels.

    The device is 0 unless ``$XPNET_CUDA_DEVICE`` says otherwise (indices
    count after ``CUDA_VISIBLE_DEVICES``).
    """

    name = "cupy"
    on_host = False

    def __init__(self):
        cupy = _import_cupy()
        self.device_id = check_device(cupy)
        cupy.cuda.Device(self.device_id).use()
        self._bind(cupy)

    def _bind(self, xp) -> None:
        self.xp = xp
        self.fused = FusedSoftmax(xp)

    def describe(self) -> str:
        runtime = self.xp.cuda.runtime
        props = runtime.getDeviceProperties(self.device_id)
        gpu = props["name"]
        gpu = gpu.decode() if isinstance(gpu, bytes) else gpu
        return (
            f"cupy (CuPy {self.xp.__version__}, CUDA runtime "
            f"{_cuda_version(runtime.runtimeGetVersion())}, driver "
            f"{_cuda_version(runtime.driverGetVersion())}, GPU {self.device_id}: "
            f"{gpu}, sm_{props['major']}{props['minor']})"
        )

    def _require_device(self, op: str, **arrays) -> None:
        """TypeError naming both libraries if a host NumPy array reaches a kernel."""
        host = [name for name, a in arrays.items() if _is_numpy_array(a)]
        if not host:
            return
        others = [f"{n} is {_kind(a)}" for n, a in arrays.items() if n not in host]
        found = ", ".join([f"{n} is {_kind(arrays[n])}" for n in host] + others)
        raise TypeError(
            f"the cupy backend's {op} got a host numpy.ndarray where it needs "
            f"cupy.ndarray ({found}); move it with "
            "backend.get_backend('cupy').asarray(a), or use backend.to_numpy(a) "
            "to bring device arrays to the host"
        )

    # -- host <-> device --------------------------------------------------
    def asarray(self, a, dtype=None):
        """A device array from ``a``: copies host data once, keeps device arrays."""
        return self.xp.asarray(a, dtype=dtype)

    def asnumpy(self, a):
        """A host NumPy array from a device array (waits for the device)."""
        return self.xp.asnumpy(a)

    def synchronize(self) -> None:
        """Wait until all work queued on the current stream is done."""
        self.xp.cuda.get_current_stream().synchronize()

    # -- kernels ----------------------------------------------------------
    def matmul(self, a, b):
        """a: (N, K) @ b: (K, M) -> (N, M) through cuBLAS (``cupy.matmul``)."""
        self._require_device("matmul", a=a, b=b)
        return self.xp.matmul(a, b)

    def softmax(self, x):
        """Softmax over the last axis of (D,), (N, D) or (..., D); overflow-safe.

        float32/float64 rows up to ``MAX_FUSED_COLS`` wide: one fused kernel,
        one thread per row; anything else: the generic ``xp`` code.
        """
        self._require_device("softmax", x=x)
        if self.fused.supports(x):
            return self.fused.softmax(x)
        return super().softmax(x)

    def softmax_cross_entropy(self, x, t):
        """Fused softmax and the book's cross-entropy; see :class:`Backend`.

        x: (N, C) float; t: (N,) integer labels or (N, C) one-hot. One kernel
        for y and the per-row losses, one reduction for their mean; the loss
        is a 0-d device array. A label outside [-C, C) gives a NaN loss.
        """
        self._require_device("softmax_cross_entropy", x=x, t=t)
        if self.fused.supports(x, ndim=2):
            return self.fused.softmax_cross_entropy(x, t)
        return super().softmax_cross_entropy(x, t)

    def softmax_cross_entropy_batched(self, x, t):
        """Losses of P score batches against one target batch, in one launch.

        x: (P, N, C) float (e.g. the scores of P perturbed copies of a
        network); t: (N,) labels or (N, C) one-hot. Returns ``(losses, y)``:
        (P,) device array, each entry what :meth:`softmax_cross_entropy` gives
        for ``x[p]``, and y = softmax(x) (P, N, C). For batched numerical
        gradients: many perturbations per launch instead of one launch each.
        """
        self._require_device("softmax_cross_entropy_batched", x=x, t=t)
        if self.fused.supports(x, ndim=3):
            return self.fused.softmax_cross_entropy_batched(x, t)
        xp, y = self.xp, super().softmax(x)
        n = x.shape[1]
        if t.ndim == 2:
            losses = -xp.sum(t * xp.log(y + CE_DELTA), axis=(1, 2)) / n
        else:
            picked = y[:, xp.arange(n), t]
            losses = -xp.sum(xp.log(picked + CE_DELTA), axis=1) / n
        return losses.astype(y.dtype, copy=False), y

    def softmax_cross_entropy_backward(self, y, t, dout=1.0):
        """(y - t) * dout / N in one kernel. y: (N, C); t: labels or one-hot."""
        self._require_device("softmax_cross_entropy_backward", y=y, t=t)
        if self.fused.supports(y, ndim=2):
            return self.fused.softmax_cross_entropy_backward(y, t, dout)
        return super().softmax_cross_entropy_backward(y, t, dout)

    def numerical_gradient(self, f, x):
        """Central differences of an arbitrary Python ``f`` at every element of ``x``.

        This is the generic loop of :class:`Backend`: for a Python function
        there is nothing to batch, so each element costs a few tiny launches
        plus two calls of ``f``. Use it for small arrays and gradient checks.
        ``TwoLayerNet.numerical_gradient`` does not come here when the backend
        has ``two_layer_numerical_gradient``, which batches many perturbations
        per launch.
        """
        self._require_device("numerical_gradient", x=x)
        return super().numerical_gradient(f, x)
