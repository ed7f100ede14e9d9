"""Mini-batch training as chapters 4 to 6 do it: ``TwoLayerNet`` by SGD, or
chapter 6's networks with any of its optimizers (``nn.training.network``).

Usable from Python and notebooks::

    from nn.training.trainer import Trainer, TrainConfig, load_data
    train, test = load_data("fashion-mnist")
    result = Trainer(train, test, TrainConfig(iters=2000), out_dir="runs/a").fit()

The data is moved to the backend once. Losses stay on the device in a small
buffer and are pulled to the host in one copy about once a second (or every
``FLUSH_EVERY`` steps), which is also when divergence is checked (the step
loop, :mod:`nn.training.loop`); accuracies are computed once an epoch. Batches
are drawn on the host from one ``numpy.random.Generator`` (seeded weights
first, then batches) whose state is checkpointed, so a resumed run repeats an
uninterrupted one exactly.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from pathlib import Path

import backend as B
from nn.training.checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    load_checkpoint,
    resolve_path,
    save_checkpoint,
)
from nn.training.config import TrainConfig
from nn.training.data import as_labels, check_pixel_scale, check_split, load_data
from nn.training.evaluation import accuracy_alive, evaluate
from nn.training.indices import BatchIndices
from nn.training.interrupt import StopRequest
from nn.training.loop import run_steps
from nn.training.metrics import MetricsWriter
from nn.training.network import (
    build_network,
    build_optimizer,
    describe_network,
    layer_widths,
    output_size,
)
from nn.training.progress import ConsoleReporter
from nn.training.record import EvalRecord, History, TrainResult
from nn.training.state import restore, snapshot

__all__ = [
    "EvalRecord",
    "History",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "load_data",
]


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN or infinite."""


