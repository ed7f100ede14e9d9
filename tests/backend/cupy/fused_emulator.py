"""Run the fused two-layer kernels (backend/cupy/*.cu) on the CPU.

The same approach as ``cuda_emulator`` for softmax.cu: the very text NVRTC
compiles (``fused.module_source``) is compiled as host C++ behind a prelude
that defines the CUDA built-ins, and one launcher per kernel (generated from
``fused.SIGNATURES``) runs every (block, thread) of the grid in turn. The
kernels' threads never cooperate; their only shared writes are integer
``atomicAdd``s, which the prelude performs in place, exact in any order. So
running the threads one after another is their semantics on a GPU.

``FusedFakeCuPy`` extends ``cuda_emulator.FakeCuPy`` with these modules and a
NumPy ``cublas.gemm`` of CuPy's signature, and counts what it is asked to do.
"""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
from cuda_emulator import FakeCuPy, _dev, host_compiler

from backend.cupy import sources as S

PRELUDE = r"""
#include <math.h>
struct xpnet_dim3 { unsigned x, y, z; };
static xpnet_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
template <typename T> static T atomicAdd(T* address, T value) {
    T old = *address;
    *address = old + value;
    return old;
}
"""

LAUNCH = r"""
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

SUFFIX_TYPE = {"f32": "float", "f64": "double"}
POINTER_DTYPE = {
    "float": np.float32,
    "double": np.float64,
    "long long": np.int64,
    "unsigned char": np.uint8,
    "unsigned long long": np.uint64,
}
SCALAR_CTYPE = {
    "float": ctypes.c_float,
    "double": ctypes.c_double,
    "long long": ctypes.c_longlong,
}


def _typed(signature, suffix: str) -> list[str]:
    return [s.replace("T", SUFFIX_TYPE[suffix]) for s in signature]


def _launchers() -> str:
    out = []
    for filename, kernels in S.SIGNATURES.items():
        for kernel, sig in kernels.items():
            for suffix in S.SUFFIXES[filename]:
                types = _typed(sig, suffix)
                params = ", ".join(f"{t} a{i}" for i, t in enumerate(types))
                args = ", ".join(f"a{i}" for i in range(len(types)))
                name = f"{kernel}_{suffix}"
                out.append(
                    f'extern "C" void host_{name}(unsigned grid, unsigned block, '
                    f"{params}) {{ xpnet_emulate({name}, grid, block, {args}); }}"
                )
    return "\n".join(out)


def build_fused_library(workdir: Path) -> ctypes.CDLL:
    """Every fused source, as NVRTC gets it, plus launchers, as one host library."""
    parts = [PRELUDE]
    for i, filename in enumerate(S.SIGNATURES):
        text = S.module_source(filename)
        if i:  # the common helpers once: drop the copy prepended to the others
            text = text.replace((S.SOURCE_DIR / S.COMMON).read_text(), "", 1)
        parts.append(f'#line 1 "{filename}"\n{text}')
    parts += [LAUNCH, _launchers()]
    src = workdir / "fused_host.cpp"
    src.write_text("\n".join(parts))
    lib = workdir / "fused_host.so"
    cmd = [host_compiler(), "-std=c++14", "-O2", "-shared", "-fPIC", "-Wall"]
    cmd += ["-Werror", "-o", str(lib), str(src)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(
            f"host build of the fused kernels failed:\n{result.stderr}"
        )
    return ctypes.CDLL(str(lib))


class FusedHostKernel:
    """``kernel(grid, block, args)`` like a ``cupy.RawKernel``, run on the CPU.

    Checks each argument against the signature as CuPy would need it: device
    arrays of the pointer's exact dtype, C-contiguous; scalars of the exact
    NumPy type of the parameter.
    """

    def __init__(self, library: ctypes.CDLL, filename: str, name: str):
        kernel, suffix = name.rsplit("_", 1)
        self.types = _typed(S.SIGNATURES[filename][kernel], suffix)
        self.fn = getattr(library, f"host_{name}")
        self.fn.argtypes = [ctypes.c_uint, ctypes.c_uint] + [
            ctypes.c_void_p if t.endswith("*") else SCALAR_CTYPE[t] for t in self.types
        ]
        self.fn.restype = None
        self.calls: list[tuple] = []

    def __call__(self, grid, block, args):
        assert len(args) == len(self.types), (self.types, args)
        converted = []
        for kind, a in zip(self.types, args, strict=True):
            base = kind.replace("const ", "").rstrip("*")
            want = POINTER_DTYPE[base]
            if kind.endswith("*"):
                assert isinstance(a, np.ndarray) and a.flags.c_contiguous, kind
                assert a.dtype == want, (kind, a.dtype)
                converted.append(a.ctypes.data)
            else:
                assert type(a) is want, (kind, type(a))
                converted.append(a.item())
        self.calls.append((tuple(grid), tuple(block)))
        self.fn(int(grid[0]), int(block[0]), *converted)


class _Module:
    def __init__(self, library, code):
        self.library, self.code = library, code
        matches = [f for f in S.SIGNATURES if S.module_source(f) == code]
        assert len(matches) == 1, "RawModule got text that is no fused source"
        self.filename = matches[0]

    def get_function(self, name):
        assert name in S.kernel_names(self.filename), name
        return FusedHostKernel(self.library, self.filename, name)


class _Cublas:
    """``cupy.cublas.gemm`` in NumPy: out = alpha * op(a) @ op(b) + beta * out."""

    def __init__(self):
        self.calls = 0

    def gemm(self, transa, transb, a, b, out=None, alpha=1.0, beta=0.0):
        assert a.ndim == b.ndim == 2 and a.dtype == b.dtype
        op_a = np.asarray(a).T if transa == "T" else np.asarray(a)
        op_b = np.asarray(b).T if transb == "T" else np.asarray(b)
        prod = op_a @ op_b
        self.calls += 1
        if out is None:
            return _dev(alpha * prod)
        assert out.shape == prod.shape and out.dtype == a.dtype
        t = a.dtype.type
        # As cuBLAS: with beta == 0, out is written, never read (it may be NaN).
        out[...] = t(alpha) * prod if beta == 0 else t(alpha) * prod + t(beta) * out
        return out


class FusedFakeCuPy(FakeCuPy):
    """FakeCuPy whose RawModule also knows the fused sources, plus cublas.gemm."""

    def __init__(self, softmax_library, fused_library):
        super().__init__(softmax_library)
        self.fused_library = fused_library
        self.cublas = _Cublas()

    def RawModule(self, code, options=()):  # noqa: N802 (CuPy's name)
        if any(S.module_source(f) == code for f in S.SIGNATURES):
            module = _Module(self.fused_library, code)
            self.modules.append(module)
            return module
        return super().RawModule(code, options)

    def zeros(self, shape, dtype=float):
        return _dev(np.zeros(shape, dtype=dtype))
