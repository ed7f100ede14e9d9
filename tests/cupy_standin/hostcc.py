"""Compile CUDA C kernels for the host, so that the stand-in can launch them.

The very source a ``cupy.RawModule`` gets is compiled as host C++: a prelude
defines the CUDA built-ins (``threadIdx``, ``blockIdx``, ``__global__``, ...),
and one launcher per ``extern "C"`` kernel runs every (block, thread) of the
grid in turn. The launchers are generated from the kernels' own parameter
lists, read from the preprocessed source, so any kernel file works without a
signature table.

Running threads one after another is exactly a kernel's semantics only when
its threads never cooperate: no ``__shared__`` memory and no
``__syncthreads()`` (both are left undefined, so such a kernel fails to build
here rather than giving wrong answers). ``atomicAdd`` is a plain add, which
is exact when threads run one at a time. The math is the host's libm, not
CUDA's (results may differ in the last bits), and g++ does not contract
``a * b + c`` into an FMA where NVRTC by default may.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

PRELUDE = r"""
#include <math.h>
struct xpnet_dim3 { unsigned x, y, z; };
static xpnet_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
static inline float atomicAdd(float* p, float v) { float o = *p; *p += v; return o; }
static inline double atomicAdd(double* p, double v) {
    double o = *p; *p += v; return o;
}
static inline int atomicAdd(int* p, int v) { int o = *p; *p += v; return o; }
static inline unsigned long long atomicAdd(unsigned long long* p,
                                           unsigned long long v) {
    unsigned long long o = *p; *p += v; return o;
}
#include "KERNEL_SOURCE"
template <typename... P, typename... A>
static void xpnet_emulate(void (*kernel)(P...), const unsigned* g, const unsigned* b,
                          A... args) {
    gridDim = {g[0], g[1], g[2]};
    blockDim = {b[0], b[1], b[2]};
    for (unsigned bz = 0; bz < g[2]; ++bz)
    for (unsigned by = 0; by < g[1]; ++by)
    for (unsigned bx = 0; bx < g[0]; ++bx)
    for (unsigned tz = 0; tz < b[2]; ++tz)
    for (unsigned ty = 0; ty < b[1]; ++ty)
    for (unsigned tx = 0; tx < b[0]; ++tx) {
        blockIdx = {bx, by, bz};
        threadIdx = {tx, ty, tz};
        kernel(args...);
    }
}
"""

#: C scalar parameter type -> the NumPy type an argument must have (CuPy
#: passes a NumPy scalar by its own dtype; Python int is int64, float float64).
SCALAR_TYPES = {
    "float": "float32",
    "double": "float64",
    "long long": "int64",
    "long long int": "int64",
    "int": "int32",
    "unsigned int": "uint32",
    "unsigned": "uint32",
    "unsigned long long": "uint64",
    "bool": "bool",
}
CTYPES = {
    "float32": ctypes.c_float,
    "float64": ctypes.c_double,
    "int64": ctypes.c_longlong,
    "int32": ctypes.c_int,
    "uint32": ctypes.c_uint,
    "uint64": ctypes.c_ulonglong,
    "bool": ctypes.c_bool,
}
#: Pointee type of a pointer parameter -> the array dtype it must point to.
POINTEE_TYPES = {**SCALAR_TYPES, "unsigned char": "uint8", "signed char": "int8"}

_KERNEL = re.compile(r'extern\s+"C"\s+void\s+(\w+)\s*\(([^)]*)\)\s*\{')


class Param:
    """One kernel parameter: ``dtype`` and whether it is a pointer."""

    def __init__(self, text: str):
        text = " ".join(text.replace("*", " * ").split())
        self.pointer = "*" in text
        words = [
            w
            for w in text.replace("*", " ").split()
            if w not in ("const", "__restrict")
        ]
        ctype = " ".join(words[:-1])  # drop the parameter's name
        table = POINTEE_TYPES if self.pointer else SCALAR_TYPES
        if ctype not in table:
            raise NotImplementedError(f"kernel parameter type {text!r}")
        self.ctype = ctype
        self.dtype = table[ctype]
        self.decl = text

    def __repr__(self) -> str:
        return self.decl


def compiler() -> str | None:
    """A C++ compiler on PATH (g++, c++ or clang++), or None."""
    for name in ("g++", "c++", "clang++"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def cache_dir() -> Path:
    """``$XPNET_STANDIN_CACHE`` or a per-user folder in the temp directory."""
    env = os.environ.get("XPNET_STANDIN_CACHE")
    path = (
        Path(env)
        if env
        else Path(tempfile.gettempdir())
        / (f"xpnet-cupy-standin-{os.getuid() if hasattr(os, 'getuid') else 0}")
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


class HostModule:
    """``code`` compiled as host C++; ``kernels`` maps name -> [Param]."""

    def __init__(self, code: str, werror: bool = False):
        cxx = compiler()
        if cxx is None:
            raise RuntimeError(
                "no C++ compiler (g++/clang++) to run kernels on the host"
            )
        flags = ["-std=c++14", "-O1", "-shared", "-fPIC", "-Wall"]
        if werror:
            flags.append("-Werror")
        key = hashlib.sha256((PRELUDE + code + " ".join(flags)).encode()).hexdigest()
        folder = cache_dir()
        lib = folder / f"{key[:24]}.so"
        kernel = folder / f"{key[:24]}.cu"
        if not kernel.exists():
            _write_atomic(kernel, code)
        prelude = PRELUDE.replace("KERNEL_SOURCE", str(kernel))
        self.kernels = _signatures(cxx, prelude, folder, key)
        if not lib.exists():
            src = folder / f"{key[:24]}.cpp"
            _write_atomic(src, prelude + _launchers(self.kernels))
            tmp = folder / f"{key[:24]}.{os.getpid()}.so"
            result = subprocess.run(
                [cxx, *flags, "-o", str(tmp), str(src)], capture_output=True, text=True
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"host build of the kernels failed:\n{result.stderr}"
                )
            os.replace(tmp, lib)
        self.library = ctypes.CDLL(str(lib))

    def function(self, name: str, params: list[Param]):
        fn = getattr(self.library, f"xpnet_host_{name}")
        grid = ctypes.c_uint * 3
        fn.argtypes = [grid, grid] + [
            ctypes.c_void_p if p.pointer else CTYPES[p.dtype] for p in params
        ]
        fn.restype = None
        return fn


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _signatures(cxx: str, prelude: str, folder: Path, key: str) -> dict:
    src = folder / f"{key[:24]}.pre.cpp"
    _write_atomic(src, prelude)
    result = subprocess.run(
        [cxx, "-std=c++14", "-E", "-P", str(src)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"preprocessing the kernels failed:\n{result.stderr}")
    kernels = {}
    for name, params in _KERNEL.findall(result.stdout):
        kernels[name] = [Param(p) for p in params.split(",") if p.strip()]
    return kernels


def _launchers(kernels: dict) -> str:
    out = []
    for name, params in kernels.items():
        decl = ", ".join(
            f"{p.decl.rsplit(' ', 1)[0]} a{i}" for i, p in enumerate(params)
        )
        args = ", ".join(f"a{i}" for i in range(len(params)))
        sep = ", " if params else ""
        out.append(
            f'extern "C" void xpnet_host_{name}(const unsigned* g, const unsigned* b'
            f"{sep}{decl}) {{ xpnet_emulate({name}, g, b{sep}{args}); }}"
        )
    return "\n".join(out) + "\n"