class Trainer:
    """Trains the config's network on ``train = (x, t)``, evaluating on ``test``.

    The network is ``TwoLayerNet`` for chapter 5's config, else
    ``MultiLayerNetExtend`` (``nn.training.network.build_network``), trained
    with the config's optimizer; evaluations run in inference mode
    (``train_flg=False``: no Dropout, Batch Normalization's running statistics).

    x: (N, ...) host or device array (flattened to (N, D)); t: (N,) integer
    labels or (N, C) one-hot. ``out_dir`` (optional) receives ``metrics.csv``,
    ``checkpoint.npz`` (at every evaluation and at the end) and the plots.
    ``reporter`` prints progress (default
    :class:`~nn.training.progress.ConsoleReporter`).

    ``pixel_scale``: x holds integer pixels, such as
    ``load_data(normalize=False)``'s uint8 images, divided by it on the way
    in (``Backend.scaled_rows``). With :data:`~nn.data.mnist.PIXEL_SCALE` that is
    bit for bit the normalized float32 images. On a CPU backend, batches are
    then gathered from the pixels, a quarter of the bytes per random row
    (measured on Numba: 243 against 272 us per step), which the trainer keeps
    beside the scaled images (a quarter more memory), while evaluations read
    the images scaled once (streamed, float32 rows evaluate faster than
    chunks converted on the fly: 45 against 51 ms per 60,000). On a GPU the
    pixels and labels stay on the device for the run and the gather with its
    division is one kernel (``CuPyBackend.scaled_rows``); the batch indices
    come from the same host generator, uploaded an epoch at a time
    (:class:`~nn.training.indices.BatchIndices`), so a step copies nothing.
    """

    def __init__(
        self,
        train,
        test,
        config: TrainConfig | None = None,
        *,
        backend=None,
        dataset: str = "custom",
        out_dir=None,
        reporter=None,
        checkpoint: Checkpoint | None = None,
        pixel_scale: float | None = None,
    ):
        config = config or TrainConfig()
        if config.seed is None:
            config = replace(config, seed=secrets.randbits(32))
        self.config = config
        self.backend = B.get_backend(backend)
        self.dataset = dataset
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.reporter = reporter if reporter is not None else ConsoleReporter()
        (x_train, t_train), (x_test, t_test) = (
            check_split(train, "train"),
            check_split(test, "test"),
        )
        self.train_size = len(x_train)
        self.iters_per_epoch = max(self.train_size // config.batch_size, 1)
        self.eval_every = config.eval_every or self.iters_per_epoch
        self.total = (
            config.epochs * self.iters_per_epoch if config.epochs else config.iters
        )
        t_train, t_test = as_labels(t_train), as_labels(t_test)
        if checkpoint is not None and "W1" in checkpoint.params:
            classes = output_size(checkpoint.params)
        else:
            classes = int(max(t_train.max(), t_test.max())) + 1
        be, dtype = self.backend, config.dtype
        self.pixel_scale = check_pixel_scale(pixel_scale, x_train, x_test)
        x_train, x_test = (x.reshape(len(x), -1) for x in (x_train, x_test))
        #: Where batches come from: the integer pixels, or (None) x_train.
        self.batch_source = None
        if self.pixel_scale is not None:
            self.batch_source = be.asarray(x_train)
            x_train, x_test = (
                be.scaled_rows(be.asarray(x), slice(None), self.pixel_scale, dtype)
                for x in (x_train, x_test)
            )
        self.x_train = be.asarray(x_train, dtype=dtype)
        self.x_test = be.asarray(x_test, dtype=dtype)
        self.t_train = be.asarray(t_train, dtype="int64")
        self.t_test = be.asarray(t_test, dtype="int64")
        self.rng = B.default_rng(config.seed)
        self.net = build_network(config, self.x_train.shape[1], classes, be, self.rng)
        #: Each step's batch indices (the run's generator; device blocks).
        self.indices = BatchIndices(
            be, self.rng, self.train_size, config.batch_size, self.iters_per_epoch
        )
        self.optimizer = build_optimizer(config, be)
        self.iteration = 0
        self.elapsed = 0.0
        self.history = History()
        self.checkpoint_iteration = None
        self._resumed = checkpoint is not None
        if checkpoint is not None:
            restore(self, checkpoint)

    @classmethod
    def resume(cls, checkpoint, train, test, *, iters=None, epochs=None, **kwargs):
        """A trainer that continues ``checkpoint`` (a path or a :class:`Checkpoint`).

        ``iters`` or ``epochs`` extend (or shorten) the run; every other
        setting comes from the checkpoint. ``kwargs`` as for :class:`Trainer`;
        ``out_dir`` defaults to the checkpoint's folder when given a path.
        """
        ckpt = checkpoint
        if not isinstance(ckpt, Checkpoint):
            ckpt = load_checkpoint(checkpoint)
            kwargs.setdefault("out_dir", resolve_path(checkpoint).parent)
        config = TrainConfig.from_dict(ckpt.config)
        if iters is not None or epochs is not None:
            config = replace(config, iters=iters or config.iters, epochs=epochs)
        kwargs.setdefault("dataset", ckpt.dataset)
        return cls(train, test, config, checkpoint=ckpt, **kwargs)

    def describe(self) -> str:
        """One line: network, schedule, dtype and seed."""
        net, cfg = self.net, self.config
        shape = "-".join(str(s) for s in layer_widths(net.params))
        extra = "" if cfg.is_chapter5 else f" [{describe_network(cfg)}]"
        return (
            f"{self.dataset}: {self.train_size} train / {len(self.x_test)} test, "
            f"{shape} {cfg.activation} ({cfg.grad}){extra}, batch {cfg.batch_size}, "
            f"lr {cfg.lr}, "
            f"{self.total} iterations ({self.total / self.iters_per_epoch:.2f} epochs, "
            f"eval every {self.eval_every}), {cfg.dtype}, seed {cfg.seed}"
        )

    def step(self):
        """One step on a random batch. -> its 0-d loss (before the update)."""
        # The same draws as the book's np.random.choice(train_size, batch_size)
        # with this generator (choice calls integers), at half the call cost;
        # on a device backend, a row of a block uploaded once an epoch.
        idx = self.indices.next()
        x, t = self.batch(idx), self.t_train[idx]
        if self.config.grad == "numerical":
            # The gradient's kernels use every core; BLAS workers woken by
            # the loss's products would spin on them (backend.numba.blas).
            with self.backend.serial_blas():
                loss = self.backend.xp.array(self._loss(x, t))  # a copy
                grads = self.net.numerical_gradient(x, t)
            self.optimizer.update(self.net.params, grads)
            return loss
        return self.net.train_step(x, t, self.optimizer)

    def _loss(self, x, t):
        # Chapter 6's networks: the training-mode loss, as their gradients use.
        if self.config.is_chapter5:
            return self.net.loss(x, t)
        return self.net.loss(x, t, train_flg=True)

    def batch(self, idx):
        """Rows ``idx`` (B,) of ``x_train``, from the pixels when ``pixel_scale``
        is set. -> (B, D) of the trainer's dtype."""
        if self.batch_source is None:
            return self.x_train[idx]
        return self.backend.scaled_rows(
            self.batch_source, idx, self.pixel_scale, self.config.dtype
        )

    def accuracy(self, x, t) -> float:
        """Fraction of rows of x (N, D) whose predicted class is t (N,)."""
        return accuracy_alive(self, x, t)[0]

    def fit(self, handle_sigint: bool = True) -> TrainResult:
        """Train up to ``total`` iterations; Ctrl-C stops after the current step.

        Raises :class:`TrainingDiverged` when the loss or weights stop being
        finite (the last checkpoint on disk is the last good one).
        """
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        metrics = None
        start_iteration, start_time = self.iteration, time.perf_counter()
        self._clock0 = start_time - self.elapsed
        self._overhead = 0.0
        self._first_step_seconds = 0.0
        self.reporter.start(self.total, self.iteration)
        try:
            if self.out_dir is not None:
                metrics = MetricsWriter(
                    self.out_dir,
                    resume_at=self.iteration if self._resumed else None,
                    history=self.history,  # checks and repairs a damaged file
                    iters_per_epoch=self.iters_per_epoch,
                )
            self._resumed = True  # a second fit() continues this run's files
            with StopRequest(handle_sigint) as stop:
                if not self.history.eval_iteration:
                    self._evaluate(metrics)  # the book's epoch-0 point
                run_steps(self, metrics, stop)
                interrupted = stop.requested
            if interrupted:
                self.reporter.message(f"interrupted at iteration {self.iteration}")
                self._save_checkpoint()
            elif self.history.eval_iteration[-1] != self.iteration:
                self._evaluate(metrics)
        except TrainingDiverged:
            self._save_plots()
            raise
        finally:
            if metrics is not None:
                metrics.close()
            self.reporter.finish()
        steps = self.iteration - start_iteration
        session = time.perf_counter() - start_time - self._overhead
        # The first step pays one-off costs (Numba compilation, CUDA context).
        first = self._first_step_seconds if steps > 1 else 0.0
        self._save_plots()
        return TrainResult(
            iterations=self.iteration,
            train_acc=self.history.train_acc[-1],
            test_acc=self.history.test_acc[-1],
            elapsed=self.elapsed,
            seconds_per_iter=(session - first) / (steps - (first > 0))
            if steps
            else 0.0,
            first_step_seconds=first,
            interrupted=interrupted,
            checkpoint=self._checkpoint_path()
            if self.checkpoint_iteration is not None
            else None,
            history=self.history,
        )

    def _diverged(self, what: str):
        where = (
            f"the last good checkpoint is {self._checkpoint_path()} "
            f"(iteration {self.checkpoint_iteration})"
            if self.checkpoint_iteration is not None
            else "no checkpoint was written"
        )
        raise TrainingDiverged(
            f"training diverged: {what} (learning rate {self.config.lr} is probably "
            f"too large; try a smaller --lr); stopped, {where}"
        )

    def _evaluate(self, metrics) -> None:
        evaluate(self, metrics)  # records, reports and checkpoints

    def _save_checkpoint(self) -> None:
        xp = self.backend.xp
        if not all(bool(xp.isfinite(p).all()) for p in self.net.params.values()):
            self._diverged(f"the weights are not finite at iteration {self.iteration}")
        if self.out_dir is not None:
            save_checkpoint(self._checkpoint_path(), self.checkpoint())
            self.checkpoint_iteration = self.iteration

    def _checkpoint_path(self) -> Path | None:
        return self.out_dir / CHECKPOINT_NAME if self.out_dir is not None else None

    def checkpoint(self) -> Checkpoint:
        """The run's state now, as host arrays (see :mod:`nn.training.checkpoint`)."""
        return snapshot(self)

    def _save_plots(self) -> None:
        if self.out_dir is not None:
            self.history.save_plots(self.out_dir, self.iters_per_epoch)
