"""Training steps replayed from captured device work (CUDA graphs on a GPU).

On a backend that can capture (``Backend.capture``: the CuPy backend), the
step loop (``nn.training.loop``) runs the fused
``TwoLayerNet`` step in chunks: the device work of ``n`` consecutive steps is
captured once, on fixed buffers, and each later chunk with the same place in
the epoch is one replay, one host call instead of about six launches per
step. What a chunk reads and writes never moves: the epoch's batch indices
come in one copy into the same device block (``BatchIndices``), the batch is
gathered from that block's rows ``row .. row + n - 1`` (baked into the
captured steps), and each step's loss goes into its entry ``at .. at + n - 1``
of the loop's loss buffer, which the loop's flush copies to the host as
before. A chunk is keyed by ``(row, at, n)``; chapter 5's run (600 steps an
epoch, losses flushed every 100) replays 6 graphs an epoch, captured in its
first two epochs.

The captured steps are the eager ones, kernel for kernel: a replay gives the
same bits. Where a capture fails the backend warns once and this runner stays
eager (``run`` returns 0 and the loop calls ``Trainer.step``). Only the fused
two-layer SGD step (backprop, plain SGD, float32/float64) is captured here;
the evaluations are captured by the backend itself
(``FusedTwoLayer.count_correct``).
"""

from __future__ import annotations

from nn.optimizer import SGD
from nn.two_layer_net import TwoLayerNet

__all__ = ["MAX_GRAPHS", "StepGraphs"]

#: Most graphs kept per run; further chunk shapes run eagerly.
MAX_GRAPHS = 64


class StepGraphs:
    """Captures and replays chunks of a trainer's steps; see the module.

    ``buf``: the loop's (FLUSH_EVERY,) device loss buffer, of the net's dtype.
    """

    def __init__(self, trainer, buf):
        self.trainer, self.buf = trainer, buf
        be, net = trainer.backend, trainer.net
        xp = be.xp
        batch = trainer.config.batch_size
        self.x = xp.empty((batch, trainer.x_train.shape[1]), dtype=net.dtype)
        self.t = xp.empty(batch, dtype=trainer.t_train.dtype)
        self.graphs: dict = {}
        self.warm = False
        self.off = False

    @classmethod
    def create(cls, trainer, buf) -> StepGraphs | None:
        """A runner for ``trainer``, or None where its steps are not the fused
        two-layer SGD step on a device backend."""
        be, net = trainer.backend, trainer.net
        if (
            be.on_host
            or be.two_layer_sgd_step is None
            or not isinstance(net, TwoLayerNet)
            or type(trainer.optimizer) is not SGD
            or trainer.config.grad != "backprop"
            or str(net.dtype) not in ("float32", "float64")
        ):
            return None
        return cls(trainer, buf)

    def run(self, at: int, most: int) -> int:
        """Run up to ``most`` (>= 1) steps, their losses into ``buf[at:]``.

        -> the steps run: a replayed chunk, 1 (the first step, eager, which
        allocates the step's scratch before any capture), or 0 where this
        runner does not apply (the caller takes one eager step).
        """
        if self.off:
            return 0
        indices = self.trainer.indices
        block, row, left = indices.block()
        if not self.warm:
            if not self._steps(block, row, at, 1):
                self.off = True  # the fused step does not take these inputs
                return 0
            indices.skip(1)
            self.warm = True
            return 1
        n = min(most, left)
        key = (row, at, n)
        graph = self.graphs.get(key)
        if graph is None:
            if len(self.graphs) >= MAX_GRAPHS:
                return 0
            graph = self.trainer.backend.capture(
                lambda: self._steps(block, row, at, n, captured=True)
            )
            if graph is None:
                self.off = True
                return 0
            self.graphs[key] = graph
        graph.launch()
        indices.skip(n)
        return n

    def _steps(self, block, row, at, n, captured=False) -> bool:
        """Queue steps ``row .. row + n - 1`` of the block on the fixed buffers."""
        trainer, net = self.trainer, self.trainer.net
        be, xp = trainer.backend, trainer.backend.xp
        for k in range(n):
            idx = block[row + k]  # a view: its address is fixed
            if trainer.batch_source is None:
                xp.take(trainer.x_train, idx, axis=0, out=self.x)
            else:
                be.scaled_rows(
                    trainer.batch_source,
                    idx,
                    trainer.pixel_scale,
                    trainer.config.dtype,
                    out=self.x,
                )
            xp.take(trainer.t_train, idx, out=self.t)
            loss = be.two_layer_sgd_step(
                net.params,
                self.x,
                self.t,
                trainer.optimizer.lr,
                net.activation,
                out=self.buf[at + k : at + k + 1],
            )
            if loss is None:
                if captured:
                    raise RuntimeError("the fused step does not take these inputs")
                return False
        return True
