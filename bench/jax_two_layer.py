"""The same 784-50-10 ReLU network and SGD step in JAX, as a JAX user writes it.

Optional: JAX is never a dependency of xpnet; `import_jax` returns None
without it. Two ways to train, both jitted: `JaxTwoLayerNet.step` (one
call per step, as a loop in Python) and `JaxTwoLayerNet.steps` (a block
of steps as one ``lax.scan``: one call per epoch). Initialised like the book
(N(0, 0.01^2) weights, zero biases) so the work per step is the same.
"""

from __future__ import annotations

import functools

import numpy as np


def import_jax():
    """The ``jax`` module, or None when JAX is not installed."""
    try:
        import jax
    except ImportError:
        return None
    return jax


class JaxTwoLayerNet:
    """Dense -> ReLU -> Dense, softmax cross-entropy, plain SGD, float32.

    x: (N, input_size) float32 and t: (N,) int32 labels, on ``device`` (a
    ``jax.Device``); the parameters are a dict of device arrays, replaced (JAX
    arrays are immutable) by each step.
    """

    def __init__(
        self, jax, input_size, hidden_size, output_size, lr=0.1, seed=0, device=None
    ):
        self.jax, self.device, self.lr = jax, device, lr
        rng = np.random.default_rng(seed)
        host = {
            "W1": 0.01 * rng.standard_normal((input_size, hidden_size)),
            "b1": np.zeros(hidden_size),
            "W2": 0.01 * rng.standard_normal((hidden_size, output_size)),
            "b2": np.zeros(output_size),
        }
        self.params = {k: self.put(v.astype(np.float32)) for k, v in host.items()}
        self._step = jax.jit(functools.partial(_gather_sgd, jax, lr))
        self._scan = jax.jit(functools.partial(_scan, jax, lr))
        self._correct = jax.jit(functools.partial(_correct, jax))

    def put(self, array):
        """A host array on this network's device."""
        return self.jax.device_put(array, self.device)

    def step(self, x, t, idx):
        """One SGD step on the batch ``x[idx]`` (gathered inside the jitted
        function); idx: (batch,) int32. Returns the loss before the update."""
        self.params, loss = self._step(self.params, x, t, idx)
        return loss

    def steps(self, x, t, indices):
        """``len(indices)`` SGD steps as one ``lax.scan``: step i trains on
        ``x[indices[i]]``; indices: (steps, batch) int32 on the device.
        Returns the losses, (steps,)."""
        self.params, losses = self._scan(self.params, x, t, indices)
        return losses

    def count_correct(self, x, t):
        """Correct predictions, a 0-d device array (no host wait)."""
        return self._correct(self.params, x, t)


def _loss(jax, params, x, t):
    h = jax.nn.relu(x @ params["W1"] + params["b1"])
    y = h @ params["W2"] + params["b2"]
    logp = jax.nn.log_softmax(y, axis=1)
    return -jax.numpy.take_along_axis(logp, t[:, None], axis=1).mean()


def _gather_sgd(jax, lr, params, x, t, idx):
    return _sgd(jax, lr, params, x[idx], t[idx])


def _sgd(jax, lr, params, x, t):
    loss, grads = jax.value_and_grad(functools.partial(_loss, jax))(params, x, t)
    params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
    return params, loss


def _scan(jax, lr, params, x, t, indices):
    def body(p, idx):
        return _gather_sgd(jax, lr, p, x, t, idx)

    return jax.lax.scan(body, params, indices)


def _correct(jax, params, x, t):
    h = jax.nn.relu(x @ params["W1"] + params["b1"])
    y = h @ params["W2"] + params["b2"]
    return (y.argmax(axis=1) == t).sum()
