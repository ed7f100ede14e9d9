"""In-place exp and log of float64 arrays, four or eight lanes at a time, for Numba.

The jitted loops call vector math libraries directly (LLVM vector calls, one
register of 4 or 8 doubles per call), best first:

* exp on 8 lanes, where the processor has AVX-512 (F, DQ, BW, VL): Intel's
  SVML, ``__svml_exp8_ha_z0`` (its high-accuracy variant, documented within
  1 ulp; measured here within 1 ulp of ``np.exp``), when the
  ``intel-cmplr-lib-rt`` package (Numba's own SVML runtime, in xpnet's
  ``numba`` extra) is installed: 0.45 ns per exp on the AMD EPYC of
  2026-12-02 against 0.64 ns for glibc's ``_ZGVeN8v_exp``, which is used
  otherwise (libmvec, within 4 ulp, measured within 3);
* exp on 4 lanes with AVX2: libmvec's ``_ZGVdN4v_exp`` (SVML's AVX2 variant
  measured no faster); log on 4 lanes: libmvec's ``_ZGVdN4v_log`` (its 8-lane
  log measured slower, 1.8 against 1.6 ns);
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
    found = {f.name: f.locate() for f in files if f.name in ("libsvml.so", "libintlc.so.5")}
    if len(found) < 2:
        return 0
    try:
        # libsvml.so needs libintlc.so.5 and has no run path to find it.
        ctypes.CDLL(str(found["libintlc.so.5"]), mode=ctypes.RTLD_GLOBAL)
        llb.load_library_permanently(str(found["libsvml.so"]))
    except (OSError, RuntimeError):
        return 0
    return llb.address_of_symbol(symbol) or 0


def _bind() -> tuple[int, str]:
    """Binds ``xpnet_exp8``, ``xpnet_exp4`` and ``xpnet_log4`` for the
    jitted code. -> (lanes of exp: 8, 4 or 0 for the scalar np.exp, the
    library behind exp: "svml", "libmvec" or "none")."""
    try:
        # "+avx2" is present, "-avx2" absent: a bare "avx2" matches both.
        features = llb.get_host_cpu_features().flatten().split(",")
        if "+avx2" not in features:
            return 0, "none"
        llb.load_library_permanently("libmvec.so.1")
    except (OSError, RuntimeError):
        return 0, "none"
    exp4, log4 = (llb.address_of_symbol(f"_ZGVdN4v_{f}") for f in ("exp", "log"))
    if not (exp4 and log4):
        return 0, "none"
    llb.add_symbol("xpnet_exp4", exp4)
    llb.add_symbol("xpnet_log4", log4)
    if not all(f in features for f in _AVX512):
        return 4, "libmvec"
    exp8, library = _svml("__svml_exp8_ha_z0"), "svml"
    if not exp8:
        exp8, library = llb.address_of_symbol("_ZGVeN8v_exp") or 0, "libmvec"
    if not exp8:
        return 4, "libmvec"
    llb.add_symbol("xpnet_exp8", exp8)
    return 8, library


#: Lanes of the exp the jitted loops call (0: the scalar np.exp), and the
#: library it comes from ("svml", "libmvec" or "none").
EXP_LANES, EXP_LIBRARY = _bind()
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


def _splat(builder, value, vec):
    """A vector of type ``vec`` with ``value`` in every lane."""
    one = builder.insert_element(ir.Constant(vec, ir.Undefined), value, ir.IntType(32)(0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), vec.count), [0] * vec.count)
    return builder.shuffle_vector(one, ir.Constant(vec, ir.Undefined), zeros)


def _exp_affine_sum_lanes(symbol: str, width: int):
    """``exp_affine_sum`` on ``width`` lanes, the exp by ``symbol``;
    the sum and each term stay in registers (no array of terms is written)."""

    @intrinsic
    def apply(typingctx, total, term, x, i, s, w, keep):
        for a in (total, term, x, s, w):
            if not (isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C"):
                return None  # the lanes are loaded as one vector: contiguous only

        def codegen(context, builder, signature, args):
            arrays = [
                context.make_array(signature.args[k])(context, builder, args[k])
                for k in (0, 1, 2, 4, 5)
            ]
            total_a, term_a, x_a, s_a, w_a = arrays
            i, keep = args[3], args[6]
            vec = ir.VectorType(ir.DoubleType(), width)

            def lanes(array):
                ptr = builder.gep(array.data, [i])
                return builder.bitcast(ptr, vec.as_pointer())

            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vec, [vec]), symbol
            )
            xv = builder.load(lanes(x_a), align=8)
            acc = cgutils.alloca_once_value(builder, ir.Constant(vec, [0.0] * width))
            classes = cgutils.unpack_tuple(builder, s_a.shape, 1)[0]
            with cgutils.for_range(builder, classes) as loop:
                c = loop.index
                sv = _splat(builder, builder.load(builder.gep(s_a.data, [c])), vec)
                wv = _splat(builder, builder.load(builder.gep(w_a.data, [c])), vec)
                # s + x·w as two roundings (no fused multiply-add), as a
                # plain loop compiled without fastmath computes it.
                ex = builder.call(fn, [builder.fadd(sv, builder.fmul(xv, wv))])
                builder.store(builder.fadd(builder.load(acc), ex), acc)
                with builder.if_then(builder.icmp_signed("==", c, keep)):
                    builder.store(ex, lanes(term_a), align=8)
            builder.store(builder.load(acc), lanes(total_a), align=8)
            return context.get_dummy_value()

        sig = types.void(total, term, x, i, s, w, keep)
        return sig, codegen

    return apply


@nb.njit(**_JIT)
def _exp_affine_sum_scalar(total, term, x, i, s, w, keep):
    for q in range(i, i + SUM_LANES):
        acc = 0.0
        for c in range(s.shape[0]):
            ex = np.exp(s[c] + x[q] * w[c])
            acc += ex
            if c == keep:
                term[q] = ex
        total[q] = acc


#: Lanes ``exp_affine_sum`` handles per call.
SUM_LANES = EXP_LANES or 4
if EXP_LANES == 8:
    exp_affine_sum = _exp_affine_sum_lanes("xpnet_exp8", 8)
elif EXP_LANES == 4:
    exp_affine_sum = _exp_affine_sum_lanes("xpnet_exp4", 4)
else:
    exp_affine_sum = _exp_affine_sum_scalar
exp_affine_sum.__doc__ = """exp_affine_sum(total, term, x, i, s, w, keep), for
i to i + SUM_LANES - 1 (x, total, term: contiguous float64 with those
entries; s, w: (C,) contiguous float64):

    total[q] = sum over c (in order) of exp(s[c] + x[q]·w[c])
    term[q] = exp(s[keep] + x[q]·w[keep])   (untouched if keep is not in [0, C))

the softmax denominator and one class's term at C scores moved along w,
without writing the C terms to memory."""


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
    if HAVE_LIBMVEC:
        while i + 4 <= n:
            _log4(a, i)
            i += 4
    for k in range(i, n):
        a[k] = np.log(a[k])
