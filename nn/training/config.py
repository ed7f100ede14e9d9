"""The settings of a training run, with the book's chapter 5 values as defaults."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields

ACTIVATIONS = ("relu", "sigmoid")
GRAD_METHODS = ("backprop", "numerical")
DTYPES = ("float32", "float64")
#: Optimizer names (``nn.optimizers.OPTIMIZERS``) and the learning rate each
#: gets unless one is given: the book's defaults, except SGD's chapter 5 rate.
OPTIMIZER_LR = {
    "sgd": 0.1,
    "momentum": 0.01,
    "nesterov": 0.01,
    "adagrad": 0.01,
    "rmsprop": 0.01,
    "adam": 0.001,
}
#: Named weight initialisations: He (sqrt(2/n)) and Xavier (sqrt(1/n)).
WEIGHT_INITS = ("he", "xavier", "relu", "sigmoid")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run: the network, the optimizer, the schedule.

    The defaults are chapter 5's run (784-50-10, ReLU, 10000 iterations of
    batch 100 at lr 0.1, evaluated once an epoch) except ``dtype``: float32
    for speed, where the library's default is the book's float64. That run
    trains ``TwoLayerNet``; chapter 6's settings (several hidden layers,
    another optimizer, a named initialisation, weight decay, Dropout, Batch
    Normalization) train ``MultiLayerNetExtend``.

    Parameters
    ----------
    hidden_size : int
        Width of the hidden layer.
    activation : {"relu", "sigmoid"}
        Chapter 5's ReLU or chapter 4's sigmoid.
    iters : int
        Number of SGD steps; ignored when ``epochs`` is set.
    epochs : int, optional
        Train for this many epochs of ``train_size // batch_size`` steps.
    batch_size : int
        Samples per step, drawn with replacement as the book's
        ``np.random.choice(train_size, batch_size)``.
    lr : float, optional
        Learning rate; None: 0.1 for SGD (chapter 5's run), else the book's
        default of the optimizer (Adam 0.001, the others 0.01).
    grad : {"backprop", "numerical"}
        Chapter 5's backpropagation or chapter 4's numerical gradient.
    dtype : {"float32", "float64"}
        Dtype of weights and data.
    seed : int, optional
        Seeds weight init and batch sampling; ``None`` draws one (recorded).
    eval_every : int, optional
        Steps between evaluations; ``None`` is one epoch, as the book.
    weight_init_std : float or {"he", "xavier", "relu", "sigmoid"}, optional
        Scale of the initial weights, or He's sqrt(2/n) ("he" = "relu") or
        Xavier's sqrt(1/n) ("xavier" = "sigmoid"); None: 0.01 (chapter 5) for
        one hidden layer, "he" (the book's MultiLayerNet) for more.
    hidden_sizes : tuple of int, optional
        Width of each hidden layer; None: ``(hidden_size,)``.
    optimizer : {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"}
    weight_decay : float
        L2 weight decay lambda (0: off).
    dropout : float
        Dropout ratio after each hidden activation, in [0, 1) (0: off).
    batchnorm : bool
        Batch Normalization before each hidden activation.
    """

    hidden_size: int = 50
    activation: str = "relu"
    iters: int = 10000
    epochs: int | None = None
    batch_size: int = 100
    lr: float | None = None
    grad: str = "backprop"
    dtype: str = "float32"
    seed: int | None = None
    eval_every: int | None = None
    weight_init_std: float | str | None = None
    hidden_sizes: tuple[int, ...] | None = None
    optimizer: str = "sgd"
    weight_decay: float = 0.0
    dropout: float = 0.0
    batchnorm: bool = False

    def __post_init__(self):
        self._resolve_chapter6()
        for name in ("hidden_size", "iters", "batch_size"):
            _check_positive_int(name, getattr(self, name))
        for name in ("epochs", "eval_every"):
            if getattr(self, name) is not None:
                _check_positive_int(name, getattr(self, name))
        if self.seed is not None and (not _is_int(self.seed) or self.seed < 0):
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        for name in ("lr",) + (() if self.init_name else ("weight_init_std",)):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name, valid in (
            ("activation", ACTIVATIONS),
            ("grad", GRAD_METHODS),
            ("dtype", DTYPES),
        ):
            if getattr(self, name) not in valid:
                raise ValueError(
                    f"{name} must be one of {', '.join(valid)}, "
                    f"got {getattr(self, name)!r}"
                )

    def _resolve_chapter6(self) -> None:
        """Check chapter 6's fields and fill in the defaults that depend on others."""
        set_ = object.__setattr__  # frozen: resolved once, here
        if self.hidden_sizes is not None:
            sizes = self.hidden_sizes
            if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
                raise ValueError(
                    f"hidden_sizes must be a list of layer widths such as "
                    f"(100, 100), got {sizes!r}"
                )
            sizes = tuple(sizes)
            if not sizes:
                raise ValueError("hidden_sizes is empty; give at least one width")
            for size in sizes:
                _check_positive_int("hidden layer width", size)
            set_(self, "hidden_sizes", tuple(int(s) for s in sizes))
        if self.optimizer not in OPTIMIZER_LR:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZER_LR)}, "
                f"got {self.optimizer!r}"
            )
        if self.lr is None:
            set_(self, "lr", OPTIMIZER_LR[self.optimizer])
        if self.weight_init_std is None:
            set_(self, "weight_init_std", 0.01 if len(self.layer_sizes) == 1 else "he")
        if isinstance(self.weight_init_std, str):
            key = self.weight_init_std.lower()
            if key not in WEIGHT_INITS:
                raise ValueError(
                    f"weight_init_std must be a positive number or one of "
                    f"{', '.join(WEIGHT_INITS)}, got {self.weight_init_std!r}"
                )
            set_(self, "weight_init_std", key)
        for name, low, high in (("weight_decay", 0, math.inf), ("dropout", 0, 1)):
            value = getattr(self, name)
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and low <= value < high):
                where = (
                    ">= 0 (0 is off)" if high == math.inf else "in [0, 1) (0 is off)"
                )
                raise ValueError(f"{name} must be a number {where}, got {value!r}")
            set_(self, name, float(value))
        if not isinstance(self.batchnorm, bool):
            raise ValueError(f"batchnorm must be True or False, got {self.batchnorm!r}")
        if self.batchnorm and self.batch_size == 1:
            raise ValueError(
                "batchnorm needs a batch size of 2 or more (the variance of one "
                "sample is 0); raise batch_size"
            )

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """The hidden layers' widths: ``hidden_sizes``, else ``(hidden_size,)``."""
        return self.hidden_sizes or (self.hidden_size,)

    @property
    def init_name(self) -> bool:
        """Whether ``weight_init_std`` names an initialisation ("he", ...)."""
        return isinstance(self.weight_init_std, str)

    @property
    def is_chapter5(self) -> bool:
        """True when the run is chapter 5's network and rule: one hidden layer,
        SGD, a numeric initial scale, no weight decay, Dropout or Batch
        Normalization (the trainer then builds ``TwoLayerNet``, fused step
        and all)."""
        return (
            len(self.layer_sizes) == 1
            and self.optimizer == "sgd"
            and not self.init_name
            and not self.weight_decay
            and not self.dropout
            and not self.batchnorm
        )

    def to_dict(self) -> dict:
        """A JSON-friendly dict (what checkpoints store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """The config stored by :meth:`to_dict`; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        if data.get("hidden_sizes") is not None:  # JSON gives a list
            data["hidden_sizes"] = tuple(data["hidden_sizes"])
        return cls(**data)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_positive_int(name: str, value) -> None:
    # Above 2**63 - 1 NumPy cannot even describe an array of that size.
    if not _is_int(value) or not 1 <= value < 2**63:
        raise ValueError(
            f"{name} must be a positive integer below 2**63, got {value!r}"
        )
