"""The backend shim: selection, errors, conversions and the generic kernels."""

from __future__ import annotations

import math
import re
import sys

import numpy as np
import pytest

import backend as B
from backend.cupy import detect


@pytest.fixture
def fresh_shim(monkeypatch):
    """No process default and an empty backend cache; both restored afterwards."""
    monkeypatch.setattr(B, "_current", None)
    monkeypatch.setattr(B, "_instances", {})
    monkeypatch.delenv("XPNET_BACKEND", raising=False)
    return B


def _hide_package(monkeypatch, package: str, backend_module: str) -> None:
    """Make ``import package`` fail, and force the backend module to re-import."""
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.delitem(sys.modules, f"backend.{backend_module}", raising=False)
    monkeypatch.delattr(B, backend_module, raising=False)


def _cupy_usable() -> bool:
    try:
        B.get_backend("cupy")
    except B.BackendUnavailableError:
        return False
    return True


class FakeCupyArray:
    """Stands in for a CuPy array: the shim spots CuPy by the type's module."""

    __module__ = "cupy"
    shape = (2,)


# -- selection ------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("numpy", "numpy"),
        ("cpu", "numpy"),
        (" NumPy ", "numpy"),
        ("numba", "numba"),
        ("cupy", "cupy"),
        ("cuda", "cupy"),
        ("gpu", "cupy"),
        ("CUDA", "cupy"),
    ],
)
def test_get_backend_accepts_names_and_aliases(name, expected):
    assert B.canonical_name(name) == expected
    if expected == "cupy" and not _cupy_usable():
        with pytest.raises(B.BackendUnavailableError):
            B.get_backend(name)
        return
    if expected == "numba":
        pytest.importorskip("numba")
    be = B.get_backend(name)
    assert be.name == expected
    assert be is B.get_backend(expected)  # one instance per backend
    assert isinstance(be, B.Backend)
    assert be.on_host == (expected != "cupy")


def test_get_backend_passes_instances_through_and_none_is_current(fresh_shim):
    be = B.get_backend("numpy")
    assert B.get_backend(be) is be
    assert B.get_backend(None) is B.current()


@pytest.mark.parametrize("name", ["numba", "cpu"])
def test_use_sets_the_process_default(fresh_shim, name):
    if name == "numba":
        pytest.importorskip("numba")
    chosen = B.use(name)
    assert chosen is B.current()
    assert chosen is B.get_backend(None)
    assert chosen.name == B.canonical_name(name)


def test_use_with_a_bad_name_keeps_the_previous_default(fresh_shim):
    before = B.use("numpy")
    with pytest.raises(ValueError):
        B.use("tpu")
    assert B.current() is before


@pytest.mark.parametrize(
    "env, expected",
    [(None, "numpy"), ("", "numpy"), ("numpy", "numpy"), ("cpu", "numpy"),
     ("numba", "numba"), (" Numba ", "numba")],
)  # fmt: skip
def test_xpnet_backend_env_var_sets_the_default(fresh_shim, monkeypatch, env, expected):
    if expected == "numba":
        pytest.importorskip("numba")
    if env is not None:
        monkeypatch.setenv("XPNET_BACKEND", env)
    assert B.current().name == expected


