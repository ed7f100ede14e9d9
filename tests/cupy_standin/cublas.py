"""``cupy.cublas`` of the stand-in: `gemm`, as CuPy 14 defines it.

Like the real ``cupy.cublas`` it is a submodule that must be imported
(``import cupy.cublas``; ``import cupy`` alone does not load it). Checked
against CuPy 14's ``cupy/cublas.py``: ``gemm(transa, transb, a, b, out=None,
alpha=1.0, beta=0.0)`` computes ``out = alpha * op(a) @ op(b) + beta * out``
with op 'N' (as is) or 'T' (transposed); a and b 2-D of one dtype; ``out``
(m, n) of that dtype, or None (then a new array and beta = 0). Host scalars
alpha and beta are read in cuBLAS's host pointer mode: no copy to the device.
It is one cuBLAS call for C- or F-contiguous operands (CuPy swaps them rather
than copying), counted as one launch.
"""

from __future__ import annotations

import numpy as np

import cupy_standin as _cp


def _op(a, trans):
    if trans not in ("N", "T"):
        raise TypeError(f"invalid trans (actual: {trans})")
    return a._a.T if trans == "T" else a._a


def gemm(transa, transb, a, b, out=None, alpha=1.0, beta=0.0):
    """out = alpha * op(a) @ op(b) + beta * out (one cuBLAS call)."""
    if _cp._capturing() is not None:
        # cupy/cublas.py gemm -> cupy_backends.cuda.libs.cublas.setStream
        raise NotImplementedError(
            "calling cuBLAS API during stream capture is currently unsupported"
        )
    for x in (a, b) + (() if out is None else (out,)):
        if not isinstance(x, _cp.ndarray):
            raise TypeError(f"Unsupported type {type(x)}")
    assert a.ndim == b.ndim == 2
    assert a.dtype == b.dtype
    if a.dtype.char not in "fdFD":
        raise TypeError("invalid dtype")
    prod = _op(a, transa) @ _op(b, transb)
    _cp.counters.launches += 1
    if out is None:
        return _cp._wrap(np.asfortranarray(prod * a.dtype.type(alpha)))
    assert out.ndim == 2 and out.shape == prod.shape and out.dtype == a.dtype
    t = a.dtype.type
    # cuBLAS does not read out when beta == 0 (it may hold NaN garbage).
    result = t(alpha) * prod if beta == 0 else t(alpha) * prod + t(beta) * out._a
    out._a[...] = result
    return out
