"""CPU against GPU, side by side: the rows of ``bench/gpu_report.py``.

Not collected by ``pytest bench`` (the name has no ``test_`` prefix), so the
regular benchmark passes keep their length; ``gpu_report.py`` runs it by path:

    python -m pytest bench/gpu_rows.py --benchmark-json=rows.json

Five operations, each on NumPy, Numba and CuPy in float32 and float64: one SGD
step at batch 100 (``train-step``), chapter 5's run through ``nn.Trainer``
(``train-ch5``), the train + test evaluation of one epoch (``evaluate``), and
``TwoLayerNet.numerical_gradient`` with ``method="loop"`` and ``"fast"``
(``numgrad-loop`` / ``numgrad-fast``). ``XPNET_BENCH_SKIP_SLOW_CPU=1`` skips
the CPU rows of the two slow operations (chapter 5 and the loop).
"""

from __future__ import annotations

import itertools
import os

import benchkit
import numpy as np
import pytest

import backend as B

SKIP_SLOW_CPU_ENV = "XPNET_BENCH_SKIP_SLOW_CPU"
#: Operations whose CPU rows take seconds per call at the book's size.
SLOW = ("train-ch5", "numgrad-loop")
OPERATIONS = ("train-step", "evaluate", "numgrad-fast", "numgrad-loop", "train-ch5")
LEARNING_RATE = 0.1


def _backend(name: str, operation: str) -> B.Backend:
    slow_cpu = operation in SLOW and name != "cupy"
    if slow_cpu and os.environ.get(SKIP_SLOW_CPU_ENV, "") not in ("", "0"):
        pytest.skip(f"{SKIP_SLOW_CPU_ENV}=1: the slow CPU rows are skipped")
    return benchkit.backend_or_skip(name)


def _time(benchmark, fn, be, rounds=None, warm=None):
    """Time ``fn`` (waiting for the device after each call). With ``rounds``:
    that many single calls, after one call of ``warm`` (a short version that
    compiles the kernels); else pytest-benchmark's own rounds after 3 calls."""

    def call(f=fn):
        out = f()
        be.synchronize()
        return out

    if rounds is not None:
        call(warm)
        return benchmark.pedantic(call, rounds=rounds, iterations=1)
    benchkit.warm_up(call, calls=3)
    return benchmark(call)


@pytest.mark.parametrize("dtype", benchkit.DTYPES)
@pytest.mark.parametrize("backend_name", benchkit.BACKEND_NAMES)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_row(benchmark, bench_settings, bench_data, operation, backend_name, dtype):
    """One (operation, backend, dtype) row; the result is checked for sanity."""
    import nn

    s = bench_settings
    be = _backend(backend_name, operation)
    benchkit.record(
        benchmark,
        f"gpu-{operation}",
        f"{backend_name}-f{dtype[-2:]}",
        s,
        backend=backend_name,
        dtype=dtype,
        kind="xpnet",
        baseline=backend_name == "numpy",
        data=bench_data.source,
        device=be.describe(),
    )
    previous = B.current()
    B.use(be)
    try:
        if operation == "train-ch5":
            result = _time(
                benchmark,
                lambda: _trainer(be, s, bench_data, dtype, s.ch5_iters),
                be,
                rounds=s.long_rounds,
                warm=lambda: _trainer(be, s, bench_data, dtype, 20),
            )
            assert 0.0 <= result.test_acc <= 1.0
            return
        net = benchkit.two_layer_net(be, s, dtype)
        if operation == "train-step":
            opt = nn.SGD(lr=LEARNING_RATE)
            pool = itertools.cycle(
                [
                    (be.asarray(x, dtype=dtype), be.asarray(t))
                    for x, t in benchkit.batches(bench_data, s.batch_size)
                ]
            )
            loss = _time(benchmark, lambda: net.train_step(*next(pool), opt), be)
            assert np.isfinite(float(loss))
        elif operation == "evaluate":
            d = bench_data
            sets = [
                (be.asarray(d.x_train, dtype=dtype), be.asarray(d.t_train)),
                (be.asarray(d.x_test, dtype=dtype), be.asarray(d.t_test)),
            ]
            accs = _time(benchmark, lambda: [net.accuracy(x, t) for x, t in sets], be)
            assert all(0.0 <= float(a) <= 1.0 for a in accs)
        else:
            method = operation.split("-")[1]
            x = be.asarray(bench_data.x_train[: s.batch_size], dtype=dtype)
            t = be.asarray(bench_data.t_train[: s.batch_size])
            loop = method == "loop"
            grads = _time(
                benchmark,
                lambda: net.numerical_gradient(x, t, method=method),
                be,
                rounds=s.long_rounds if loop else None,
                warm=lambda: _warm_loop(net, x, t),
            )
            assert np.all(np.isfinite(B.to_numpy(grads["W1"])))
    finally:
        B.use(previous)


def _warm_loop(net, x, t) -> dict:
    """One element of the loop's work per parameter: the same calls as the
    timed ``numerical_gradient(method="loop")`` on a one-element view of each
    parameter, so every kernel the loop launches (the loss, the element copy,
    the scalar add and subtract, the difference quotient, the restore) is
    compiled before timing, at a two-thousandth of the cost of the whole loop.
    The view shares memory and is restored, as the loop restores its input."""

    def loss(_):
        return net.loss(x, t)

    return {
        key: net.backend.numerical_gradient(loss, p[(slice(0, 1),) * p.ndim])
        for key, p in net.params.items()
    }


def _trainer(be, s, data, dtype, iters):
    from nn.data.mnist import PIXEL_SCALE
    from nn.training.progress import SilentReporter
    from nn.training.trainer import TrainConfig, Trainer

    config = TrainConfig(
        iters=iters,
        batch_size=s.batch_size,
        hidden_size=s.hidden_size,
        lr=LEARNING_RATE,
        dtype=dtype,
        seed=0,
    )
    sets = [
        (benchkit.as_pixels(x), t)
        for x, t in ((data.x_train, data.t_train), (data.x_test, data.t_test))
    ]
    trainer = Trainer(
        *sets, config, backend=be, reporter=SilentReporter(), pixel_scale=PIXEL_SCALE
    )
    return trainer.fit()