def test_use_overrides_the_env_var(fresh_shim, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("XPNET_BACKEND", "numba")
    assert B.use("numpy").name == "numpy"
    assert B.current().name == "numpy"


def test_bad_env_var_names_the_variable_and_the_valid_names(fresh_shim, monkeypatch):
    monkeypatch.setenv("XPNET_BACKEND", "tensorflow")
    with pytest.raises(ValueError, match="XPNET_BACKEND='tensorflow'") as info:
        B.current()
    for valid in B.NAMES:
        assert valid in str(info.value)


def test_env_var_naming_a_missing_backend_says_where_it_came_from(
    fresh_shim, monkeypatch
):
    _hide_package(monkeypatch, "numba", "_numba")
    monkeypatch.setenv("XPNET_BACKEND", "numba")
    with pytest.raises(B.BackendUnavailableError, match="XPNET_BACKEND='numba'"):
        B.current()


@pytest.mark.parametrize("bad", ["tensorflow", "", "np", 3])
def test_unknown_name_is_a_value_error_listing_the_valid_names(bad):
    with pytest.raises(ValueError, match="unknown backend") as info:
        B.get_backend(bad)
    message = str(info.value)
    for valid in ("numpy", "numba", "cupy", "auto", "cpu", "cuda", "gpu"):
        assert valid in message


@pytest.mark.parametrize(
    "name, package, module, extra",
    [
        ("numba", "numba", "_numba", "xpnet[numba]"),
        ("cupy", "cupy", "_cupy", "xpnet[cuda13]"),
        ("gpu", "cupy", "_cupy", "xpnet[cuda12]"),
    ],
)
def test_missing_package_names_the_extra(
    fresh_shim, monkeypatch, name, package, module, extra
):
    _hide_package(monkeypatch, package, module)
    with pytest.raises(B.BackendUnavailableError, match=re.escape(extra)):
        B.get_backend(name)
    assert issubclass(B.BackendUnavailableError, RuntimeError)
    assert B.get_backend("numpy").name == "numpy"  # the others still work


def test_cupy_without_a_gpu_says_so(fresh_shim):
    pytest.importorskip("cupy")
    if _cupy_usable():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(B.BackendUnavailableError, match="(?i)gpu|cuda|driver"):
        B.get_backend("cuda")


def test_auto_without_numba_chooses_numpy_and_names_the_extra(fresh_shim, monkeypatch):
    monkeypatch.setattr(detect, "driver_cuda_version", lambda: None)
    _hide_package(monkeypatch, "numba", "_numba")
    with pytest.warns(RuntimeWarning, match="auto chose numpy") as record:
        be = B.get_backend("auto")
    assert be.name == "numpy"
    assert "xpnet[numba]" in str(record[0].message)


def test_auto_prefers_numba_over_numpy_without_a_gpu(fresh_shim, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(detect, "driver_cuda_version", lambda: 13000)
    _hide_package(monkeypatch, "cupy", "_cupy")
    # Passing over a GPU that has a driver is never silent: the warning says why.
    with pytest.warns(RuntimeWarning, match=r"auto chose numba \(cupy: "):
        assert B.get_backend("auto").name == "numba"


# -- conversions and array-module inference ---------------------------------


def test_to_numpy_returns_host_arrays_from_any_backend(backend):
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    a = backend.asarray(host)
    assert type(a).__module__.split(".")[0] == backend.xp.__name__
    for out in (B.to_numpy(a), backend.asnumpy(a)):
        assert isinstance(out, np.ndarray)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, host)
    assert backend.asarray([1, 2], dtype="float64").dtype == np.float64


@pytest.mark.parametrize("value", [1.5, 3, np.float32(2.5)])
def test_to_numpy_accepts_scalars(value):
    out = B.to_numpy(value)
    assert isinstance(out, np.ndarray)
    assert out.shape == ()
    assert out == value


def test_backend_for_picks_the_current_host_backend(backend):
    if not backend.on_host:
        pytest.skip("host-array rule")
    a = np.zeros(3)
    assert B.backend_for(a, a) is backend
    assert B.backend_for(2.0) is backend
    assert B.get_array_module(a) is np


def test_host_arrays_go_to_numpy_when_the_default_is_a_device(monkeypatch):
    class DeviceBackend(B.Backend):
        name = "device"
        on_host = False

    monkeypatch.setattr(B, "_current", DeviceBackend())
    assert B.backend_for(np.ones(2)).name == "numpy"


@pytest.mark.parametrize("order", ["numpy_first", "cupy_first"])
def test_mixing_numpy_and_cupy_arrays_is_a_type_error(order):
    arrays = [np.ones(2), FakeCupyArray()]
    if order == "cupy_first":
        arrays.reverse()
    for call in (B.backend_for, B.get_array_module, B.matmul):
        with pytest.raises(TypeError, match="two libraries") as info:
            call(*arrays)
        assert "to_numpy" in str(info.value)


# -- kernels against float64 references -------------------------------------

#: "backend": the kernel the shim dispatches to (a backend may override it);
#: "generic": the version written once against ``xp`` in ``Backend``.
KERNELS = ["backend", "generic"]


def _kernel(backend, kind: str, name: str):
    if kind == "generic":
        return getattr(B.Backend, name).__get__(backend)
    return getattr(B, name)


def _tolerance(dtype) -> dict:
    return {"rtol": 1e-12, "atol": 1e-12} if dtype == "float64" else {"rtol": 2e-6}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "a_shape, b_shape, transpose_a",
    [
        ((3, 4), (4, 5), False),
        ((1, 7), (7, 1), False),
        ((4,), (4, 5), False),
        ((6, 3), (6, 2), True),  # x.T @ dout, as in Affine.backward
        ((64, 100), (100, 50), False),
    ],
)
def test_matmul_matches_a_float64_reference(
    backend, to_host, dtype, a_shape, b_shape, transpose_a, kernel
):
    rng = np.random.default_rng(1)
    a_host = rng.standard_normal(a_shape).astype(dtype)
    b_host = rng.standard_normal(b_shape).astype(dtype)
    a = backend.asarray(a_host)
    a = a.T if transpose_a else a
    ref_a = a_host.astype(np.float64)
    ref_a = ref_a.T if transpose_a else ref_a
    ref_b = b_host.astype(np.float64)
    expected = np.einsum("...k,km->...m", ref_a, ref_b)
    out = _kernel(backend, kernel, "matmul")(a, backend.asarray(b_host))
    assert out.dtype == np.dtype(dtype)
    assert out.shape == expected.shape
    # The classical bound of a rounded dot product: K * eps * (|a| @ |b|).
    eps = np.finfo(dtype).eps
    bound = (
        2
        * ref_a.shape[-1]
        * eps
        * np.einsum("...k,km->...m", np.abs(ref_a), np.abs(ref_b))
    )
    error = np.abs(to_host(out) - expected)
    assert np.all(error <= bound), f"max excess {np.max(error - bound)}"


