"""backend/numba/mvec.py: glibc's vector exp and log, called from Numba, against
NumPy's scalar exp and log."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from backend.numba import mvec as _mvec  # noqa: E402


def _ulps(got, want):
    return np.max(np.abs(got - want) / np.spacing(np.abs(want)))


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 8, 9, 12, 13, 1027])
def test_vexp_matches_numpy_within_4_ulp_on_every_length(size):
    """Lengths around the 4-lane width: the scalar tail is covered too."""
    x = np.random.default_rng(size).uniform(-30.0, 5.0, size)
    got = x.copy()
    _mvec.vexp(got, size)
    assert _ulps(got, np.exp(x)) <= 4 if size else got.size == 0


def test_vexp_leaves_the_rest_and_handles_extremes():
    x = np.array([0.0, -800.0, 800.0, -1e-300, 1e-4, -1e-4, 0.5, 7.0])
    got = x.copy()
    _mvec.vexp(got, 6)
    np.testing.assert_array_equal(got[:4], [1.0, 0.0, np.inf, 1.0])
    assert _ulps(got[4:6], np.exp(x[4:6])) <= 4
    np.testing.assert_array_equal(got[6:], x[6:])  # beyond n: untouched


@pytest.mark.parametrize("size", [1, 4, 7, 8, 13, 1000])
def test_vlog_matches_numpy_within_4_ulp(size):
    x = np.random.default_rng(size).uniform(1e-7, 3.0, size)
    got = x.copy()
    _mvec.vlog(got, size)
    assert _ulps(got, np.log(x)) <= 4


def test_libmvec_is_used_where_glibc_and_avx2_are_present():
    """On x86-64 Linux with AVX2 (this project's machines) the vector path
    is the one compiled; elsewhere the scalar fallback is."""
    import platform

    import llvmlite.binding as llb

    features = llb.get_host_cpu_features().flatten().split(",")
    if platform.system() != "Linux" or "+avx2" not in features:
        pytest.skip("no AVX2 on Linux here: the scalar fallback is compiled")
    assert _mvec.HAVE_LIBMVEC
    wide = all(f in features for f in _mvec._AVX512)
    assert _mvec.EXP_LANES == _mvec.LOG_LANES == (8 if wide else 4)


def _svml_installed() -> bool:
    from importlib import metadata

    try:
        return bool(metadata.files("intel-cmplr-lib-rt"))
    except metadata.PackageNotFoundError:
        return False


def _library_in_fresh_process(env_svml: str) -> str:
    import os
    import subprocess
    import sys

    env = {**os.environ, "XPNET_SVML": env_svml}
    code = "from backend.numba import mvec; print(mvec.EXP_LIBRARY, mvec.EXP_LANES)"
    cmd = [sys.executable, "-c", code]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_svml_is_bound_where_installed_and_avx512_is_present():
    """The numba extra installs Intel's SVML; with AVX-512 its 8-lane exp and
    log are the ones bound, and XPNET_SVML=0 falls back to libmvec's."""
    if _mvec.EXP_LANES != 8 or not _svml_installed():
        pytest.skip("needs AVX-512 and the intel-cmplr-lib-rt package")
    assert _library_in_fresh_process("1") == "svml 8"
    assert _library_in_fresh_process("0") == "libmvec 8"
