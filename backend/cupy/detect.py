"""Whether CuPy can run this backend here, and a one-line reason when not.

:func:`check_device` tells apart CuPy missing, the NVIDIA driver missing or
too old, no CUDA device, a GPU too old for this CuPy build and NVRTC (CuPy's
kernel compiler) missing, each with its own :class:`BackendUnavailableError`
naming the fix.
"""

from __future__ import annotations

import os

from backend.base import BackendUnavailableError

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
