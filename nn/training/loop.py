"""A trainer's step loop: losses buffered on the device, flushed in batches.

A step's loss stays a 0-d device array, written into a buffer of
``FLUSH_EVERY`` entries; the buffer comes to the host in one copy when it is
full, about once a second (``FLUSH_SECONDS``), at an evaluation or on Ctrl-C.
That copy is when progress is reported and divergence (a NaN or infinite
loss) is detected, so the loop never waits on the device once per step.
"""

from __future__ import annotations

import math
import time

from nn.training.graphs import StepGraphs

__all__ = ["FLUSH_EVERY", "FLUSH_SECONDS", "run_steps"]

#: Most steps whose losses wait on the device before one copy to the host.
FLUSH_EVERY = 100
#: Most seconds between two such copies (progress and divergence checks).
FLUSH_SECONDS = 1.0


def run_steps(trainer, metrics, stop) -> None:
    """Step ``trainer`` until its ``total`` or ``stop.requested``, flushing losses.

    Evaluates (see `nn.training.evaluation.evaluate`) at every ``eval_every``
    iteration and at the last; ``metrics``: the run's MetricsWriter or None.
    """
    buf = trainer.backend.xp.zeros(FLUSH_EVERY, dtype=trainer.net.dtype)
    # Chunks of steps replayed from captured device work, where the backend
    # can (nn.training.graphs); each writes its losses into buf itself.
    graphs = StepGraphs.create(trainer, buf)
    times = []
    last_flush = started = time.perf_counter()
    while trainer.iteration < trainer.total and not stop.requested:
        most = min(
            FLUSH_EVERY - len(times),
            trainer.eval_every - trainer.iteration % trainer.eval_every,
            trainer.total - trainer.iteration,
        )
        done = graphs.run(len(times), most) if graphs is not None else 0
        if not done:
            buf[len(times)] = trainer.step()
            done = 1
        trainer.iteration += done
        now = time.perf_counter()
        if not trainer._first_step_seconds:
            trainer._first_step_seconds = now - started
        times.extend([now - trainer._clock0] * done)
        due_eval = (
            trainer.iteration % trainer.eval_every == 0
            or trainer.iteration == trainer.total
        )
        if (
            due_eval
            or stop.requested
            or len(times) == FLUSH_EVERY
            or now - last_flush >= FLUSH_SECONDS
        ):
            _flush(trainer, buf, times, metrics)
            times, last_flush = [], now
        if due_eval and not stop.requested:
            trainer._evaluate(metrics)
    trainer.indices.settle()  # the generator where the iteration is


def _flush(trainer, buf, times, metrics) -> None:
    """Copy the losses in ``buf`` (one per entry of ``times``) to the host.

    Records and reports them, and stops the run at the first non-finite one.
    """
    losses = trainer.backend.asnumpy(buf[: len(times)]).tolist()  # one device sync
    first = trainer.iteration - len(losses) + 1
    trainer.history.loss.extend(losses)
    trainer.elapsed = times[-1]
    if metrics is not None:
        metrics.write_steps(first, losses, times, trainer.iters_per_epoch)
    trainer.reporter.progress(trainer.iteration, losses[-1])
    for i, value in enumerate(losses):
        if not math.isfinite(value):
            trainer._diverged(f"the loss is {value} at iteration {first + i}")
