"""Kernels at the network's shapes: each backend's ``matmul`` and ``softmax``.

Ratios in the report divide by the NumPy backend's time for the same shape
and dtype. The products are the five of one training step, with transposed
operands passed as views, as the layers pass them.
"""

from __future__ import annotations

import benchkit
import numpy as np
import pytest

import backend as B

#: name -> (left dims, right dims, left transposed?, right transposed?), with
#: N batch, D input, H hidden, C classes.
PRODUCTS = {
    "x@W1": ("ND", "DH", False, False),
    "h@W2": ("NH", "HC", False, False),
    "dy@W2.T": ("NC", "CH", False, True),
    "x.T@dh": ("DN", "NH", True, False),
    "h.T@dy": ("HN", "NC", True, False),
}
#: Products also timed at the sweep's other batch sizes.
SWEPT = ("x@W1", "x.T@dh")
SOFTMAX_OPS = ("softmax", "softmax+ce")


def _cases(names, swept):
    full = benchkit.FULL
    cases = [(p, None) for p in names]
    cases += [(p, b) for p in swept for b in full.batch_sweep if b != full.batch_size]
    return cases


def _ids(cases):
    # "@" is not allowed in a -k expression.
    return [p.replace("@", "_") + (f"-b{b}" if b else "") for p, b in cases]


def _operand(be, letters, transposed, dims, dtype, rng):
    shape = tuple(dims[c] for c in letters)
    host = rng.standard_normal(shape[::-1] if transposed else shape).astype(dtype)
    a = be.asarray(host)
    return a.T if transposed else a


def _shape(a) -> str:
    return "x".join(map(str, a.shape))


def _tolerance(dtype: str) -> dict:
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-10}


def _record(benchmark, s, group, be_name, dtype, op, batch, size):
    benchkit.record(
        benchmark,
        group,
        f"{be_name}-f{dtype[-2:]}",
        s,
        backend=be_name,
        dtype=dtype,
        op=op,
        batch_size=batch,
        size=f"{size} {dtype}",
        kind="kernel",
        baseline=be_name == "numpy",
        sweep_axis="batch_size",
        data="random normal",
    )


@pytest.mark.benchmark(max_time=0.5)
@pytest.mark.parametrize("dtype", benchkit.DTYPES)
@pytest.mark.parametrize("backend_name", benchkit.BACKEND_NAMES)
@pytest.mark.parametrize(
    "product,sweep_batch",
    _cases(PRODUCTS, SWEPT),
    ids=_ids(_cases(PRODUCTS, SWEPT)),
)
def test_matmul(benchmark, bench_settings, product, sweep_batch, backend_name, dtype):
    """``backend.matmul`` for one of the step's products, checked against NumPy."""
    s = bench_settings
    be = benchkit.backend_or_skip(backend_name)
    batch = s.sweep_batch(sweep_batch)
    dims = {"N": batch, "D": s.input_size, "H": s.hidden_size, "C": s.output_size}
    left, right, left_t, right_t = PRODUCTS[product]
    rng = np.random.default_rng(0)
    a = _operand(be, left, left_t, dims, dtype, rng)
    b = _operand(be, right, right_t, dims, dtype, rng)

    def run():
        out = be.matmul(a, b)
        be.synchronize()
        return out

    benchkit.warm_up(run, calls=5)
    size = f"{product} {_shape(a)} @ {_shape(b)}"
    _record(benchmark, s, "kernels-matmul", backend_name, dtype, product, batch, size)
    out = benchmark(run)
    expected = B.to_numpy(a) @ B.to_numpy(b)
    np.testing.assert_allclose(B.to_numpy(out), expected, **_tolerance(dtype))


@pytest.mark.benchmark(max_time=0.5)
@pytest.mark.parametrize("dtype", benchkit.DTYPES)
@pytest.mark.parametrize("backend_name", benchkit.BACKEND_NAMES)
@pytest.mark.parametrize(
    "op,sweep_batch",
    _cases(SOFTMAX_OPS, ("softmax+ce",)),
    ids=_ids(_cases(SOFTMAX_OPS, ("softmax+ce",))),
)
def test_softmax(benchmark, bench_settings, op, sweep_batch, backend_name, dtype):
    """``softmax`` of the (N, C) scores, and the fused softmax + cross-entropy."""
    s = bench_settings
    be = benchkit.backend_or_skip(backend_name)
    batch = s.sweep_batch(sweep_batch)
    rng = np.random.default_rng(0)
    x_host = (3 * rng.standard_normal((batch, s.output_size))).astype(dtype)
    t_host = rng.integers(0, s.output_size, batch)
    x, t = be.asarray(x_host), be.asarray(t_host)

    def run():
        out = be.softmax(x) if op == "softmax" else be.softmax_cross_entropy(x, t)[1]
        be.synchronize()
        return out

    benchkit.warm_up(run, calls=5)
    size = f"{op} {batch}x{s.output_size}"
    _record(benchmark, s, "kernels-softmax", backend_name, dtype, op, batch, size)
    y = B.to_numpy(benchmark(run)).astype(np.float64)
    e = np.exp(x_host - x_host.max(axis=1, keepdims=True)).astype(np.float64)
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), **_tolerance(dtype))
