"""Chapter 6's network of any depth with Dropout and Batch Normalization."""

from __future__ import annotations

from nn.layers import check_dropout_ratio
from nn.multi_layer_net import MultiLayerNet


class MultiLayerNetExtend(MultiLayerNet):
    """[`MultiLayerNet`][nn.multi_layer_net.MultiLayerNet] with, per hidden
    layer, Affine -> BatchNorm -> activation -> Dropout (each optional).

    ``use_batchnorm`` adds ``gamma1``, ``beta1``, ... (ones and zeros, (h,))
    to ``params``; ``use_dropout`` drops units with probability
    ``dropout_ration`` (the book's spelling) in training. The dropout masks'
    seed is drawn from ``rng`` after the weights. Other arguments as for
    ``MultiLayerNet``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size_list,
        output_size: int,
        activation: str = "relu",
        weight_init_std="relu",
        weight_decay_lambda: float = 0,
        use_dropout: bool = False,
        dropout_ration: float = 0.5,
        use_batchnorm: bool = False,
        *,
        backend=None,
        dtype=None,
        rng=None,
    ):
        self.use_dropout = bool(use_dropout)
        self.dropout_ration = check_dropout_ratio(dropout_ration)
        self.use_batchnorm = bool(use_batchnorm)
        self._setup(
            input_size,
            hidden_size_list,
            output_size,
            activation,
            weight_init_std,
            weight_decay_lambda,
            backend,
            dtype,
            rng,
        )