def _softmax_reference(row) -> list[float]:
    row = [float(v) for v in row]
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    total = math.fsum(exps)
    return [e / total for e in exps]


SOFTMAX_CASES = {
    "book": [0.3, 2.9, 4.0],
    "book_overflow": [1010.0, 1000.0, 990.0],
    "plus_minus_1000": [1000.0, -1000.0],
    "all_minus_1000": [-1000.0, -1000.0, -1000.0],
    "rows": [[1000.0, 999.0, 0.0], [-1000.0, 0.0, 1000.0], [0.0, 0.0, 0.0]],
    "single_class": [[5.0], [-5.0]],
    "wide": (np.random.default_rng(2).standard_normal((20, 37)) * 100).tolist(),
}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", sorted(SOFTMAX_CASES))
def test_softmax_is_overflow_safe_and_matches_a_reference(
    backend, to_host, dtype, case, kernel
):
    host = np.array(SOFTMAX_CASES[case], dtype=dtype)
    x = backend.asarray(host)
    rows = host.reshape(-1, host.shape[-1])
    expected = np.array([_softmax_reference(r) for r in rows]).reshape(host.shape)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = _kernel(backend, kernel, "softmax")(x)
    assert y.shape == host.shape
    assert y.dtype == np.dtype(dtype)
    got = to_host(y)
    atol = 1e-15 if dtype == "float64" else 1e-7
    np.testing.assert_allclose(got, expected, rtol=_tolerance(dtype)["rtol"], atol=atol)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(to_host(x), host.astype(np.float64))  # unchanged


def test_softmax_book_example_values(backend, to_host):
    y = B.softmax(backend.asarray([0.3, 2.9, 4.0]))
    np.testing.assert_allclose(
        to_host(y), [0.01821127, 0.24519181, 0.73659691], atol=5e-9
    )


# -- the generic numerical gradient ---------------------------------------


def _quadratic(x, coef, lin):
    """f(x) = sum(coef * x**2 + lin * x): central differences are exact for it."""
    xp = B.get_array_module(x)
    return xp.sum(coef * x * x + lin * x)


def _make_view(backend, layout, dtype):
    rng = np.random.default_rng(3)
    if layout == "0-d":
        base = backend.asarray(np.array(0.3, dtype=dtype))
        return base, base
    if layout == "contiguous-1d":
        base = backend.asarray(rng.standard_normal(7).astype(dtype))
        return base, base
    if layout == "contiguous-3d":
        base = backend.asarray(rng.standard_normal((2, 3, 4)).astype(dtype))
        return base, base
    base = backend.asarray(rng.standard_normal((6, 8)).astype(dtype))
    if layout == "strided-view":
        return base, base[::2, 1::3]
    if layout == "transposed-view":
        return base, base.T
    raise AssertionError(layout)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "layout",
    ["0-d", "contiguous-1d", "contiguous-3d", "strided-view", "transposed-view"],
)
def test_numerical_gradient_is_exact_on_quadratics_and_restores_x_bitwise(
    backend, to_host, dtype, layout, kernel
):
    base, x = _make_view(backend, layout, dtype)
    coef = backend.asarray(np.linspace(0.5, 2.0, x.size).reshape(x.shape).astype(dtype))
    lin = 0.25
    base_before = B.to_numpy(base).copy()
    x_before = B.to_numpy(x).copy()

    # f ignores its argument and reads x through the closure (the book's idiom),
    # so the gradient is only right if x is perturbed in place.
    numerical_gradient = _kernel(backend, kernel, "numerical_gradient")
    grad = numerical_gradient(lambda _w: _quadratic(x, coef, lin), x)

    assert grad.shape == x.shape
    assert grad.dtype == x.dtype
    assert B.to_numpy(base).tobytes() == base_before.tobytes()
    assert B.to_numpy(x).tobytes() == x_before.tobytes()
    expected = 2 * to_host(coef) * x_before.astype(np.float64) + lin
    # float32: x + h is rounded and f is summed in float32, so ~1e-2 is the limit.
    tol = {"atol": 1e-7} if dtype == "float64" else {"atol": 5e-2, "rtol": 5e-2}
    np.testing.assert_allclose(to_host(grad), expected, **tol)


