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

from backend.base import Backend
from backend.constants import CE_DELTA
from backend.cupy.detect import (
    _cuda_version,
    _import_cupy,
    check_device,
)
from backend.cupy.kernels import FusedSoftmax


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


#: What the shim's registry instantiates for this backend.
BACKEND = CuPyBackend
