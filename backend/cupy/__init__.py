"""The CuPy backend: arrays on an NVIDIA GPU.

Detection runs in ``CuPyBackend()`` and fails with a distinct one-line
:class:`BackendUnavailableError` for each cause: CuPy missing, NVIDIA driver
missing or too old, no CUDA device, NVRTC (CuPy's kernel compiler), cuBLAS or
the CUDA headers missing, or the first matrix product, kernel launch or
synchronisation failing (see ``backend.cupy.detect``).
The shim's ``auto`` turns that into a warning and a CPU backend; an explicit
``cupy``/``cuda`` lets it propagate.

Kernels queue work on the current stream and never wait for it: only
:meth:`CuPyBackend.synchronize`, ``asnumpy`` and the caller's ``float(loss)``
wait for the device.
"""

from __future__ import annotations

import numpy as np

from backend.base import Backend
from backend.constants import CE_DELTA, OPT_EPS
from backend.cupy.batchnorm import FusedBatchNorm
from backend.cupy.detect import (
    _cuda_version,
    _import_cupy,
    check_device,
    probe_first_step,
)
from backend.cupy.fused import FusedTwoLayer
from backend.cupy.kernels import FusedSoftmax
from backend.cupy.updates import FusedUpdates


def _kind(a) -> str:
    """'numpy.ndarray' / 'cupy.ndarray' / type name, for error messages."""
    cls = type(a)
    return f"{cls.__module__.split('.')[0]}.{cls.__name__}"


def _is_numpy_array(a) -> bool:
    return type(a).__module__.split(".")[0] == "numpy" and hasattr(a, "shape")


def _labelled(xp, picked, t, classes: int):
    """``picked`` (y at the labels ``t``), NaN where a label is outside
    [-classes, classes): the fused kernels' rule, without waiting for the device."""
    return xp.where((t >= -classes) & (t < classes), picked, xp.nan)


def _check_rows(rows, n: int) -> None:
    """NumPy's IndexError for the first host index outside [-n, n)."""
    rows = np.asarray(rows).ravel()
    bad = rows[(rows < -n) | (rows >= n)]
    if bad.size:
        raise IndexError(f"index {bad[0]} is out of bounds for axis 0 with size {n}")


