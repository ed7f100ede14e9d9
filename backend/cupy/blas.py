"""cuBLAS products for the fused kernels: one handle per backend, set up once.

``cupy.cublas.gemm`` is pure Python around the binding: per product it builds
NumPy scalars and makes three pointer-mode calls. Here the handle is created
once (``cupy.cuda.cublas.create``, the low-level binding
``cupy_backends/cuda/libs/cublas.pyx``), its pointer mode is set to host once
(``setPointerMode``), the host coefficients ``alpha``/``beta`` live in small
NumPy arrays cached by value, and each product is one call of the binding's
``sgemm``/``dgemm`` (which sets the handle's stream to the current one first,
``_setStream`` in that file).

During a stream capture that binding refuses every call: its ``setStream``
raises ``NotImplementedError`` ("calling cuBLAS API during stream capture is
currently unsupported", ``cupy_backends/cuda/libs/cublas.pyx: setStream``,
CuPy 14). cuBLAS itself supports capture ("CUDA Graphs Support" in the cuBLAS
documentation): with host pointer mode the coefficients' values go into the
graph, and a user workspace (``cublasSetWorkspace``) keeps cuBLAS from
allocating its own inside the capture (memory nodes, which fail in some graphs;
PyTorch sets one per handle for this reason, pytorch/pytorch#83461). So a
product made while capturing goes to the same library through ``ctypes``:
``cublasSetStream_v2`` (which, as its documentation says, resets the workspace
to cuBLAS's default pool), then ``cublasSetWorkspace_v2`` with a buffer of the
size of that default pool (4 MiB, 32 MiB from Hopper on: cuBLAS's heuristics
see the same workspace as in the eager calls and pick the same algorithm),
then ``cublasSgemm_v2``/``cublasDgemm_v2``, with the same handle and pointer
mode: the same kernel as the eager call, hence the same bits (cuBLAS's
reproducibility rule: same toolkit, architecture and SM count). The library is
the one CuPy's binding is linked against (``libcublas.so.<major>``, already
loaded); where it cannot be loaded, capture fails and the caller stays eager.
"""

from __future__ import annotations

import ctypes
import sys

import numpy as np

#: Workspace given to cuBLAS once per handle (cuBLAS recommends at least
#: 32 MiB on Hopper and later, 4 MiB before).
WORKSPACE_BYTES = {9: 32 << 20}
DEFAULT_WORKSPACE_BYTES = 4 << 20

_OP = {"N": 0, "T": 1}  # CUBLAS_OP_N, CUBLAS_OP_T
_GEMM = {"float32": ("sgemm", "cublasSgemm_v2"), "float64": ("dgemm", "cublasDgemm_v2")}


def load_library(xp, handle):
    """The libcublas that CuPy's binding uses, through ctypes, with argument
    types set; raises OSError where it cannot be loaded."""
    major = xp.cuda.cublas.getVersion(handle) // 10000
    windows = sys.platform == "win32"
    name = f"cublas64_{major}.dll" if windows else f"libcublas.so.{major}"
    lib = ctypes.CDLL(name)
    p, i = ctypes.c_void_p, ctypes.c_int
    lib.cublasSetStream_v2.argtypes = [p, p]
    lib.cublasSetWorkspace_v2.argtypes = [p, p, ctypes.c_size_t]
    for fn in (lib.cublasSgemm_v2, lib.cublasDgemm_v2):
        fn.argtypes = [p, i, i, i, i, i, p, p, i, p, i, p, p, i]
    for fn in (lib.cublasSetStream_v2, lib.cublasSetWorkspace_v2, lib.cublasSgemm_v2,
               lib.cublasDgemm_v2):  # fmt: skip
        fn.restype = ctypes.c_int
    return lib


