"""The fused two-layer kernels' CUDA sources and their entry points.

The ``.cu`` files beside this module, each compiled with
``fused_common.cuh`` prepended (see that header for why not ``#include``), and
the argument types of every entry point (the tests check this table against
the parameters the CuPy stand-in parses from each source).
"""

from __future__ import annotations

from pathlib import Path

#: Folder of the CUDA sources (package data).
SOURCE_DIR = Path(__file__).resolve().parent
#: Prepended to every source below (see its header for why not ``#include``).
COMMON = "fused_common.cuh"

#: Argument types of every ``extern "C"`` kernel, per source file; ``T`` is
#: the floating type of the kernel's suffix. A test compares this table with
#: what the stand-in parses from each source.
SIGNATURES = {
    "gather.cu": {
        "gather_scaled_u8": (
            "const unsigned char*",
            "const long long*",
            "T*",
            "long long",
            "long long",
            "long long",
            "float",
        ),
    },
    "two_layer_step.cu": {
        "step_rows": (
            "T*",
            "const T*",
            "const T*",
            "const T*",
            "const long long*",
            "const T*",
            "T*",
            "T*",
            "double*",
            "long long",
            "long long",
            "long long",
            "long long",
            "long long",
            "T",
        ),
        "step_update": (
            "const T*",
            "const T*",
            "const T*",
            "const double*",
            "T*",
            "T*",
            "T*",
            "T*",
            "long long",
            "long long",
            "long long",
            "T",
        ),
    },
    "two_layer_eval.cu": {
        "count_correct": (
            "T*",
            "const T*",
            "const T*",
            "const T*",
            "const long long*",
            "unsigned long long*",
            "long long",
            "long long",
            "long long",
            "long long",
        ),
    },
    "two_layer_numgrad.cu": {
        "numgrad_forward": (
            "double*",
            "const double*",
            "const double*",
            "const double*",
            "const long long*",
            "const double*",
            "double*",
            "double*",
            "double*",
            "unsigned long long*",
            "long long",
            "long long",
            "long long",
            "long long",
            "long long",
        ),
        "numgrad_params": (
            "const double*",
            "const double*",
            "const double*",
            "const double*",
            "const double*",
            "const double*",
            "const long long*",
            "const double*",
            "double*",
            "long long",
            "long long",
            "long long",
            "long long",
            "long long",
            "long long",
            "double",
            "double",
        ),
    },
    "updates.cu": {
        "momentum": ("T*", "const T*", "T*", "long long", "T", "T"),
        "nesterov": ("T*", "const T*", "T*", "long long", "T", "T", "T", "T"),
        "adagrad": ("T*", "const T*", "T*", "long long", "T", "T"),
        "rmsprop": ("T*", "const T*", "T*", "long long", "T", "T", "T", "T"),
        "adam": ("T*", "const T*", "T*", "T*", "long long", "T", "T", "T", "T"),
        "dropout_mask": (
            "unsigned char*",
            "long long",
            "long long",
            "long long",
            "long long",
            "long long",
        ),
    },
    "batchnorm.cu": {
        "batchnorm_forward": (
            "const T*",
            "const T*",
            "const T*",
            "T*",
            "T*",
            "T*",
            "T*",
            "T*",
            "T*",
            "long long",
            "long long",
            "T",
        ),
        "batchnorm_backward": (
            "const T*",
            "const T*",
            "const T*",
            "const T*",
            "T*",
            "T*",
            "T*",
            "long long",
            "long long",
        ),
    },
}

#: Dtype suffixes each file is instantiated for (the gradient runs in double).
SUFFIXES = {
    "gather.cu": ("f32", "f64"),
    "two_layer_step.cu": ("f32", "f64"),
    "two_layer_eval.cu": ("f32", "f64"),
    "two_layer_numgrad.cu": ("f64",),
    "updates.cu": ("f32", "f64"),
    "batchnorm.cu": ("f32", "f64"),
}
DTYPE_SUFFIX = {"float32": "f32", "float64": "f64"}

THREADS_PER_BLOCK = 128
MAX_BLOCKS = 4096
#: Rows per evaluation chunk: the (chunk, H) activations are its scratch
#: (12.5 MiB at H = 50 in float32), so MNIST's 60,000 go in one chunk.
EVAL_CHUNK = 65536


def module_source(filename: str) -> str:
    """The text NVRTC compiles for ``filename``: the common helpers, then it."""
    common = (SOURCE_DIR / COMMON).read_text()
    return common + "\n" + (SOURCE_DIR / filename).read_text()


#: Kernels instantiated once, under their own suffix (not per dtype).
SINGLE = {"dropout_mask": "u8"}


def kernel_names(filename: str) -> list[str]:
    """Entry points of one source file, e.g. ``step_rows_f32``."""
    return [
        f"{k}_{SINGLE[k]}" if k in SINGLE else f"{k}_{s}"
        for k in SIGNATURES[filename]
        for s in ((None,) if k in SINGLE else SUFFIXES[filename])
    ]


def launch_shape(items: int) -> tuple[tuple[int], tuple[int]]:
    """``(grid, block)``: one thread per item, the grid capped at MAX_BLOCKS."""
    blocks = max(1, min(MAX_BLOCKS, -(-items // THREADS_PER_BLOCK)))
    return (blocks,), (THREADS_PER_BLOCK,)
