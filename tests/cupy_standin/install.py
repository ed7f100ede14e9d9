"""Make the stand-in the shim's ``cupy`` backend: for tests and their subprocesses.

The library has no switch for this: a test builds ``CuPyBackend(cupy=stand-in)``
(which runs the real detection against the stand-in) and puts it where the
shim keeps its backend instances, exactly where ``backend.get_backend("cupy")``
would have put a real one.
"""

from __future__ import annotations

import contextlib

import backend as B
import cupy_standin


def standin_backend():
    """A fresh CuPy backend bound to the stand-in (detection included).

    Its cuBLAS library (what ``ctypes`` loads on a GPU machine, for products
    made during a capture) is the stand-in's, ``cublas_binding.LIBRARY``.
    """
    from backend.cupy import CuPyBackend
    from cupy_standin.cublas_binding import LIBRARY

    be = CuPyBackend(cupy=cupy_standin)
    be.fused_two_layer.blas.loader = lambda xp, handle: LIBRARY
    return be


def real_gpu_backend():
    """The CuPy backend on a real GPU, or None where there is none."""
    try:
        be = B.get_backend("cupy")
    except B.BackendUnavailableError:
        return None
    return None if getattr(be.xp, "STANDIN", False) else be


def install(be=None):
    """Register ``be`` (default: a new stand-in backend) as the ``cupy`` backend
    for the rest of the process; returns it."""
    be = be or standin_backend()
    B._instances["cupy"] = be
    return be


@contextlib.contextmanager
def installed(be=None):
    """`install` for the duration of a ``with`` block."""
    previous = B._instances.get("cupy")
    be = install(be)
    try:
        yield be
    finally:
        if previous is None:
            B._instances.pop("cupy", None)
        else:
            B._instances["cupy"] = previous
