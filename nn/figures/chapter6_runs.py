"""The book's chapter 6 experiments as functions: training runs that return curves.

Each function trains the book's networks with the book's loop (random
mini-batches drawn on the host, ``train_step`` on the network's backend) and
returns a plain dict of host lists plus ``"seconds"``, the wall time of the
experiment. The plots are in [`nn.figures.chapter6`][nn.figures.chapter6].
Defaults are the book's (``ch06/*.py``); pass smaller counts for a quick look.

Data are host arrays ``x`` (N, 784) float and ``t`` (N,) int labels, as
[`load_data`][nn.training.data.load_data] returns them; they are copied to
``backend`` (default: the current one) once per experiment.
"""

from __future__ import annotations

import time

import numpy as np

import backend as B

__all__ = [
    "OPTIMIZER_NAMES",
    "WEIGHT_INITS",
    "batchnorm_scales",
    "compare_optimizers",
    "compare_weight_inits",
    "overfit",
    "smooth_curve",
]

#: Figure 6-9's optimizers, with the book's default learning rates.
OPTIMIZER_NAMES = ("SGD", "Momentum", "AdaGrad", "Adam")
#: Figure 6-15's initial weight scales: label -> ``weight_init_std``.
WEIGHT_INITS = {"std=0.01": 0.01, "Xavier": "sigmoid", "He": "relu"}


def smooth_curve(x) -> np.ndarray:
    """The book's loss smoothing (``common/util.py``): an 11-point Kaiser
    window (beta 2), reflected at the ends. (N,) -> (N,), N >= 11."""
    x = np.asarray(x, dtype=np.float64)
    window_len = 11
    s = np.r_[x[window_len - 1 : 0 : -1], x, x[-1:-window_len:-1]]
    w = np.kaiser(window_len, 2)
    y = np.convolve(w / w.sum(), s, mode="valid")
    return y[5 : len(y) - 5]


def _setup(x, t, backend, dtype):
    be = B.get_backend(backend) if isinstance(backend, str) else backend
    be = be or B.current()
    return be, be.asarray(np.asarray(x), dtype=dtype), be.asarray(np.asarray(t))


def _make(cls, be):
    """An optimizer with the book's defaults whose update runs on ``be``'s
    kernels (host arrays alone do not say whether NumPy's or Numba's)."""
    try:
        return cls(backend=be)
    except TypeError:  # plain SGD has no kernels of its own
        return cls()


def _losses(be, losses) -> list[float]:
    """0-d device losses -> host floats, in one transfer."""
    if not losses:
        return []
    return [float(v) for v in be.asnumpy(be.xp.stack(losses))]


def compare_optimizers(
    x,
    t,
    optimizers=OPTIMIZER_NAMES,
    iters: int = 2000,
    batch_size: int = 128,
    hidden_size_list=(100, 100, 100, 100),
    *,
    backend=None,
    dtype="float32",
    seed: int = 0,
) -> dict:
    """Figure 6-9: the same 784-100x4-10 ReLU net (He init) trained by each
    optimizer on the same batches. -> ``{"losses": {name: [iters floats]},
    "seconds": s}``. optimizers: names in ``nn.optimizers.OPTIMIZERS`` (any
    case) or ``{label: optimizer}``."""
    import nn
    from nn.optimizers import OPTIMIZERS

    be, xd, td = _setup(x, t, backend, dtype)
    if not isinstance(optimizers, dict):
        lookup = {k.lower(): v for k, v in OPTIMIZERS.items()}
        optimizers = {name: _make(lookup[name.lower()], be) for name in optimizers}
    rows = np.random.default_rng(seed).integers(0, len(xd), (iters, batch_size))
    start = time.perf_counter()
    losses = {}
    for label, optimizer in optimizers.items():
        net = nn.MultiLayerNet(
            xd.shape[1], list(hidden_size_list), 10, backend=be, dtype=dtype, rng=seed
        )
        step = []
        for idx in be.asarray(rows):
            step.append(net.train_step(xd[idx], td[idx], optimizer))
        losses[label] = _losses(be, step)
    return {"losses": losses, "seconds": time.perf_counter() - start}


def compare_weight_inits(
    x,
    t,
    inits=None,
    iters: int = 2000,
    batch_size: int = 128,
    lr: float = 0.01,
    hidden_size_list=(100, 100, 100, 100),
    *,
    backend=None,
    dtype="float32",
    seed: int = 0,
) -> dict:
    """Figure 6-15: the 784-100x4-10 ReLU net from each initial weight scale
    (std 0.01, Xavier, He), SGD(lr). -> ``{"losses": {label: [...]},
    "seconds": s}``. inits: ``{label: weight_init_std}`` (default
    ``WEIGHT_INITS``)."""
    import nn

    be, xd, td = _setup(x, t, backend, dtype)
    rows = np.random.default_rng(seed).integers(0, len(xd), (iters, batch_size))
    start = time.perf_counter()
    losses = {}
    for label, scale in (inits or WEIGHT_INITS).items():
        net = nn.MultiLayerNet(
            xd.shape[1],
            list(hidden_size_list),
            10,
            weight_init_std=scale,
            backend=be,
            dtype=dtype,
            rng=seed,
        )
        optimizer = nn.SGD(lr=lr)
        step = [net.train_step(xd[i], td[i], optimizer) for i in be.asarray(rows)]
        losses[label] = _losses(be, step)
    return {"losses": losses, "seconds": time.perf_counter() - start}


