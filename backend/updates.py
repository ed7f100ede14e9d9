"""Generic kernels of chapter 6's optimizers and layers, written once against ``xp``.

The [`Backend`][backend.base.Backend] methods of the same names call these;
a backend with compiled or fused versions overrides the methods. Each update
rule is the book's, in the book's order of operations, applied in place to
every array of a list (the parameters and the optimizer's state arrays), so
the layers that hold references to the parameters see the new values.
Scalars are Python floats: NumPy's and CuPy's promotion rules then keep
float32 arrays float32.
"""

from __future__ import annotations

from backend.constants import BN_EPS, OPT_EPS


def momentum_update(xp, params, grads, vs, lr, momentum):
    """v = momentum * v - lr * g; p += v."""
    for p, g, v in zip(params, grads, vs, strict=True):
        v *= momentum
        v -= lr * g
        p += v


def nesterov_update(xp, params, grads, vs, lr, momentum):
    """The book's Nesterov form: v = momentum * v - lr * g;
    p += momentum**2 * v; p -= (1 + momentum) * lr * g."""
    for p, g, v in zip(params, grads, vs, strict=True):
        v *= momentum
        v -= lr * g
        p += momentum * momentum * v
        p -= (1 + momentum) * lr * g


def adagrad_update(xp, params, grads, hs, lr):
    """h += g * g; p -= lr * g / (sqrt(h) + 1e-7)."""
    for p, g, h in zip(params, grads, hs, strict=True):
        h += g * g
        p -= lr * g / (xp.sqrt(h) + OPT_EPS)


def rmsprop_update(xp, params, grads, hs, lr, decay_rate):
    """h = decay_rate * h + (1 - decay_rate) * g * g; p -= lr * g / (sqrt(h) + 1e-7)."""
    for p, g, h in zip(params, grads, hs, strict=True):
        h *= decay_rate
        h += (1 - decay_rate) * g * g
        p -= lr * g / (xp.sqrt(h) + OPT_EPS)


def adam_update(xp, params, grads, ms, vs, lr_t, beta1, beta2):
    """The book's Adam with the bias correction folded into ``lr_t``:
    m += (1 - beta1) * (g - m); v += (1 - beta2) * (g**2 - v);
    p -= lr_t * m / (sqrt(v) + 1e-7)."""
    for p, g, m, v in zip(params, grads, ms, vs, strict=True):
        m += (1 - beta1) * (g - m)
        v += (1 - beta2) * (g**2 - v)
        p -= lr_t * m / (xp.sqrt(v) + OPT_EPS)


def batchnorm_forward(xp, x, gamma, beta):
    """The book's training-mode forward over the batch axis.

    x: (N, D); gamma, beta: (D,). -> (out, xc, xn, std, mu, var), each (N, D)
    or (D,): out = gamma * xn + beta with xn = (x - mu) / sqrt(var + 10e-7).
    """
    mu = x.mean(axis=0)
    xc = x - mu
    var = xp.mean(xc**2, axis=0)
    std = xp.sqrt(var + BN_EPS)
    xn = xc / std
    return gamma * xn + beta, xc, xn, std, mu, var


def batchnorm_backward(xp, dout, gamma, xc, xn, std):
    """The book's backward of [`batchnorm_forward`][backend.updates.batchnorm_forward].

    dout: (N, D) -> (dx (N, D), dgamma (D,), dbeta (D,)).
    """
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = xp.sum(xn * dout, axis=0)
    dxn = gamma * dout
    dxc = dxn / std
    dstd = -xp.sum((dxn * xc) / (std * std), axis=0)
    dvar = 0.5 * dstd / std
    dxc += (2.0 / n) * xc * dvar
    dmu = xp.sum(dxc, axis=0)
    dx = dxc - dmu / n
    return dx, dgamma, dbeta


_GOLDEN = 0x9E3779B9
_MASK32 = 0xFFFFFFFF


def _splitmix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def dropout_keys(seed: int, counter: int) -> tuple[int, int, int]:
    """Three 32-bit keys of call ``counter`` of the stream ``seed`` (host ints)."""
    z = _splitmix64(_splitmix64(seed & 0xFFFFFFFFFFFFFFFF) ^ counter)
    w = _splitmix64(z)
    return z & _MASK32, z >> 32, w & _MASK32


def keep_threshold(ratio: float) -> int:
    """The uint32 a hash must reach for its element to be kept: P = 1 - ratio."""
    return min(int(ratio * 2**32), _MASK32)


def _mix32(xp, h):
    # The "lowbias32" integer hash (Chris Wellons): a bijection of uint32 with
    # near-ideal avalanche; uint32 array arithmetic wraps in NumPy and CuPy alike.
    # h // 2**k is h >> k, written so for array modules without shifts.
    h ^= h // xp.uint32(1 << 16)
    h *= xp.uint32(0x7FEB352D)
    h ^= h // xp.uint32(1 << 15)
    h *= xp.uint32(0x846CA68B)
    h ^= h // xp.uint32(1 << 16)
    return h


def dropout_mask(xp, shape, ratio, seed, counter):
    """Dropout's keep-mask: bool of ``shape``, True with probability 1 - ratio.

    Element i of call ``counter`` keeps iff hash(i, keys(seed, counter)) >=
    ratio * 2**32, computed in uint32 on the arrays' device: the same mask on
    every backend, no host draw and no copy, and the generator's whole state
    is the two integers ``(seed, counter)``.
    """
    k0, k1, k2 = dropout_keys(seed, counter)
    size = 1
    for s in shape:
        size *= s
    h = xp.arange(size, dtype=xp.uint32)
    h *= xp.uint32(_GOLDEN)
    h ^= xp.uint32(k0)
    h = _mix32(xp, h)
    h ^= xp.uint32(k1)
    h = _mix32(xp, h)
    h += xp.uint32(k2)
    h = _mix32(xp, h)
    return (h >= xp.uint32(keep_threshold(ratio))).reshape(shape)
