"""xpnet's neural-network library: chapters 3 to 6 of "Deep Learning from Scratch".

Everything is written against the ``backend`` shim, so it runs on NumPy,
Numba or CuPy arrays alike.
"""

from nn.data.book_weights import WeightsError
from nn.data.idx import IdxFormatError, read_idx
from nn.data.mnist import (
    DatasetError,
    DatasetFormatError,
    DatasetNotFoundError,
    load_mnist,
    load_mnist_split,
)
from nn.data.safe_pickle import UnsafePickleError, load_array_dict
from nn.functions import (
    cross_entropy_error,
    identity_function,
    mean_squared_error,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_loss,
    step_function,
)
from nn.gradient import (
    gradient_check,
    gradient_descent,
    numerical_diff,
    numerical_gradient,
)
from nn.layers import (
    AddLayer,
    Affine,
    BatchNormalization,
    Dropout,
    MulLayer,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)
from nn.multi_layer_net import MultiLayerNet
from nn.multi_layer_net_extend import MultiLayerNetExtend
from nn.optimizer import SGD
from nn.optimizers import OPTIMIZERS, AdaGrad, Adam, Momentum, Nesterov, RMSprop
from nn.simple_net import SimpleNet
from nn.three_layer_net import ThreeLayerNet
from nn.training import TrainConfig, Trainer, TrainingDiverged, load_data
from nn.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from nn.two_layer_net import TwoLayerNet

__all__ = [
    "CheckpointError",
    "TrainConfig",
    "Trainer",
    "load_data",
    "TrainingDiverged",
    "load_checkpoint",
    "save_checkpoint",
    "DatasetError",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "IdxFormatError",
    "ThreeLayerNet",
    "UnsafePickleError",
    "WeightsError",
    "load_array_dict",
    "load_mnist",
    "load_mnist_split",
    "read_idx",
    "SGD",
    "Momentum",
    "Nesterov",
    "AdaGrad",
    "RMSprop",
    "Adam",
    "OPTIMIZERS",
    "BatchNormalization",
    "Dropout",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "AddLayer",
    "Affine",
    "MulLayer",
    "Relu",
    "Sigmoid",
    "SimpleNet",
    "SoftmaxWithLoss",
    "TwoLayerNet",
    "cross_entropy_error",
    "gradient_check",
    "gradient_descent",
    "identity_function",
    "mean_squared_error",
    "numerical_diff",
    "numerical_gradient",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_loss",
    "step_function",
]