def _epochs(net, optimizer, be, data, epochs, batch_size, rng, evaluate):
    """The book's loop for small training sets: random batches, and
    ``evaluate()`` once per epoch (train_size / batch_size steps), ``epochs``
    times in all. -> list of what evaluate returned."""
    xd, td = data
    n = len(xd)
    per_epoch = max(n // batch_size, 1)
    out = [evaluate()]
    for _ in range(epochs - 1):
        rows = be.asarray(rng.integers(0, n, (per_epoch, batch_size)))
        for idx in rows:
            net.train_step(xd[idx], td[idx], optimizer)
        out.append(evaluate())
    return out


def batchnorm_scales(
    x,
    t,
    scales=None,
    train_size: int = 1000,
    epochs: int = 20,
    batch_size: int = 100,
    lr: float = 0.01,
    hidden_size_list=(100, 100, 100, 100, 100),
    *,
    backend=None,
    dtype="float32",
    seed: int = 0,
) -> dict:
    """Figure 6-19: for each initial weight scale, the 784-100x5-10 net with
    and without Batch Normalization, SGD(lr) on ``train_size`` images.

    -> ``{"scales": [...], "batchnorm": [[epochs accuracies] per scale],
    "plain": [...], "seconds": s}`` (training accuracy, once per epoch).
    scales: default the book's 16 values from 1 down to 1e-4.
    """
    import nn

    scales = list(np.logspace(0, -4, num=16) if scales is None else scales)
    be, xd, td = _setup(x[:train_size], t[:train_size], backend, dtype)
    start = time.perf_counter()
    out = {"scales": [float(s) for s in scales], "batchnorm": [], "plain": []}
    for k, scale in enumerate(scales):
        for key, use_bn in (("batchnorm", True), ("plain", False)):
            net = nn.MultiLayerNetExtend(
                xd.shape[1],
                list(hidden_size_list),
                10,
                weight_init_std=float(scale),
                use_batchnorm=use_bn,
                backend=be,
                dtype=dtype,
                rng=seed,
            )
            rng = np.random.default_rng(seed + k)
            curve = _epochs(
                net,
                nn.SGD(lr=lr),
                be,
                (xd, td),
                epochs,
                batch_size,
                rng,
                lambda net=net: net.accuracy(xd, td),
            )
            out[key].append(curve)
    out["seconds"] = time.perf_counter() - start
    return out


def overfit(
    train,
    test,
    train_size: int = 300,
    epochs: int = 201,
    weight_decay_lambda: float = 0,
    dropout_ratio: float = 0,
    lr: float = 0.01,
    batch_size: int = 100,
    hidden_size_list=(100, 100, 100, 100, 100, 100),
    *,
    backend=None,
    dtype="float32",
    seed: int = 0,
) -> dict:
    """Figures 6-20, 6-21 and 6-23: the 784-100x6-10 net on only
    ``train_size`` training images, SGD(lr), optionally with weight decay
    (``weight_decay_lambda``) or Dropout (``dropout_ratio`` > 0).

    train, test: ``(x, t)`` host pairs. -> ``{"train_acc": [...],
    "test_acc": [...], "seconds": s}``, one accuracy pair per epoch
    (train_size / batch_size steps).
    """
    import nn

    be, xd, td = _setup(*(a[:train_size] for a in train), backend, dtype)
    _, xt, tt = _setup(*test, be, dtype)
    start = time.perf_counter()
    net = nn.MultiLayerNetExtend(
        xd.shape[1],
        list(hidden_size_list),
        10,
        weight_decay_lambda=weight_decay_lambda,
        use_dropout=dropout_ratio > 0,
        dropout_ration=dropout_ratio or 0.5,
        backend=be,
        dtype=dtype,
        rng=seed,
    )
    rng = np.random.default_rng(seed)
    pairs = _epochs(
        net,
        nn.SGD(lr=lr),
        be,
        (xd, td),
        epochs,
        batch_size,
        rng,
        lambda: (net.accuracy(xd, td), net.accuracy(xt, tt)),
    )
    return {
        "train_acc": [p[0] for p in pairs],
        "test_acc": [p[1] for p in pairs],
        "seconds": time.perf_counter() - start,
    }
