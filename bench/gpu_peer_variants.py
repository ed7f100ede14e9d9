"""The variants of ``bench/gpu_peers.py``: chapter 5's network trained by
xpnet, PyTorch (eager, CUDA graph) and JAX (jit, ``lax.scan``).

Every variant has the same three calls: ``train(start, n)`` runs steps
``start..start+n-1`` of the run's indices (the batch gathered on the device),
``correct()`` counts right predictions on the train and test sets without
waiting, ``sync()`` waits for the device; ``run()`` is chapter 5's whole run.
Each library is imported only by its own variants.
"""

from __future__ import annotations

import numpy as np

LEARNING_RATE = 0.1
#: Steps timed per ``step`` task.
BLOCK = 100


# -- what every variant shares ----------------------------------------------
def run_indices(n_train: int, batch: int, iters: int, seed: int = 0) -> np.ndarray:
    """(iters, batch) int64: each epoch a fresh permutation of the train rows."""
    rng = np.random.default_rng(seed)
    per_epoch = max(n_train // batch, 1)
    epochs = -(-iters // per_epoch)
    rows = [rng.permutation(n_train)[: per_epoch * batch] for _ in range(epochs)]
    return np.concatenate(rows).reshape(-1, batch)[:iters]


def chunks(iters: int, per_epoch: int) -> list[int]:
    """Steps between evaluations: whole epochs, then the rest (if any)."""
    out = [per_epoch] * (iters // per_epoch)
    return out + ([iters % per_epoch] if iters % per_epoch else [])


class Variant:
    """One way to train: ``train(start, n)`` runs steps ``start..start+n-1``,
    ``correct()`` counts right predictions (train, test) without waiting,
    ``sync()`` waits for the device."""

    def __init__(self, ctx):
        self.ctx = ctx

    def run(self) -> float:
        """Chapter 5's whole run; returns the last test accuracy."""
        ctx = self.ctx
        counts = [self.correct()]
        start = 0
        for n in chunks(ctx.iters, ctx.per_epoch):
            self.train(start, n)
            start += n
            counts.append(self.correct())
        self.sync()
        return float(counts[-1][1]) / ctx.n_test


class Context:
    """Sizes, host data and indices common to every variant of a worker."""

    def __init__(self, args):
        import benchkit

        s = benchkit.SMOKE if args.smoke else benchkit.FULL
        self.settings, self.device = s, args.device
        self.data = benchkit.load_data(benchkit.data_dir(), s)
        self.sizes = (s.input_size, s.hidden_size, s.output_size)
        self.batch = s.batch_size
        self.iters = s.ch5_iters
        self.n_train, self.n_test = len(self.data.t_train), len(self.data.t_test)
        self.per_epoch = max(self.n_train // self.batch, 1)
        self.block = min(BLOCK, self.per_epoch)
        self.indices = run_indices(self.n_train, self.batch, self.iters)


# -- the variants ---------------------------------------------------------------
class XpnetVariant(Variant):
    def __init__(self, ctx):
        super().__init__(ctx)
        import backend as B
        import nn

        self.be = B.get_backend("cupy" if ctx.device == "cuda" else "numpy")
        B.use(self.be)
        d, be = ctx.data, self.be
        self.x = be.asarray(d.x_train)
        self.t = be.asarray(d.t_train)
        self.x_test, self.t_test = be.asarray(d.x_test), be.asarray(d.t_test)
        self.idx = be.asarray(ctx.indices)
        self.net = nn.TwoLayerNet(*ctx.sizes, backend=be, dtype="float32", rng=0)
        self.opt = nn.SGD(lr=LEARNING_RATE)

    def train(self, start, n):
        for i in range(start, start + n):
            idx = self.idx[i]
            self.net.train_step(self.x[idx], self.t[idx], self.opt)

    def correct(self):
        n = self.net.count_correct
        return n(self.x, self.t)[0], n(self.x_test, self.t_test)[0]

    def sync(self):
        self.be.synchronize()

    def run(self) -> float:
        """The user's path: ``nn.Trainer`` from host pixels (uploads included)."""
        import benchkit

        from nn.data.mnist import PIXEL_SCALE
        from nn.training.progress import SilentReporter
        from nn.training.trainer import TrainConfig, Trainer

        ctx, d = self.ctx, self.ctx.data
        config = TrainConfig(
            iters=ctx.iters,
            batch_size=ctx.batch,
            hidden_size=ctx.sizes[1],
            lr=LEARNING_RATE,
            dtype="float32",
            seed=0,
        )
        sets = [
            (benchkit.as_pixels(x), t)
            for x, t in ((d.x_train, d.t_train), (d.x_test, d.t_test))
        ]
        trainer = Trainer(
            *sets,
            config,
            backend=self.be,
            reporter=SilentReporter(),
            pixel_scale=PIXEL_SCALE,
        )
        result = trainer.fit(handle_sigint=False)
        self.sync()
        return result.test_acc


class TorchEager(Variant):
    def __init__(self, ctx):
        super().__init__(ctx)
        from torch_reference import TorchTwoLayerNet, import_torch

        torch = self.torch = import_torch()
        dev = ctx.device
        d = ctx.data
        self.x = torch.from_numpy(d.x_train).to(dev)
        self.t = torch.from_numpy(d.t_train).to(dev)
        self.x_test = torch.from_numpy(d.x_test).to(dev)
        self.t_test = torch.from_numpy(d.t_test).to(dev)
        self.idx = torch.from_numpy(ctx.indices).to(dev)
        self.net = TorchTwoLayerNet(
            torch, *ctx.sizes, torch.float32, lr=LEARNING_RATE, device=dev
        )

    def train(self, start, n):
        for i in range(start, start + n):
            idx = self.idx[i]
            self.net.step(self.x[idx], self.t[idx])

    def correct(self):
        n = self.net.count_correct
        return n(self.x, self.t), n(self.x_test, self.t_test)

    def sync(self):
        if self.ctx.device == "cuda":
            self.torch.cuda.synchronize()


class TorchGraph(TorchEager):
    """One step captured once as a CUDA graph (PyTorch's documented
    whole-network recipe: warm-up on a side stream, grads set to None before
    capture), replayed after copying the step's indices into a fixed buffer."""

    def __init__(self, ctx):
        super().__init__(ctx)
        torch, net = self.torch, self.net
        if ctx.device != "cuda":
            raise RuntimeError("CUDA graphs need a CUDA device")
        self.static_idx = self.idx[0].clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                net.step(self.x[self.static_idx], self.t[self.static_idx])
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        net.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            x, t = self.x[self.static_idx], self.t[self.static_idx]
            loss = torch.nn.functional.cross_entropy(net.model(x), t)
            loss.backward()
            net.optimizer.step()

    def train(self, start, n):
        for i in range(start, start + n):
            self.static_idx.copy_(self.idx[i])
            self.graph.replay()


class JaxJit(Variant):
    def __init__(self, ctx):
        super().__init__(ctx)
        from jax_two_layer import JaxTwoLayerNet, import_jax

        jax = self.jax = import_jax()
        device = jax.devices("gpu" if ctx.device == "cuda" else "cpu")[0]
        self.net = net = JaxTwoLayerNet(
            jax, *ctx.sizes, lr=LEARNING_RATE, device=device
        )
        d = ctx.data
        self.x, self.t = net.put(d.x_train), net.put(d.t_train.astype(np.int32))
        self.x_test = net.put(d.x_test)
        self.t_test = net.put(d.t_test.astype(np.int32))
        self.idx = net.put(ctx.indices.astype(np.int32))
        self.rows = list(self.idx)  # one device array per step, sliced once

    def train(self, start, n):
        for i in range(start, start + n):
            self.net.step(self.x, self.t, self.rows[i])

    def correct(self):
        n = self.net.count_correct
        return n(self.x, self.t), n(self.x_test, self.t_test)

    def sync(self):
        self.jax.block_until_ready(self.net.params)


class JaxScan(JaxJit):
    def train(self, start, n):
        self.net.steps(self.x, self.t, self.idx[start : start + n])


VARIANTS = {
    "xpnet": {"xpnet": XpnetVariant},
    "torch": {"torch-eager": TorchEager, "torch-graph": TorchGraph},
    "jax": {"jax-jit": JaxJit, "jax-scan": JaxScan},
}
IMPORTS = {"xpnet": "nn", "torch": "torch", "jax": "jax"}
