"""In-place exp and log of float64 arrays, four or eight lanes at a time, for Numba.

The jitted loops call vector math libraries directly (LLVM vector calls, one
register of 4 or 8 doubles per call), best first:

* where the processor has AVX-512 (F, DQ, BW, VL), exp and log on 8 lanes:
  Intel's SVML, ``__svml_exp8_ha_z0`` and ``__svml_log8_ha_z0`` (its
  high-accuracy variants, documented within 1 ulp; measured here within 1 ulp
  of NumPy's), when the ``intel-cmplr-lib-rt`` package (Numba's own SVML
  runtime, in xpnet's ``numba`` extra) is installed, else glibc's vector math
  library, libmvec's ``_ZGVeN8v_exp`` and ``_ZGVeN8v_log`` (documented within
  4 ulp, measured within 3). On the AMD EPYC of 2026-12-02, per call of 8:
  exp 0.45 ns per value (SVML) against 0.64 (libmvec), log 0.49 against 0.64;
* with AVX2 only, 4 lanes of libmvec (``_ZGVdN4v_exp``, ``_ZGVdN4v_log``;
  SVML's AVX2 exp measured no faster);
* otherwise the scalar ``np.exp``/``np.log`` (5.2 ns per exp in a compiled
  loop; NumPy's own SIMD ufunc measured 0.75 ns, but jitted code cannot call it).

Numba's own SVML route is not open: PyPI's llvmlite is built without the SVML
patch (``llvmlite.binding.config.has_svml`` is False), so the library is
loaded here. Compiled code calls ``xpnet_exp8`` and the like, symbols bound
when this module is imported to whichever library is present, so Numba's
on-disk cache stays valid when SVML is installed or removed.
``XPNET_SVML=0`` in the environment keeps libmvec even where SVML is
installed. These are the libraries' exp and log, not approximations of ours.
"""

from __future__ import annotations

import ctypes
import os
from importlib import metadata

import llvmlite.binding as llb
import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_JIT = {"cache": True, "nogil": True}

#: The AVX-512 subsets SVML's "z0" (Skylake-server) functions are built for.
_AVX512 = ("+avx512f", "+avx512dq", "+avx512bw", "+avx512vl")


def _svml(symbol: str) -> int:
    """The address of SVML's ``symbol`` from the intel-cmplr-lib-rt package,
    or 0 where it is not installed (or XPNET_SVML=0)."""
    if os.environ.get("XPNET_SVML", "1") == "0":
        return 0
    try:
        files = metadata.files("intel-cmplr-lib-rt") or ()
    except metadata.PackageNotFoundError:
        return 0
    names = ("libsvml.so", "libintlc.so.5")
    found = {f.name: f.locate() for f in files if f.name in names}
    if not all(name in found and found[name].exists() for name in names):
        return 0
    try:
        # libsvml.so needs libintlc.so.5 and has no run path to find it.
        ctypes.CDLL(str(found["libintlc.so.5"]), mode=ctypes.RTLD_GLOBAL)
        llb.load_library_permanently(str(found["libsvml.so"]))
    except (OSError, RuntimeError):
        return 0
    return llb.address_of_symbol(symbol) or 0


def _bind() -> tuple[int, int, str]:
    """Binds ``xpnet_exp8``, ``xpnet_exp4``, ``xpnet_log8`` and ``xpnet_log4``
    (those the processor can run) for the jitted code. -> (lanes of exp and
    of log: 8, 4 or 0 for the scalar functions; their library)."""
    try:
        # "+avx2" is present, "-avx2" absent: a bare "avx2" matches both.
        features = llb.get_host_cpu_features().flatten().split(",")
        if "+avx2" not in features:
            return 0, 0, "none"
        llb.load_library_permanently("libmvec.so.1")
    except (OSError, RuntimeError):
        return 0, 0, "none"
    exp4, log4 = (llb.address_of_symbol(f"_ZGVdN4v_{f}") for f in ("exp", "log"))
    if not (exp4 and log4):
        return 0, 0, "none"
    llb.add_symbol("xpnet_exp4", exp4)
    llb.add_symbol("xpnet_log4", log4)
    if not all(f in features for f in _AVX512):
        return 4, 4, "libmvec"
    exp8, log8 = _svml("__svml_exp8_ha_z0"), _svml("__svml_log8_ha_z0")
    library = "svml"
    if not (exp8 and log8):
        exp8, log8 = (llb.address_of_symbol(f"_ZGVeN8v_{f}") for f in ("exp", "log"))
        library = "libmvec"
    if not (exp8 and log8):
        return 4, 4, "libmvec"
    # Both libraries give 8 lanes here: what Numba caches depends only on
    # the processor (part of its cache key), never on which is installed.
    llb.add_symbol("xpnet_exp8", exp8)
    llb.add_symbol("xpnet_log8", log8)
    return 8, 8, library


#: Lanes of the exp and of the log the jitted loops call (0: the scalar
#: np.exp and np.log), and the library behind them ("svml": Intel's SVML for
#: both, "libmvec" or "none").
EXP_LANES, LOG_LANES, EXP_LIBRARY = _bind()
#: Whether the jitted loops call vector functions (else scalar exp/log).
HAVE_LIBMVEC = EXP_LANES > 0


def _lanes(symbol: str, width: int):
    """An intrinsic applying the vector function ``symbol`` in place to
    a[i:i + width] of a contiguous float64 array ``a``."""

    @intrinsic
    def apply(typingctx, a, i):
        def codegen(context, builder, signature, args):
            array = context.make_array(signature.args[0])(context, builder, args[0])
            vec = ir.VectorType(ir.DoubleType(), width)
            ptr = builder.bitcast(builder.gep(array.data, [args[1]]), vec.as_pointer())
            fnty = ir.FunctionType(vec, [vec])
            fn = cgutils.get_or_insert_function(builder.module, fnty, symbol)
            builder.store(builder.call(fn, [builder.load(ptr, align=8)]), ptr, align=8)
            return context.get_dummy_value()

        return types.void(a, i), codegen

    return apply


_exp4 = _lanes("xpnet_exp4", 4)
_exp8 = _lanes("xpnet_exp8", 8)
_log4 = _lanes("xpnet_log4", 4)
_log8 = _lanes("xpnet_log8", 8)


@nb.njit(**_JIT)
def vexp(a, n):
    """a[:n] = exp(a[:n]) in place; a: contiguous float64."""
    i = 0
    if EXP_LANES == 8:
        while i + 8 <= n:
            _exp8(a, i)
            i += 8
    if EXP_LANES >= 4:
        while i + 4 <= n:
            _exp4(a, i)
            i += 4
    for k in range(i, n):
        a[k] = np.exp(a[k])


@nb.njit(**_JIT)
def vlog(a, n):
    """a[:n] = log(a[:n]) in place; a: contiguous float64."""
    i = 0
    if LOG_LANES == 8:
        while i + 8 <= n:
            _log8(a, i)
            i += 8
    if LOG_LANES >= 4:
        while i + 4 <= n:
            _log4(a, i)
            i += 4
    for k in range(i, n):
        a[k] = np.log(a[k])