class CuPyBackend(Backend):
    """Device arrays on one CUDA device; cuBLAS matmul, fused softmax kernels
    and the fused two-layer kernels (step, evaluation, numerical gradient,
    batch gather: ``backend/cupy/fused.py``).

    The device is 0 unless ``$XPNET_CUDA_DEVICE`` says otherwise (indices
    count after ``CUDA_VISIBLE_DEVICES``).
    """

    name = "cupy"
    on_host = False

    def __init__(self, cupy=None):
        """``cupy``: the CuPy module to use (default: ``import cupy``)."""
        cupy = cupy or _import_cupy()
        self.device_id = check_device(cupy)
        cupy.cuda.Device(self.device_id).use()
        probe_first_step(cupy, FusedSoftmax(cupy))
        self._bind(cupy)

    def _bind(self, xp) -> None:
        self.xp = xp
        self.fused = FusedSoftmax(xp)
        self.fused_two_layer = FusedTwoLayer(xp)
        self.fused_updates = FusedUpdates(xp)
        self.fused_batchnorm = FusedBatchNorm(xp)

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

    def scaled_rows(self, x, rows, scale, dtype):
        """As :meth:`Backend.scaled_rows`; see there.

        Host row indices (what the trainer passes) are bounds-checked on the
        host first, so a row out of range is the same ``IndexError`` as on the
        CPU, where CuPy's indexing would silently wrap it around. Device row
        indices are not checked (that would wait for the device): they wrap,
        as CuPy documents. uint8 pixels with device indices (the trainer's
        steps) go through one fused kernel: gather, divide and cast, reading a
        quarter of the bytes that float32 images would need.
        """
        if isinstance(rows, (list, tuple)) or _is_numpy_array(rows):
            _check_rows(rows, x.shape[0])
            return super().scaled_rows(x, rows, scale, dtype)
        out = self.fused_two_layer.scaled_rows(x, rows, scale, dtype)
        return super().scaled_rows(x, rows, scale, dtype) if out is None else out

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
        if t.ndim == 2:
            return super().softmax_cross_entropy(x, t)
        # The generic code with the kernel's rule: CuPy would wrap a bad label.
        xp, y = self.xp, self.softmax(x)
        n = y.shape[0]
        picked = _labelled(xp, y[xp.arange(n), t], t, y.shape[-1])
        loss = -xp.sum(xp.log(picked + CE_DELTA)) / n
        return xp.asarray(loss, dtype=y.dtype), y

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
            picked = _labelled(xp, y[:, xp.arange(n), t], t, y.shape[-1])
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

    # -- fused kernels of the two-layer network ----------------------------
    # backend/cupy/fused.py has the launchers and their launch counts; each
    # returns None for inputs it does not cover (another dtype or layout),
    # and the caller takes the layer-by-layer path.

    def two_layer_sgd_step(self, params, x, t, lr, activation):
        """One SGD step of TwoLayerNet in 2 kernels and 2 cuBLAS products, no
        copy and no synchronisation; -> the 0-d loss before the update, or
        None (float16 params, say). See ``FusedTwoLayer.sgd_step``."""
        self._require_device("two_layer_sgd_step", x=x, t=t, **params)
        return self.fused_two_layer.sgd_step(params, x, t, lr, activation)

    def two_layer_count_correct(self, params, x, t, activation):
        """Rows classified right and whether some hidden unit fired, in one
        product and one kernel per chunk and one copy to the host; or None.
        See ``FusedTwoLayer.count_correct``."""
        self._require_device("two_layer_count_correct", x=x, t=t, **params)
        return self.fused_two_layer.count_correct(params, x, t, activation)

    def two_layer_numerical_gradient(self, params, x, t, activation, forward):
        """The fast numerical gradient with every perturbed loss evaluated by
        one CUDA kernel (one thread per parameter); the generic ``xp`` code
        for an activation the kernel does not know. See
        ``FusedTwoLayer.numerical_gradient``."""
        self._require_device("two_layer_numerical_gradient", x=x, t=t, **params)
        grads = self.fused_two_layer.numerical_gradient(params, x, t, activation)
        if grads is None:
            return super().two_layer_numerical_gradient(
                params, x, t, activation, forward
            )
        return grads

    # -- chapter 6: optimizers and Dropout (backend/cupy/updates.py) -------
    # One launch per parameter array (no temporaries, no copy, no sync);
    # anything the kernels do not cover takes the generic ``xp`` code.

    def momentum_update(self, params, grads, vs, lr, momentum):
        """As ``Backend.momentum_update``: one launch per parameter array."""
        if not self.fused_updates.update(
            "momentum", params, (grads, vs), (lr, momentum)
        ):
            super().momentum_update(params, grads, vs, lr, momentum)

    def nesterov_update(self, params, grads, vs, lr, momentum):
        """As ``Backend.nesterov_update``: one launch per parameter array."""
        scalars = (lr, momentum, momentum * momentum, (1 + momentum) * lr)
        if not self.fused_updates.update("nesterov", params, (grads, vs), scalars):
            super().nesterov_update(params, grads, vs, lr, momentum)

    def adagrad_update(self, params, grads, hs, lr):
        """As ``Backend.adagrad_update``: one launch per parameter array."""
        if not self.fused_updates.update("adagrad", params, (grads, hs), (lr, OPT_EPS)):
            super().adagrad_update(params, grads, hs, lr)

    def rmsprop_update(self, params, grads, hs, lr, decay_rate):
        """As ``Backend.rmsprop_update``: one launch per parameter array."""
        scalars = (lr, decay_rate, 1 - decay_rate, OPT_EPS)
        if not self.fused_updates.update("rmsprop", params, (grads, hs), scalars):
            super().rmsprop_update(params, grads, hs, lr, decay_rate)

    def adam_update(self, params, grads, ms, vs, lr_t, beta1, beta2):
        """As ``Backend.adam_update``: one launch per parameter array, where
        CuPy's generic code launches eight with a temporary each."""
        scalars = (lr_t, 1 - beta1, 1 - beta2, OPT_EPS)
        if not self.fused_updates.update("adam", params, (grads, ms, vs), scalars):
            super().adam_update(params, grads, ms, vs, lr_t, beta1, beta2)

    def batchnorm_forward(self, x, gamma, beta):
        """As ``Backend.batchnorm_forward``, in one launch (one thread per
        feature), where the generic code launches about a dozen."""
        self._require_device("batchnorm_forward", x=x, gamma=gamma, beta=beta)
        result = self.fused_batchnorm.forward(x, gamma, beta)
        return super().batchnorm_forward(x, gamma, beta) if result is None else result

    def batchnorm_backward(self, dout, gamma, xc, xn, std):
        """As ``Backend.batchnorm_backward``, in one launch."""
        result = self.fused_batchnorm.backward(dout, gamma, xn, std)
        if result is None:
            return super().batchnorm_backward(dout, gamma, xc, xn, std)
        return result

    def dropout_mask(self, shape, ratio, seed, counter):
        """``Backend.dropout_mask``'s hash, bit for bit, in one launch."""
        from backend.updates import dropout_keys, keep_threshold

        keys = dropout_keys(seed, counter)
        return self.fused_updates.dropout_mask(shape, keys, keep_threshold(ratio))


#: What the shim's registry instantiates for this backend.
BACKEND = CuPyBackend
