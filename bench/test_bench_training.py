"""Training: one SGD step, a 1000-iteration run and chapter 5's whole loop.

Every variant (the book's code, a plain float32 transcription, PyTorch, xpnet
on each backend and dtype) runs the same body, one after the other in one
parametrized test so that rounds being compared are close in time. CuPy rows
are the CPU-versus-GPU comparison; they skip with the reason without a GPU.
"""

from __future__ import annotations

import itertools

import benchkit
import numpy as np
import pytest
from contenders import (
    LEARNING_RATE,
    VARIANTS,
    Contender,
    train_loop,
    variant_info,
)

ALL = list(VARIANTS)
#: Variants of the batch-size sweep and of chapter 5's loop (trainer dtype).
SWEEP = ["book-f64", "torch-f32", "numpy-f32", "numba-f32", "cupy-f32"]
#: xpnet variants of chapter 5's run through ``nn.Trainer``, as train.py runs.
TRAINER = [v for v in SWEEP if VARIANTS[v].kind == "xpnet"]


def _step_cases():
    """Every variant at the book's batch, the sweep variants at other batches."""
    full = benchkit.FULL
    cases = [(v, None) for v in ALL]
    for batch in full.batch_sweep:
        if batch != full.batch_size:
            cases += [(v, batch) for v in SWEEP]
    return cases


@pytest.mark.parametrize(
    "variant,sweep_batch",
    _step_cases(),
    ids=[f"{v}-b{b}" if b else v for v, b in _step_cases()],
)
def test_sgd_step(benchmark, bench_settings, bench_data, variant, sweep_batch):
    """One forward + backward + SGD update at batch 100 (and the batch sweep)."""
    s = bench_settings
    batch = s.sweep_batch(sweep_batch)
    with Contender(VARIANTS[variant], s) as c:
        pool = itertools.cycle(
            [c.arrays(x, t) for x, t in benchkit.batches(bench_data, batch)]
        )

        def step():
            loss = c.step(*next(pool))
            c.sync()
            return loss

        benchkit.warm_up(step, calls=20)
        benchkit.record(
            benchmark,
            "train-step",
            variant,
            s,
            torch_module=c.torch,
            batch_size=batch,
            size=s.label(batch),
            sweep_axis="batch_size",
            data=bench_data.source,
            **c.info(),
        )
        loss = benchmark(step)
        assert np.isfinite(float(loss))


def _indices(n_rows: int, iters: int, batch: int, seed: int = 0) -> np.ndarray:
    """(iters, batch) random rows with replacement, as ``np.random.choice`` does."""
    return np.random.default_rng(seed).integers(0, n_rows, (iters, batch))


@pytest.mark.parametrize("variant", ALL)
def test_train_1000(benchmark, bench_settings, bench_data, variant):
    """1000 iterations of the training loop (batch gather + step), no evaluation."""
    s = bench_settings
    with Contender(VARIANTS[variant], s) as c:
        x, t = c.arrays(bench_data.x_train, bench_data.t_train)
        n = bench_data.x_train.shape[0]
        idx = c.index(_indices(n, s.run_iters, s.batch_size))
        benchkit.warm_up(lambda: train_loop(c, x, t, idx[:20]), calls=1)
        benchkit.record(
            benchmark,
            "train-1000",
            variant,
            s,
            torch_module=c.torch,
            iterations=s.run_iters,
            data=bench_data.source,
            **c.info(),
        )
        losses = benchmark.pedantic(
            train_loop, args=(c, x, t, idx), rounds=s.run_rounds, iterations=1
        )
        assert len(losses) == s.run_iters and np.isfinite(float(losses[-1]))


@pytest.mark.parametrize("variant", SWEEP)
def test_chapter5_loop(benchmark, bench_settings, bench_data, variant):
    """Chapter 5's run: 10,000 steps and a train + test accuracy every epoch."""
    s = bench_settings
    with Contender(VARIANTS[variant], s) as c:
        x, t = c.arrays(bench_data.x_train, bench_data.t_train)
        x_test, t_test = c.arrays(bench_data.x_test, bench_data.t_test)
        n = bench_data.x_train.shape[0]
        eval_every = max(n / s.batch_size, 1)  # the book's iter_per_epoch
        idx = c.index(_indices(n, s.ch5_iters, s.batch_size))
        accuracies = []

        def evaluate():
            accuracies.append((c.accuracy(x, t), c.accuracy(x_test, t_test)))

        benchkit.warm_up(lambda: train_loop(c, x, t, idx[:20]), calls=1)
        evaluate()
        accuracies.clear()
        benchkit.record(
            benchmark,
            "train-ch5",
            variant,
            s,
            torch_module=c.torch,
            iterations=s.ch5_iters,
            evaluations=len(range(0, s.ch5_iters, int(np.ceil(eval_every)))),
            data=bench_data.source,
            **c.info(),
        )
        benchmark.pedantic(
            train_loop,
            args=(c, x, t, idx, evaluate, eval_every),
            rounds=s.long_rounds,
            iterations=1,
        )
        benchmark.extra_info["final_accuracy"] = {
            "train": accuracies[-1][0],
            "test": accuracies[-1][1],
        }
        assert 0.0 <= accuracies[-1][1] <= 1.0


@pytest.mark.parametrize("variant", TRAINER)
def test_chapter5_trainer(benchmark, bench_settings, bench_data, variant):
    """Chapter 5's run as ``train.py`` runs it: ``nn.Trainer.fit``.

    The same 10,000 steps at batch 100, with the trainer's own batch draws,
    on uint8 pixels that each batch divides by 255 (bit for bit the float32
    images of the loop above, with a quarter of the bytes per gather), and a
    train + test accuracy each epoch and once more at the end: 18
    evaluations, one more than the book's loop. No files are written.
    """
    from nn.data.mnist import PIXEL_SCALE
    from nn.training import TrainConfig, Trainer
    from nn.training.progress import SilentReporter

    s = bench_settings
    v = VARIANTS[variant]
    backend = benchkit.backend_or_skip(v.backend)
    data = [
        (benchkit.as_pixels(x), t)
        for x, t in (
            (bench_data.x_train, bench_data.t_train),
            (bench_data.x_test, bench_data.t_test),
        )
    ]

    def trainer(iters):
        config = TrainConfig(
            iters=iters,
            batch_size=s.batch_size,
            hidden_size=s.hidden_size,
            lr=LEARNING_RATE,
            dtype=v.dtype,
            seed=0,
        )
        return Trainer(
            *data,
            config,
            backend=backend,
            reporter=SilentReporter(),
            pixel_scale=PIXEL_SCALE,
        )

    benchkit.warm_up(trainer(20).fit, calls=1)
    first = trainer(s.ch5_iters)
    benchkit.record(
        benchmark,
        "train-ch5",
        f"{variant}-trainer",
        s,
        iterations=s.ch5_iters,
        evaluations=len(range(0, s.ch5_iters, first.eval_every)) + 1,
        data=bench_data.source,
        **variant_info(v),
    )
    trainers = iter([first] + [trainer(s.ch5_iters) for _ in range(s.long_rounds - 1)])
    result = benchmark.pedantic(
        lambda: next(trainers).fit(), rounds=s.long_rounds, iterations=1
    )
    benchmark.extra_info["final_accuracy"] = {
        "train": result.train_acc,
        "test": result.test_acc,
    }
    assert result.iterations == s.ch5_iters and 0.0 <= result.test_acc <= 1.0
