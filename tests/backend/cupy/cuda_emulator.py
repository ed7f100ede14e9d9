"""Run backend/cupy/softmax.cu on the CPU, and a NumPy stand-in for CuPy.

``build_host_library`` compiles the very source file the CuPy backend loads,
as host C++: a small prelude defines the CUDA built-ins (``threadIdx``,
``__global__``, ...), and one launcher per kernel (generated from
``backend.cupy.kernels.SIGNATURES``) runs every (block, thread) of a grid in
turn. The kernels' threads never cooperate (one thread per row), so running
them one after another is exactly their semantics on a GPU.

``FakeCuPy`` is a namespace with the few CuPy functions the backend's host
code calls; its arrays are :class:`DeviceArray` (a NumPy subclass that the
shim does not mistake for a host array) and its ``RawModule`` launches through
the host library, so the Python side runs end to end without a GPU.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np

from backend.cupy import kernels as K

PRELUDE = r"""
#include <math.h>
struct xpnet_dim3 { unsigned x, y, z; };
static xpnet_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
#include "SOURCE"

template <typename... P, typename... A>
static void xpnet_emulate(void (*kernel)(P...), unsigned grid, unsigned block,
                          A... args) {
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    for (unsigned b = 0; b < grid; ++b) {
        for (unsigned t = 0; t < block; ++t) {
            blockIdx = {b, 0, 0};
            threadIdx = {t, 0, 0};
            kernel(args...);
        }
    }
}
"""

C_TYPES = {"float": ctypes.c_float, "double": ctypes.c_double}
SUFFIX_TYPE = {"f32": "float", "f64": "double"}
NUMPY_TYPE = {"float": np.float32, "double": np.float64}


def host_compiler() -> str | None:
    """A C++ compiler on PATH (g++, c++ or clang++), or None."""
    for name in ("g++", "c++", "clang++"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _launchers() -> str:
    out = []
    for kernel, sig in K.SIGNATURES.items():
        for suffix, ctype in SUFFIX_TYPE.items():
            types = [s.replace("T", ctype) for s in sig]
            params = ", ".join(f"{t} a{i}" for i, t in enumerate(types))
            args = ", ".join(f"a{i}" for i in range(len(types)))
            name = f"{kernel}_{suffix}"
            out.append(
                f'extern "C" void host_{name}(unsigned grid, unsigned block, '
                f"{params}) {{ xpnet_emulate({name}, grid, block, {args}); }}"
            )
    return "\n".join(out)


def build_host_library(workdir: Path) -> ctypes.CDLL:
    """Compile softmax.cu plus launchers into a shared library and load it."""
    src = workdir / "softmax_host.cpp"
    src.write_text(PRELUDE.replace("SOURCE", str(K.SOURCE_PATH)) + _launchers())
    lib = workdir / "softmax_host.so"
    cmd = [host_compiler(), "-std=c++14", "-O1", "-shared", "-fPIC", "-Wall"]
    cmd += ["-Werror", "-o", str(lib), str(src)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"host build of softmax.cu failed:\n{result.stderr}")
    return ctypes.CDLL(str(lib))


def _ctype(kind: str, ctype: str):
    if kind.endswith("*"):
        return ctypes.c_void_p
    if kind == "long long":
        return ctypes.c_longlong
    return C_TYPES[ctype]


class HostKernel:
    """``kernel(grid, block, args)`` like a ``cupy.RawKernel``, run on the CPU."""

    def __init__(self, library: ctypes.CDLL, name: str):
        kernel, suffix = name.rsplit("_", 1)
        ctype = SUFFIX_TYPE[suffix]
        self.signature = K.SIGNATURES[kernel]
        self.ctype = ctype
        self.fn = getattr(library, f"host_{name}")
        self.fn.argtypes = [ctypes.c_uint, ctypes.c_uint] + [
            _ctype(k, ctype) for k in self.signature
        ]
        self.fn.restype = None
        self.calls: list[tuple] = []

    def __call__(self, grid, block, args):
        assert len(args) == len(self.signature), (self.signature, args)
        converted = []
        for kind, a in zip(self.signature, args, strict=True):
            base = kind.replace("const ", "").rstrip("*")
            want = np.int64 if base == "long long" else NUMPY_TYPE[self.ctype]
            if kind.endswith("*"):
                assert isinstance(a, np.ndarray) and a.flags.c_contiguous, kind
                assert a.dtype == want, (kind, a.dtype)
                converted.append(a.ctypes.data)
            else:
                # Scalars must already have the kernel's exact type, as CuPy needs.
                assert type(a) is want, (kind, type(a))
                converted.append(a.item())
        self.calls.append((tuple(grid), tuple(block)))
        self.fn(int(grid[0]), int(block[0]), *converted)


class DeviceArray(np.ndarray):
    """A NumPy array standing in for ``cupy.ndarray`` (not a host array to the shim)."""


def _dev(a):
    return np.asarray(a).view(DeviceArray)


class FakeStream:
    def __init__(self):
        self.synchronized = 0

    def synchronize(self):
        self.synchronized += 1


class FakeRawModule:
    """Records the code it was given; functions run through the host library."""

    instances: list = []

    def __init__(self, library, code, options=()):
        self.library, self.code, self.options = library, code, options
        FakeRawModule.instances.append(self)

    def get_function(self, name):
        return HostKernel(self.library, name)


class FakeCuPy:
    """The subset of the ``cupy`` namespace used by the backend's host code."""

    __name__ = "fakecupy"
    __version__ = "0"

    def __init__(self, library):
        self.library = library
        self.stream = FakeStream()
        self.modules: list[FakeRawModule] = []
        self.cuda = type("cuda", (), {"get_current_stream": lambda _s: self.stream})()

    def RawModule(self, code, options=()):  # noqa: N802 (CuPy's name)
        module = FakeRawModule(self.library, code, options)
        self.modules.append(module)
        return module

    def ascontiguousarray(self, a, dtype=None):
        return _dev(np.ascontiguousarray(a, dtype=dtype))

    def empty(self, shape, dtype):
        return _dev(np.empty(shape, dtype=dtype))

    def asarray(self, a, dtype=None):
        return _dev(np.asarray(a, dtype=dtype))

    def asnumpy(self, a):
        return np.asarray(a).view(np.ndarray).copy()

    def __getattr__(self, name):
        # Everything else (exp, max, sum, arange, matmul, ...) is NumPy's, with
        # device-array results, for the generic fallback paths.
        fn = getattr(np, name)
        if not callable(fn) or isinstance(fn, type):
            return fn
        return lambda *a, **k: _wrap(fn(*a, **k))


def _wrap(out):
    return out.view(DeviceArray) if isinstance(out, np.ndarray) else out
