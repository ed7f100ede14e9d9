"""Chapter 6's benchmark network in xpnet, PyTorch (eager) and JAX (a jitted step).

The network is the book's optimizer-comparison net: 784-100-100-100-100-10,
ReLU, He initialisation, trained with Adam (lr 0.001, beta1 0.9, beta2
0.999); optionally with Batch Normalization between each hidden Affine and
its ReLU (the book's ``MultiLayerNetExtend(use_batchnorm=True)`` order).
Every contender starts from the same host parameters (``he_params``) so all
train the same problem.

PyTorch is written as a PyTorch user would (``nn.Sequential``,
``F.cross_entropy``, ``optim.Adam``). JAX has no optimizer library here
(optax is not a dependency), so its Adam is the book's update rule in
``jax.numpy``: ``lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)``,
``m += (1 - beta1)(g - m)``, ``v += (1 - beta2)(g^2 - v)``,
``p -= lr_t m / (sqrt(v) + 1e-7)``. The whole JAX step (batch gather,
forward, backward, Adam, running statistics) is one ``jax.jit`` function.

Both peers are optional: ``import_jax`` returns None without JAX, and
``torch_reference.import_torch`` None without PyTorch. Every network class
has the same small interface for ``chapter6.py``: ``indices(idx)`` (host
(steps, batch) rows -> the library's), ``train(x, t, rows)`` (one step per
row of ``rows``), ``eval_loss(x, t)`` (inference-mode loss, a float) and
``sync()``.
"""

from __future__ import annotations

import functools

import numpy as np

LR, BETA1, BETA2, ADAM_EPS = 0.001, 0.9, 0.999, 1e-7
#: The book's Batch Normalization epsilon (``10e-7``) and running-mean momentum.
BN_EPS, BN_MOMENTUM = 1e-6, 0.9


def he_params(sizes, batchnorm: bool, seed: int = 0, dtype="float32") -> dict:
    """The book's He-initialised parameters on the host: W1.. (N(0, 2/n_in)),
    b1.. zeros, and with Batch Normalization gamma1.. ones, beta1.. zeros for
    each hidden layer. sizes: (input, hidden..., output)."""
    rng = np.random.default_rng(seed)
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
        params[f"W{i}"] = (
            rng.standard_normal((n_in, n_out)) * np.sqrt(2 / n_in)
        ).astype(dtype)
        params[f"b{i}"] = np.zeros(n_out, dtype)
        if batchnorm and i < len(sizes) - 1:
            params[f"gamma{i}"] = np.ones(n_out, dtype)
            params[f"beta{i}"] = np.zeros(n_out, dtype)
    return params


def layer_count(params: dict) -> int:
    return sum(k.startswith("W") for k in params)


def import_jax():
    """The ``jax`` module (float32, CPU), or None when JAX is not installed."""
    try:
        import jax
    except ImportError:
        return None
    return jax


