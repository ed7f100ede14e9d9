"""The CuPy backend: arrays on an NVIDIA GPU."""

from __future__ import annotations

from backend._base import Backend, BackendUnavailableError


def _import_cupy():
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailableError(
            'the cupy backend needs CuPy: pip install "xpnet[cuda13]" '
            '(or "xpnet[cuda12]" for a CUDA 12 driver)'
        ) from exc
    if not cupy.is_available():
        raise BackendUnavailableError(
            "CuPy is installed but no usable CUDA GPU was found"
        )
    return cupy


class CuPyBackend(Backend):
    """Device arrays on the current CUDA device."""

    name = "cupy"
    on_host = False

    def __init__(self):
        self.xp = _import_cupy()

    def asnumpy(self, a):
        return self.xp.asnumpy(a)

    def synchronize(self) -> None:
        self.xp.cuda.get_current_stream().synchronize()