def test_numerical_gradient_restores_values_that_plus_minus_h_would_not(backend):
    # (v + h) - h != v for these, so restoring by subtraction would be caught.
    host = np.array([0.1, 1 / 3, 1e8 + 0.3, 1e-300, -7.77e5])
    assert not np.array_equal((host + 1e-4) - 1e-4, host)
    x = backend.asarray(host.copy())
    B.numerical_gradient(lambda w: B.get_array_module(w).sum(w), x)
    assert B.to_numpy(x).tobytes() == host.tobytes()


def test_describe_synchronize_and_default_rng(backend):
    assert backend.name in backend.describe()
    assert backend.synchronize() is None
    assert B.synchronize(backend.asarray([1.0])) is None
    generator = np.random.default_rng(0)
    assert B.default_rng(generator) is generator
    assert B.default_rng(5).integers(1000) == np.random.default_rng(5).integers(1000)


# -- integer pixels to the network's floats ---------------------------------
def _pixels(n=50, d=784, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, d), dtype=np.uint8)
    x[:, :3] = [0, 1, 255]  # the ends of the range on every row
    return x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "rows",
    [np.array([3, 0, 49, 3, -1, -50]), np.arange(0), slice(None), slice(5, 17)],
    ids=["indices", "none", "all", "slice"],
)
def test_scaled_rows_equal_the_normalized_images_bit_for_bit(backend, dtype, rows):
    pixels = _pixels()
    # load_mnist(normalize=True): float32 images divided in place by 255.0.
    normalized = pixels.astype(np.float32)
    normalized /= 255.0
    want = normalized[rows].astype(dtype)
    got = backend.scaled_rows(backend.asarray(pixels), rows, 255.0, dtype)
    assert got.dtype == np.dtype(dtype) and got.flags.c_contiguous
    np.testing.assert_array_equal(B.to_numpy(got), want, strict=True)


def test_scaled_rows_of_other_integer_pixels(backend):
    pixels = np.arange(-600, 600, dtype=np.int16).reshape(40, 30)
    rows = np.array([39, 0, 7])
    got = backend.scaled_rows(backend.asarray(pixels), rows, 4.0, "float32")
    want = pixels[rows].astype(np.float32) / np.float32(4.0)
    np.testing.assert_array_equal(B.to_numpy(got), want, strict=True)


@pytest.mark.parametrize("bad", [50, -51])
def test_scaled_rows_out_of_range_is_an_index_error(backend, bad):
    """Host row indices (what the trainer passes) are checked on the host on
    every backend, the GPU included, where CuPy's indexing would wrap."""
    pixels = backend.asarray(_pixels())
    with pytest.raises(IndexError, match=f"index {bad} is out of bounds"):
        backend.scaled_rows(pixels, np.array([0, bad]), 255.0, "float32")


def test_scaled_rows_on_the_gpu_check_host_rows_that_cupy_would_wrap():
    """The generic code (what the CuPy backend ran before) takes row 50 of 50
    rows as row 0 on CuPy; the backend refuses it first. Device row indices
    are not checked (that would wait for the device): they wrap, as in CuPy."""
    from cupy_standin.install import standin_backend

    from backend.base import Backend

    be = standin_backend()
    pixels = be.asarray(_pixels())
    n = pixels.shape[0]
    wrapped = Backend.scaled_rows(be, pixels, np.array([0, n]), 255.0, "float32")
    np.testing.assert_array_equal(B.to_numpy(wrapped)[1], B.to_numpy(wrapped)[0])
    with pytest.raises(IndexError, match=f"index {n} is out of bounds"):
        be.scaled_rows(pixels, np.array([0, n]), 255.0, "float32")
    on_device = be.scaled_rows(pixels, be.asarray(np.array([n])), 255.0, "float32")
    want = _pixels()[0].astype(np.float32) / np.float32(255.0)
    np.testing.assert_array_equal(B.to_numpy(on_device)[0], want)