class TorchNet:
    """Linear (-> BatchNorm1d) -> ReLU per hidden layer, Linear, cross-entropy,
    ``torch.optim.Adam``. x: (N, D) float tensor, t: (N,) int64 labels."""

    def __init__(
        self, torch, params: dict, batchnorm: bool, lr: float = LR, device="cpu"
    ):
        self.torch, self.device = torch, device
        nn = torch.nn
        n = layer_count(params)
        layers = []
        with torch.no_grad():
            for i in range(1, n + 1):
                W = torch.from_numpy(np.ascontiguousarray(params[f"W{i}"]))
                linear = nn.Linear(*W.shape)
                linear.weight.copy_(W.T)
                linear.bias.copy_(torch.from_numpy(params[f"b{i}"]))
                layers.append(linear)
                if i == n:
                    break
                if batchnorm:
                    # PyTorch's momentum is the weight of the new statistic.
                    bn = nn.BatchNorm1d(
                        W.shape[1], eps=BN_EPS, momentum=1 - BN_MOMENTUM
                    )
                    bn.weight.copy_(torch.from_numpy(params[f"gamma{i}"]))
                    bn.bias.copy_(torch.from_numpy(params[f"beta{i}"]))
                    layers.append(bn)
                layers.append(nn.ReLU())
        self.model = nn.Sequential(*layers).to(torch.float32).to(device).train()
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=lr, betas=(BETA1, BETA2), eps=ADAM_EPS
        )

    def loss(self, x, t):
        return self.torch.nn.functional.cross_entropy(self.model(x), t)

    def indices(self, idx: np.ndarray):
        return self.torch.from_numpy(idx).to(self.device)

    def train(self, x, t, rows) -> None:
        for idx in rows:
            self.step(x[idx], t[idx])

    def eval_loss(self, x, t) -> float:
        self.model.eval()
        with self.torch.no_grad():
            loss = float(self.loss(x, t))
        self.model.train()
        return loss

    def sync(self) -> None:
        # Eager CPU PyTorch has returned when each call returns; CUDA queues.
        if self.device != "cpu":
            self.torch.cuda.synchronize()

    def step(self, x, t):
        """Forward, backward, Adam; returns the loss before the update (0-d)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(x, t)
        loss.backward()
        self.optimizer.step()
        return loss.detach()


def jax_loss(jax, params: dict, x, t, batchnorm: bool, running=None):
    """Mean cross-entropy of the network on (x, t), and the batch means and
    variances of each Batch Normalization layer. Training mode normalises by
    the batch's statistics; given ``running`` [(mean, var)] (inference), by
    those."""
    jnp = jax.numpy
    n = sum(k.startswith("W") for k in params)
    stats = []
    h = x
    for i in range(1, n + 1):
        h = h @ params[f"W{i}"] + params[f"b{i}"]
        if i == n:
            break
        if batchnorm:
            if running is None:
                mu = h.mean(axis=0)
                var = ((h - mu) ** 2).mean(axis=0)
            else:
                mu, var = running[i - 1]
            h = (
                params[f"gamma{i}"] * (h - mu) / jnp.sqrt(var + BN_EPS)
                + params[f"beta{i}"]
            )
            stats.append((mu, var))
        h = jnp.maximum(h, 0)
    logp = jax.nn.log_softmax(h, axis=1)
    loss = -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=1))
    return loss, stats


def book_adam(jnp, params, grads, m, v, it, lr=LR, beta1=BETA1, beta2=BETA2):
    """The book's Adam on dicts of arrays (functional): -> params, m, v.

    ``it`` is the step number after this update (1 on the first step)."""
    lr_t = lr * jnp.sqrt(1.0 - beta2**it) / (1.0 - beta1**it)
    m = {k: m[k] + (1 - beta1) * (grads[k] - m[k]) for k in params}
    v = {k: v[k] + (1 - beta2) * (grads[k] ** 2 - v[k]) for k in params}
    new = {k: params[k] - lr_t * m[k] / (jnp.sqrt(v[k]) + ADAM_EPS) for k in params}
    return new, m, v


@functools.lru_cache(maxsize=8)
def jax_step(jax, batchnorm: bool, lr: float = LR):
    """The jitted training step (compiled once per configuration):
    (params, m, v, i, running, x_all, t_all, idx_all) -> the same state after
    step i on rows idx_all[i], and the loss before the update."""
    jnp = jax.numpy

    def step(params, m, v, i, running, x_all, t_all, idx_all):
        idx = idx_all[i]
        x, t = x_all[idx], t_all[idx]
        (loss, stats), grads = jax.value_and_grad(
            lambda p: jax_loss(jax, p, x, t, batchnorm), has_aux=True
        )(params)
        i = i + 1
        params, m, v = book_adam(jnp, params, grads, m, v, i.astype(jnp.float32), lr)
        running = [
            (
                BN_MOMENTUM * rm + (1 - BN_MOMENTUM) * mu,
                BN_MOMENTUM * rv + (1 - BN_MOMENTUM) * var,
            )
            for (rm, rv), (mu, var) in zip(running, stats, strict=True)
        ]
        return params, m, v, i, running, loss

    return jax.jit(step)


class JaxNet:
    """The same network and the book's Adam as one jitted step.

    The step takes the whole training set and all the run's batch indices
    (device arrays) and a step counter, so the gather is compiled with the
    rest and nothing is uploaded per step."""

    def __init__(self, jax, params: dict, batchnorm: bool, lr: float = LR):
        jnp = jax.numpy
        self.jax, self.batchnorm = jax, batchnorm
        self.params = {k: jnp.asarray(v) for k, v in params.items()}
        self.m = {k: jnp.zeros_like(v) for k, v in self.params.items()}
        self.v = {k: jnp.zeros_like(v) for k, v in self.params.items()}
        self.i = jnp.zeros((), jnp.int32)
        hidden = [self.params[f"W{i}"].shape[1] for i in range(1, layer_count(params))]
        self.running = [
            (jnp.zeros(h, jnp.float32), jnp.ones(h, jnp.float32))
            for h in (hidden if batchnorm else [])
        ]
        self._step = jax_step(jax, batchnorm, lr)

    def indices(self, idx: np.ndarray):
        return self.jax.numpy.asarray(idx.astype(np.int32))

    def train(self, x, t, rows) -> None:
        state = (self.params, self.m, self.v, self.i, self.running)
        for _ in range(rows.shape[0]):
            *state, _loss = self._step(*state, x, t, rows)
        self.params, self.m, self.v, self.i, self.running = state

    def eval_loss(self, x, t) -> float:
        running = self.running if self.batchnorm else None
        loss, _ = jax_loss(self.jax, self.params, x, t, self.batchnorm, running)
        return float(loss)

    def sync(self) -> None:
        self.jax.block_until_ready(self.params)


class XpnetNet:
    """xpnet's ``MultiLayerNet`` (``MultiLayerNetExtend(use_batchnorm=True)``
    with Batch Normalization) and ``nn.Adam`` on backend ``be``, float32,
    started from the given host parameters."""

    def __init__(self, be, params: dict, batchnorm: bool, lr: float = LR):
        import nn

        self.be = be
        n = layer_count(params)
        hidden = [params[f"W{i}"].shape[1] for i in range(1, n)]
        sizes = (params["W1"].shape[0], hidden, params[f"W{n}"].shape[1])
        common = dict(activation="relu", weight_init_std="relu", backend=be)
        common.update(dtype="float32", rng=0)
        if batchnorm:
            self.net = nn.MultiLayerNetExtend(*sizes, use_batchnorm=True, **common)
        else:
            self.net = nn.MultiLayerNet(*sizes, **common)
        if set(self.net.params) != set(params):
            raise ValueError(f"xpnet's parameters {sorted(self.net.params)}")
        for key, value in params.items():
            self.net.params[key][...] = be.asarray(value)  # in place: layers share it
        # The update kernels of be (host arrays alone do not say which backend).
        self.optimizer = nn.Adam(lr=lr, backend=be)

    def indices(self, idx: np.ndarray):
        return self.be.asarray(idx)

    def train(self, x, t, rows) -> None:
        net, optimizer = self.net, self.optimizer
        train_step = getattr(net, "train_step", None)
        for idx in rows:
            if train_step is not None:
                train_step(x[idx], t[idx], optimizer)
            else:
                optimizer.update(net.params, net.gradient(x[idx], t[idx]))

    def eval_loss(self, x, t) -> float:
        return float(self.net.loss(x, t))

    def sync(self) -> None:
        self.be.synchronize()
