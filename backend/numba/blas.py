"""Host BLAS kept on the calling thread while Numba's threads hold the cores.

OpenBLAS's workers spin for a while after each multi-threaded call instead of
sleeping. A product just before a parallel Numba kernel (the step's loss
before its numerical gradient) therefore leaves a worker spinning on a core
the kernel wants: measured on 2 cores, 784-50-10, batch 100, the sigmoid
numerical gradient took 20.0 ms right after a BLAS call against 12.0 ms
alone. Inside ``serial_blas()`` BLAS runs on the caller's thread only, so no
worker wakes. It uses threadpoolctl (installed with the ``numba`` extra) and
does nothing where that is missing.
"""

from __future__ import annotations

import contextlib
import threading

_lock = threading.Lock()
_controller = None  # None: not looked for yet; False: no threadpoolctl


def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries, found once."""
    global _controller
    with _lock:
        if _controller is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                _controller = False
            else:
                _controller = ThreadpoolController().select(user_api="blas")
    return _controller


def serial_blas():
    """A context in which host BLAS calls use one thread (about 10 us to
    enter and leave); a no-op without threadpoolctl."""
    controller = _blas_controller()
    if not controller:
        return contextlib.nullcontext()
    return controller.limit(limits=1)
