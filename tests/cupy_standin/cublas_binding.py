"""``cupy.cuda.cublas`` of the stand-in: CuPy's low-level cuBLAS binding
(``cupy_backends/cuda/libs/cublas.pyx`` in CuPy 14), and ``LIBRARY``, what
``ctypes.CDLL("libcublas.so.13")`` gives on a GPU machine.

Handles, pointer modes and streams are tracked per handle; the products read
and write host memory through the same integer pointers that CuPy passes
(``ndarray.data.ptr``), column-major as cuBLAS is. As in CuPy, every binding
call that queues work first calls ``setStream(handle, current stream)``, and
``setStream`` raises ``NotImplementedError`` while that stream captures
(CuPy: "calling cuBLAS API during stream capture is currently unsupported").
The library's functions (``cublasSgemm_v2`` ...) have no such check: during a
capture of the handle's stream they are recorded, and the coefficients are
read as cuBLAS documents for graphs ("CUDA Graphs Support" in the cuBLAS
docs): in host pointer mode when the call is made (their values go into the
graph), in device pointer mode when the graph runs. ``cublasSetStream`` resets
the handle's workspace to cuBLAS's pool (cuBLAS docs); a product captured
without a user workspace set after it raises here (on a GPU cuBLAS would
allocate inside the graph).
"""

from __future__ import annotations

import ctypes
import itertools

import numpy as np

import cupy_standin as _cp

CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_OP_C = 0, 1, 2
CUBLAS_POINTER_MODE_HOST, CUBLAS_POINTER_MODE_DEVICE = 0, 1

_handles: dict[int, dict] = {}
_ids = itertools.count(0x1000, 0x10)


def getVersion(handle=None):  # noqa: N802 (CuPy's names)
    return 130000


def create() -> int:
    handle = next(_ids)
    _handles[handle] = {"mode": CUBLAS_POINTER_MODE_HOST, "stream": 0, "work": None}
    return handle


def destroy(handle) -> None:
    _handles.pop(handle)


def getPointerMode(handle) -> int:  # noqa: N802
    return _handles[handle]["mode"]


def setPointerMode(handle, mode) -> None:  # noqa: N802
    _handles[handle]["mode"] = int(mode)


def setStream(handle, stream) -> None:  # noqa: N802
    if _cp.cuda.runtime.streamIsCapturing(stream):
        raise NotImplementedError(
            "calling cuBLAS API during stream capture is currently unsupported"
        )
    _handles[handle]["stream"] = int(stream)
    _handles[handle]["work"] = None  # cublasSetStream resets the workspace


def getStream(handle) -> int:  # noqa: N802
    return _handles[handle]["stream"]


def _setStream(handle) -> None:  # noqa: N802 (the binding's cdef helper)
    setStream(handle, _cp.cuda.get_current_stream().ptr)


def sgemm(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    _setStream(handle)
    LIBRARY.gemm(np.float32, handle, transa, transb, m, n, k, alpha, A, lda, B,
                 ldb, beta, C, ldc)  # fmt: skip


def dgemm(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    _setStream(handle)
    LIBRARY.gemm(np.float64, handle, transa, transb, m, n, k, alpha, A, lda, B,
                 ldb, beta, C, ldc)  # fmt: skip


def _matrix(ptr, rows, cols, ld, dtype):
    """The (rows, cols) column-major matrix at ``ptr`` with leading dimension ld."""
    dtype = np.dtype(dtype)
    if rows == 0 or cols == 0:
        return np.zeros((rows, cols), dtype)
    count = ld * (cols - 1) + rows
    raw = (ctypes.c_char * (count * dtype.itemsize)).from_address(int(ptr))
    flat = np.frombuffer(raw, dtype=dtype, count=count)
    return np.lib.stride_tricks.as_strided(
        flat, (rows, cols), (dtype.itemsize, ld * dtype.itemsize)
    )


def _scalar(ptr, dtype):
    return _matrix(ptr, 1, 1, 1, dtype)[0, 0].copy()


class _Library:
    """The libcublas functions xpnet calls through ctypes (status 0 = success)."""

    def cublasSetStream_v2(self, handle, stream):  # noqa: N802 (cuBLAS's names)
        # "This function unconditionally resets the cuBLAS library workspace
        # back to the default workspace pool" (cuBLAS docs, cublasSetStream).
        _handles[int(handle)].update(stream=int(stream or 0), work=None)
        return 0

    def cublasSetWorkspace_v2(self, handle, workspace, size):  # noqa: N802
        _handles[int(handle)]["work"] = (int(workspace or 0), int(size))
        return 0

    def cublasSgemm_v2(self, handle, *args):  # noqa: N802
        self.gemm(np.float32, int(handle), *args)
        return 0

    def cublasDgemm_v2(self, handle, *args):  # noqa: N802
        self.gemm(np.float64, int(handle), *args)
        return 0

    def gemm(self, dtype, handle, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C,
             ldc):  # fmt: skip
        """C = alpha * op(A) @ op(B) + beta * C, column-major (one launch)."""
        state = _handles[handle]
        host_mode = state["mode"] == CUBLAS_POINTER_MODE_HOST
        coefficients = (_scalar(alpha, dtype), _scalar(beta, dtype))

        def run():
            if _cp._DRY:
                return
            a, b = coefficients if host_mode else (_scalar(alpha, dtype),
                                                   _scalar(beta, dtype))  # fmt: skip
            opa = _matrix(A, *((m, k) if ta == CUBLAS_OP_N else (k, m)), lda, dtype)
            opb = _matrix(B, *((k, n) if tb == CUBLAS_OP_N else (n, k)), ldb, dtype)
            opa = opa if ta == CUBLAS_OP_N else opa.T
            opb = opb if tb == CUBLAS_OP_N else opb.T
            c = _matrix(C, m, n, ldc, dtype)
            prod = opa @ opb
            # cuBLAS does not read C when beta == 0 (it may hold NaN garbage).
            c[...] = a * prod if b == 0 else a * prod + b * c

        stream = _cp._STREAMS[state["stream"]]
        if stream._recording is not None:
            if state["work"] is None:
                # cuBLAS would take workspace from its pool inside the graph
                # (memory nodes): xpnet gives it one (backend/cupy/blas.py).
                raise RuntimeError(
                    "cuBLAS call captured without cublasSetWorkspace after "
                    "cublasSetStream"
                )
            stream._recording.append(run)
            return
        _cp.counters.launches += 1
        run()


#: What ``ctypes.CDLL`` of libcublas gives on a GPU machine (the functions
#: xpnet calls); the stand-in backend is given it in place of the real one.
LIBRARY = _Library()
