"""Whether CuPy can run this backend here, and a one-line reason when not.

`check_device` tells apart CuPy missing, the NVIDIA driver missing or
too old, no CUDA device, a GPU too old for this CuPy build and NVRTC (CuPy's
kernel compiler) missing, each with its own `BackendUnavailableError`
naming the fix. `probe_first_step` then does what the first training
step does, once: load cuBLAS (CuPy 14 loads it lazily, on first use, and its
wheels bundle neither cuBLAS nor NVRTC nor the CUDA headers its kernels are
compiled with), one small matrix product, one launch of our kernel (compiled
by NVRTC) and one synchronisation, so that a missing library fails here, as a
one-line reason, and not as a traceback in the middle of training.
"""

from __future__ import annotations

import ctypes
import os
import sys

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
#: Where Linux's NVIDIA kernel driver shows itself once loaded.
PROC_DRIVER = "/proc/driver/nvidia"
#: The NVIDIA driver's user-space library (CUDA's driver API).
LIBCUDA = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
#: What ``--device auto`` says on a machine without an NVIDIA driver.
NO_GPU = "no NVIDIA GPU found"


#: The pip packages that provide what CuPy loads at run time, per CUDA major
#: version (all in ``xpnet[cuda13]`` / ``xpnet[cuda12]``; CuPy's own
#: ``cupy-cudaNNx[ctk]`` extra installs them too, with more libraries).
RUNTIME_PACKAGES = {
    13: {
        "nvrtc": "nvidia-cuda-nvrtc==13.*",
        "cublas": "nvidia-cublas==13.*",
        "headers": "nvidia-cuda-runtime==13.*",
    },
    12: {
        "nvrtc": "nvidia-cuda-nvrtc-cu12==12.*",
        "cublas": "nvidia-cublas-cu12==12.*",
        "headers": "nvidia-cuda-runtime-cu12==12.*",
    },
}


def _package(major: int, what: str) -> str:
    name = RUNTIME_PACKAGES.get(major, RUNTIME_PACKAGES[13])[what]
    return f'pip install "{name}" (part of "xpnet[cuda{major}]")'


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
    """Raise `BackendUnavailableError` unless ``cupy`` can run kernels.

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
        raise BackendUnavailableError(_nvrtc_message(major, exc)) from exc
    raw = os.environ.get(DEVICE_ENV, "0").strip() or "0"
    if not raw.isdigit() or int(raw) >= count:
        raise BackendUnavailableError(
            f"{DEVICE_ENV}={raw!r} is not a device index; {count} device(s) "
            f"visible, so use 0..{count - 1}"
        )
    _check_architecture(runtime, int(raw))
    return int(raw)


def _nvrtc_message(major: int, exc) -> str:
    return (
        f"CuPy cannot load NVRTC, its kernel compiler ({_detail(exc)}); "
        f'{_package(major, "nvrtc")}, or "cupy-cuda{major}x[ctk]", or install '
        f"CUDA Toolkit {major}"
    )


def _detail(exc, limit: int = 240) -> str:
    text = _one_line(exc)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def probe_first_step(cupy, fused) -> None:
    """Raise `BackendUnavailableError` unless what the first training
    step needs works: cuBLAS, a matrix product, a launch of our kernel
    (``fused``: a `FusedSoftmax` on ``cupy``)
    and a synchronisation. Each failure names the package that fixes it."""
    major = cupy.cuda.runtime.runtimeGetVersion() // 1000
    stage = "loading cuBLAS"
    try:
        cupy.cuda.cublas  # noqa: B018 (CuPy 14 loads libcublas on this access)
        stage = "a matrix product (cuBLAS)"
        a = cupy.ones((2, 2), dtype=cupy.float32)
        cupy.matmul(a, a)
        stage = "a launch of the softmax kernel (compiled by NVRTC)"
        fused.softmax(a)
        stage = "a synchronisation"
        cupy.cuda.get_current_stream().synchronize()
    except Exception as exc:  # noqa: BLE001 (CuPy raises many types here)
        raise BackendUnavailableError(_first_step_message(major, stage, exc)) from exc


def _first_step_message(major: int, stage: str, exc) -> str:
    text = _one_line(exc).lower()
    if "cublas" in text or stage == "loading cuBLAS":
        return (
            f"CuPy cannot load cuBLAS, which every matrix product needs "
            f"({_detail(exc)}); {_package(major, 'cublas')}"
        )
    if "header" in text or "cuda_fp16" in text:
        return (
            f"CuPy cannot find the CUDA headers it compiles its kernels with "
            f"({_detail(exc)}); {_package(major, 'headers')}, or set CUDA_PATH "
            f"to a CUDA Toolkit {major}"
        )
    if "nvrtc" in text:
        return _nvrtc_message(major, exc)
    return (
        f"the GPU failed {stage} ({_detail(exc)}); run python bench/gpu_report.py "
        "for the details, or use --device cpu"
    )


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


def driver_cuda_version() -> int | None:
    """The CUDA version the NVIDIA driver supports (13020 for 13.2), 0 for a
    driver that does not say, None when there is no NVIDIA driver.

    A driver is present when its library (``libcuda.so.1``, ``nvcuda.dll``)
    loads or ``/proc/driver/nvidia`` exists. Quick, and imports no CuPy:
    ``cuDriverGetVersion`` needs no ``cuInit``.
    """
    try:
        lib = ctypes.CDLL(LIBCUDA)
    except OSError:
        return 0 if os.path.exists(PROC_DRIVER) else None
    version = ctypes.c_int(0)
    try:
        if lib.cuDriverGetVersion(ctypes.byref(version)) == 0:
            return int(version.value)
    except AttributeError:
        pass
    return 0


def cuda_extra(driver: int) -> str:
    """The pip extra matching a driver's CUDA version (0: unknown)."""
    if driver >= 13000:
        return '"xpnet[cuda13]"'
    if driver >= 12000:
        return '"xpnet[cuda12]"'
    return '"xpnet[cuda13]" (or "xpnet[cuda12]" for a CUDA 12 driver)'


def auto_skip_reason() -> str | None:
    """Why ``--device auto`` need not even try CuPy here (no NVIDIA driver),
    else None. Saves importing CuPy (seconds) on every CPU-only run."""
    return NO_GPU if driver_cuda_version() is None else None


def missing_cupy_message() -> str:
    """CuPy is not installed: the one line, naming the extra for this driver."""
    driver = driver_cuda_version()
    if driver is None:
        return (
            f"{NO_GPU} (no NVIDIA driver), and CuPy is not installed: the cupy "
            f"backend needs both, CuPy by pip install {cuda_extra(0)}"
        )
    if 0 < driver < 12000:
        return (
            f"the NVIDIA driver supports CUDA {_cuda_version(driver)}, older than "
            "CuPy 14 needs (CUDA 12 or 13): update the driver, then pip install "
            '"xpnet[cuda12]"'
        )
    found = f" for CUDA {_cuda_version(driver)}" if driver else ""
    return (
        f"an NVIDIA driver{found} is present but CuPy is not installed: "
        f"pip install {cuda_extra(driver)}"
    )


def _import_cupy():
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailableError(missing_cupy_message()) from exc
    if getattr(cupy, "__file__", None) is None:
        # A folder named cupy on sys.path (a namespace package), not CuPy.
        raise BackendUnavailableError(f"{missing_cupy_message()} (found only {cupy!r})")
    return cupy
