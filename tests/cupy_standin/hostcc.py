"""Compile CUDA C kernels for the host, so that the stand-in can launch them.

The very source a ``cupy.RawModule`` gets is compiled as host C++: a prelude
defines the CUDA built-ins (``threadIdx``, ``blockIdx``, ``__global__``, ...),
and one launcher per ``extern "C"`` kernel runs every (block, thread) of the
grid in turn. The launchers are generated from the kernels' own parameter
lists, read from the preprocessed source, so any kernel file works without a
signature table.

Running threads one after another is exactly a kernel's semantics when its
threads never cooperate. A source that uses ``__shared__`` or
``__syncthreads()`` gets the cooperative launcher instead (see
`COOPERATIVE`): each thread is a fiber and the barrier switches between
them, so block reductions through shared memory run as on a GPU. Not
emulated (a build error): dynamic ``extern __shared__`` arrays, warp
primitives (``__shfl_*_sync``, ``__syncwarp``). ``atomicAdd`` is a plain
add, exact because only one thread runs at a time. The math is the host's libm, not
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
COOPERATION
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

#: Prelude part for kernels whose threads cooperate (``__shared__``,
#: ``__syncthreads()``): each thread of a block is a fiber (ucontext) with its
#: own stack, ``__shared__`` variables are static (one copy, reused block after
#: block, as CUDA leaves shared memory uninitialised), and ``__syncthreads()``
#: passes control to the next unfinished thread of the block: when a thread
#: resumes, every other thread has reached the barrier, which is CUDA's
#: guarantee for barriers that all threads of the block call equally often.
COOPERATIVE = r"""
#include <ucontext.h>
#include <stdlib.h>
#include <functional>
#define __shared__ static
static ucontext_t xpnet_main_ctx;
static ucontext_t* xpnet_ctx;
static bool* xpnet_done;
static xpnet_dim3* xpnet_tid;
static unsigned xpnet_threads, xpnet_cur, xpnet_alive;
static std::function<void()>* xpnet_body;
static void xpnet_resume(unsigned next) {
    xpnet_cur = next;
    threadIdx = xpnet_tid[next];
}
static void __syncthreads() {
    unsigned me = xpnet_cur;
    for (unsigned k = 1; k < xpnet_threads; ++k) {
        unsigned next = (me + k) % xpnet_threads;
        if (!xpnet_done[next]) {
            xpnet_resume(next);
            swapcontext(&xpnet_ctx[me], &xpnet_ctx[next]);
            xpnet_resume(me);
            return;
        }
    }
}
static void xpnet_fiber() {
    unsigned me = xpnet_cur;
    (*xpnet_body)();
    xpnet_done[me] = true;
    if (--xpnet_alive == 0) setcontext(&xpnet_main_ctx);
    for (unsigned k = 1; k < xpnet_threads; ++k) {
        unsigned next = (me + k) % xpnet_threads;
        if (!xpnet_done[next]) {
            xpnet_resume(next);
            setcontext(&xpnet_ctx[next]);
        }
    }
}
template <typename... P, typename... A>
static void xpnet_emulate_cooperative(void (*kernel)(P...), const unsigned* g,
                                      const unsigned* b, A... args) {
    const size_t stack = 1 << 17;
    gridDim = {g[0], g[1], g[2]};
    blockDim = {b[0], b[1], b[2]};
    unsigned n = b[0] * b[1] * b[2];
    std::function<void()> body = [&]() { kernel(args...); };
    xpnet_body = &body;
    xpnet_threads = n;
    xpnet_ctx = new ucontext_t[n];
    xpnet_done = new bool[n];
    xpnet_tid = new xpnet_dim3[n];
    char* stacks = (char*)malloc(n * stack);
    for (unsigned bz = 0; bz < g[2]; ++bz)
    for (unsigned by = 0; by < g[1]; ++by)
    for (unsigned bx = 0; bx < g[0]; ++bx) {
        blockIdx = {bx, by, bz};
        for (unsigned i = 0; i < n; ++i) {
            xpnet_tid[i] = {i % b[0], (i / b[0]) % b[1], i / (b[0] * b[1])};
            xpnet_done[i] = false;
            getcontext(&xpnet_ctx[i]);
            xpnet_ctx[i].uc_stack.ss_sp = stacks + (size_t)i * stack;
            xpnet_ctx[i].uc_stack.ss_size = stack;
            xpnet_ctx[i].uc_link = nullptr;
            makecontext(&xpnet_ctx[i], xpnet_fiber, 0);
        }
        xpnet_alive = n;
        xpnet_resume(0);
        swapcontext(&xpnet_main_ctx, &xpnet_ctx[0]);
    }
    free(stacks);
    delete[] xpnet_ctx;
    delete[] xpnet_done;
    delete[] xpnet_tid;
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
        text = PRELUDE + COOPERATIVE + code + " ".join(flags)
        key = hashlib.sha256(text.encode()).hexdigest()
        folder = cache_dir()
        lib = folder / f"{key[:24]}.so"
        kernel = folder / f"{key[:24]}.cu"
        if not kernel.exists():
            _write_atomic(kernel, code)
        #: Whether the threads of a block cooperate (then each runs as a fiber).
        self.cooperative = "__syncthreads" in code or "__shared__" in code
        prelude = PRELUDE.replace("KERNEL_SOURCE", str(kernel)).replace(
            "COOPERATION", COOPERATIVE if self.cooperative else ""
        )
        self.kernels = _signatures(cxx, prelude, folder, key)
        if not lib.exists():
            src = folder / f"{key[:24]}.cpp"
            launch = (
                "xpnet_emulate_cooperative" if self.cooperative else "xpnet_emulate"
            )
            _write_atomic(src, prelude + _launchers(self.kernels, launch))
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


def _launchers(kernels: dict, launch: str) -> str:
    out = []
    for name, params in kernels.items():
        decl = ", ".join(
            f"{p.decl.rsplit(' ', 1)[0]} a{i}" for i, p in enumerate(params)
        )
        args = ", ".join(f"a{i}" for i in range(len(params)))
        sep = ", " if params else ""
        out.append(
            f'extern "C" void xpnet_host_{name}(const unsigned* g, const unsigned* b'
            f"{sep}{decl}) {{ {launch}({name}, g, b{sep}{args}); }}"
        )
    return "\n".join(out) + "\n"
