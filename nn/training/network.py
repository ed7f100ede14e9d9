"""The network and optimizer a [`TrainConfig`][nn.training.config.TrainConfig] asks for.

Chapter 5's run (one hidden layer, SGD, a numeric initial scale, no
regularisation) gets ``TwoLayerNet``, with its fused step; anything from
chapter 6 gets ``MultiLayerNetExtend``. Both draw their initial weights from
the run's generator, in the same order, so one config gives one network.
"""

from __future__ import annotations

from nn.multi_layer_net_extend import MultiLayerNetExtend
from nn.optimizers import make_optimizer
from nn.two_layer_net import TwoLayerNet


def build_network(config, input_size: int, classes: int, backend, rng):
    """A fresh network for ``config`` on ``backend`` (weights from ``rng``)."""
    if config.is_chapter5:
        return TwoLayerNet(
            input_size,
            config.layer_sizes[0],
            classes,
            weight_init_std=config.weight_init_std,
            activation=config.activation,
            backend=backend,
            dtype=config.dtype,
            rng=rng,
        )
    return MultiLayerNetExtend(
        input_size,
        list(config.layer_sizes),
        classes,
        activation=config.activation,
        weight_init_std=config.weight_init_std,
        weight_decay_lambda=config.weight_decay,
        use_dropout=config.dropout > 0,
        dropout_ration=config.dropout or 0.5,
        use_batchnorm=config.batchnorm,
        backend=backend,
        dtype=config.dtype,
        rng=rng,
    )


def build_optimizer(config, backend):
    """The optimizer ``config.optimizer`` at ``config.lr``, stepping on ``backend``."""
    return make_optimizer(config.optimizer, config.lr, backend=backend)


def output_size(params: dict) -> int:
    """Classes of a network's (or checkpoint's) parameters: the last W's width."""
    last = max(int(k[1:]) for k in params if k[:1] == "W" and k[1:].isdigit())
    return int(params[f"W{last}"].shape[-1])


def layer_widths(params: dict) -> list[int]:
    """Input, hidden and output widths, e.g. [784, 100, 100, 10]."""
    count = sum(1 for k in params if k[:1] == "W" and k[1:].isdigit())
    return [int(params["W1"].shape[0])] + [
        int(params[f"W{i}"].shape[1]) for i in range(1, count + 1)
    ]


def describe_network(config) -> str:
    """What the network adds to chapter 5's, e.g. "adam, he, BN, dropout 0.5"."""
    parts = [config.optimizer]
    if config.init_name:
        parts.append(f"init {config.weight_init_std}")
    if config.weight_decay:
        parts.append(f"weight decay {config.weight_decay}")
    if config.batchnorm:
        parts.append("batchnorm")
    if config.dropout:
        parts.append(f"dropout {config.dropout}")
    return ", ".join(parts)