class Blas:
    """``gemm`` on C-contiguous device arrays through one cached cuBLAS handle.

    ``library``: a loader ``(xp, handle) -> library`` (default
    ``load_library``); the tests pass the stand-in's.
    """

    def __init__(self, xp, library=load_library):
        self.xp = xp
        self.loader = library
        self.handle = None
        self.library = None
        #: Why the library could not be loaded (capture then fails), or None.
        self.library_error = None
        #: The capturing stream while a capture is under way (set by the backend).
        self.capturing = None
        self._coefficients: dict = {}
        self._workspace = None

    def _setup(self) -> None:
        binding = self.xp.cuda.cublas
        self.handle = binding.create()
        binding.setPointerMode(self.handle, binding.CUBLAS_POINTER_MODE_HOST)
        try:
            self.library = self.loader(self.xp, self.handle)
            major = int(self.xp.cuda.Device().compute_capability) // 10
            size = WORKSPACE_BYTES.get(min(major, 9), DEFAULT_WORKSPACE_BYTES)
            self._workspace = self.xp.empty(size, dtype=np.uint8)  # kept for good
        except (OSError, AttributeError, RuntimeError) as exc:
            self.library, self.library_error = None, exc

    def _coefficient(self, value, dtype) -> int:
        """Host pointer of a cached one-element array holding ``value``."""
        key = (float(value), dtype.char)
        if key not in self._coefficients:
            self._coefficients[key] = np.array([value], dtype=dtype)
        return self._coefficients[key].ctypes.data

    def prepared(self, transa, transb, a_shape, b, out, alpha=1.0, beta=0.0):
        """``run(a)``: ``gemm`` with everything
        but ``a`` fixed now (``a`` of shape ``a_shape``, C-contiguous, of
        out's dtype; b and out must stay alive and in place)."""
        if self.handle is None:
            self._setup()
        dtype = out.dtype
        m, n = out.shape
        k = a_shape[0] if transa == "T" else a_shape[1]
        head = (
            self.handle, _OP[transb], _OP[transa], n, m, k,
            self._coefficient(alpha, dtype), b.data.ptr, b.shape[1],
        )  # fmt: skip
        tail = (a_shape[1], self._coefficient(beta, dtype), out.data.ptr, n)
        binding_name, library_name = _GEMM[dtype.name]
        binding_fn = getattr(self.xp.cuda.cublas, binding_name)

        def run(a) -> None:
            args = head + (a.data.ptr,) + tail
            if self.capturing is None:
                binding_fn(*args)
            else:
                self._captured(library_name, args)

        return run

    def _captured(self, library_name: str, args) -> None:
        """A product queued on the capturing stream through the library."""
        if self.library is None:
            raise RuntimeError(
                f"cuBLAS cannot be called during a capture: {self.library_error}"
            )
        lib, handle, work = self.library, self.handle, self._workspace
        _check(lib.cublasSetStream_v2(handle, self.capturing.ptr), "cublasSetStream")
        # After cublasSetStream, which resets the workspace to cuBLAS's pool.
        _check(
            lib.cublasSetWorkspace_v2(handle, work.data.ptr, work.nbytes),
            "cublasSetWorkspace",
        )
        _check(getattr(lib, library_name)(*args), library_name)

    def gemm(self, transa, transb, a, b, out, alpha=1.0, beta=0.0) -> None:
        """out = alpha * op(a) @ op(b) + beta * out, all C-contiguous 2-D of
        one float dtype; op is 'N' (as is) or 'T' (transposed).

        cuBLAS is column-major: a C-contiguous (m, n) out is a column-major
        (n, m) matrix, so this computes out.T = op(b).T @ op(a).T, swapping
        the operands as ``cupy.cublas.gemm`` does, with no copy.
        """
        if self.handle is None:
            self._setup()
        dtype = a.dtype
        m, n = out.shape
        k = a.shape[0] if transa == "T" else a.shape[1]
        lda, ldb = a.shape[1], b.shape[1]
        args = (
            self.handle, _OP[transb], _OP[transa], n, m, k,
            self._coefficient(alpha, dtype), b.data.ptr, ldb, a.data.ptr, lda,
            self._coefficient(beta, dtype), out.data.ptr, n,
        )  # fmt: skip
        binding_fn, library_fn = _GEMM[dtype.name]
        if self.capturing is None:
            getattr(self.xp.cuda.cublas, binding_fn)(*args)
        else:
            self._captured(library_fn, args)


def _check(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"{what} failed with cuBLAS status {status}")
