"""How the cost of a gradient grows: hidden sizes x batch sizes, for the
textbook numerical loop, the fast numerical gradient and backprop.

Group ``numgrad-scaling``; the size label is ``784-<hidden>-10 b<batch>``.
Chapter 5's ReLU network has every method; chapter 4's sigmoid network adds
its fast path (variant names end in ``-sigmoid``), the one method whose cost
depends on the activation (the loop and backprop cost the same on both). The
loop is timed for real (numpy backend, one round) where it takes under
``LOOP_BUDGET_SECONDS``; above that a full call would take minutes to hours,
so the variant ``loop-estimate`` times what the loop repeats for every
parameter (two forward passes of the loss) and records the call's cost as
(number of parameters) x that median in ``extra_info["estimated_seconds"]``.
Plot a ``--benchmark-json`` file with ``bench/plot_numgrad_scaling.py``.

    pytest bench/test_bench_numgrad.py --benchmark-json=numgrad.json
"""

from __future__ import annotations

import os

import benchkit
import numpy as np
import pytest

import backend as B

HIDDEN_SIZES = (50, 100, 200, 400)
BATCH_SIZES = benchkit.FULL_BATCH_SWEEP  # (10, 100, 1000)
METHODS = ("loop", "fast", "backprop")
DTYPE = "float64"
#: Longest textbook-loop call that is timed for real (estimated beforehand);
#: ``XPNET_BENCH_LOOP_BUDGET`` overrides it (0: every loop point estimated,
#: for a quick sweep on a busy machine, where the loop's many small BLAS calls
#: slow down far more than the fast paths do).
LOOP_BUDGET_SECONDS = float(os.environ.get("XPNET_BENCH_LOOP_BUDGET", "40"))
#: Seconds of one forward pass per sample and parameter-count unit, measured on
#: this machine, used only to decide whether the real loop fits the budget.
_FORWARD_SECONDS_PER_MAC = 5e-11


def _sizes(s: benchkit.Settings, hidden: int, batch: int) -> tuple[int, int]:
    """This session's hidden and batch size for the full sweep's (hidden, batch)."""
    if not s.smoke:
        return hidden, batch
    return s.hidden_size * (1 + HIDDEN_SIZES.index(hidden)), s.sweep_batch(batch)


def _n_params(s: benchkit.Settings, hidden: int) -> int:
    return (s.input_size + 1) * hidden + (hidden + 1) * s.output_size


def _loop_estimate(s: benchkit.Settings, hidden: int, batch: int) -> float:
    """Rough seconds of one textbook-loop call (2 forward passes per parameter)."""
    macs = batch * (s.input_size * hidden + hidden * s.output_size)
    return 2 * _n_params(s, hidden) * (macs * _FORWARD_SECONDS_PER_MAC + 100e-6)


def _variant(s, method: str, hidden: int, batch: int) -> str:
    budget = 0.5 if s.smoke else LOOP_BUDGET_SECONDS  # smoke: keep the suite quick
    if method == "loop" and _loop_estimate(s, hidden, batch) > budget:
        return "loop-estimate"
    return method


#: (method, activation) pairs of the sweep.
CASES = [(m, "relu") for m in METHODS] + [("fast", "sigmoid")]


@pytest.mark.parametrize("batch", BATCH_SIZES, ids=lambda b: f"b{b}")
@pytest.mark.parametrize("hidden", HIDDEN_SIZES, ids=lambda h: f"h{h}")
@pytest.mark.parametrize(
    ("method", "activation"), CASES, ids=[f"{m}-{a}" for m, a in CASES]
)
@pytest.mark.parametrize("backend_name", benchkit.BACKEND_NAMES)
def test_numgrad_scaling(
    benchmark,
    bench_settings,
    bench_data,
    backend_name,
    method,
    activation,
    hidden,
    batch,
):
    s = bench_settings
    h, b = _sizes(s, hidden, batch)
    be = benchkit.backend_or_skip(backend_name)
    if method == "loop" and be.name != "numpy":
        pytest.skip("the textbook loop is timed on numpy only")
    variant = _variant(s, method, h, b)
    previous = B.current()
    B.use(be)
    try:
        net = benchkit.two_layer_net(be, s, DTYPE, h, activation)
        xh, th = benchkit.batches(bench_data, b, count=1)[0]
        x, t = be.asarray(xh, dtype=DTYPE), be.asarray(th)

        def run():
            if variant == "backprop":
                out = net.gradient(x, t)["W1"]
            elif variant == "loop-estimate":
                out = (net.loss(x, t), net.loss(x, t))[1]
            else:
                out = net.numerical_gradient(x, t, method=variant)["W1"]
            be.synchronize()
            return out

        benchkit.record(
            benchmark,
            "numgrad-scaling",
            f"{backend_name}-{variant}"
            + ("-sigmoid" if activation == "sigmoid" else ""),
            s,
            backend=backend_name,
            dtype=DTYPE,
            data=bench_data.source,
            method=method,
            activation=activation,
            variant_kind=variant,
            hidden_size=h,
            batch_size=b,
            size=f"{s.input_size}-{h}-{s.output_size} b{b}",
            n_params=_n_params(s, h),
            baseline=method == "loop",
        )
        if variant == "loop":
            out = benchmark.pedantic(run, rounds=s.long_rounds)
        else:
            benchkit.warm_up(run, calls=2)  # JIT compile excluded
            out = benchmark(run)
        stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
        if variant == "loop-estimate" and stats is not None:
            per_param = stats.stats.median
            benchmark.extra_info["estimated_seconds"] = per_param * _n_params(s, h)
        assert np.all(np.isfinite(B.to_numpy(out)))
    finally:
        B.use(previous)
