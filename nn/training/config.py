"""The settings of a training run, with the book's chapter 5 values as defaults."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields

ACTIVATIONS = ("relu", "sigmoid")
GRAD_METHODS = ("backprop", "numerical")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of mini-batch SGD on ``TwoLayerNet``.

    The defaults are chapter 5's run (784-50-10, ReLU, 10000 iterations of
    batch 100 at lr 0.1, evaluated once an epoch) except ``dtype``: float32
    for speed, where the library's default is the book's float64.

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
    lr : float
        Learning rate.
    grad : {"backprop", "numerical"}
        Chapter 5's backpropagation or chapter 4's numerical gradient.
    dtype : {"float32", "float64"}
        Dtype of weights and data.
    seed : int, optional
        Seeds weight init and batch sampling; ``None`` draws one (recorded).
    eval_every : int, optional
        Steps between evaluations; ``None`` is one epoch, as the book.
    weight_init_std : float
        Scale of the initial weights.
    allow_not_learning : bool
        Warn once and go on, instead of stopping, when the run is not learning
        (accuracy at chance, a pinned loss, every ReLU dead; see
        [`nn.training.health`][]). A NaN or inf loss always stops.
    """

    hidden_size: int = 50
    activation: str = "relu"
    iters: int = 10000
    epochs: int | None = None
    batch_size: int = 100
    lr: float = 0.1
    grad: str = "backprop"
    dtype: str = "float32"
    seed: int | None = None
    eval_every: int | None = None
    weight_init_std: float = 0.01
    allow_not_learning: bool = False

    def __post_init__(self):
        for name in ("hidden_size", "iters", "batch_size"):
            _check_positive_int(name, getattr(self, name))
        for name in ("epochs", "eval_every"):
            if getattr(self, name) is not None:
                _check_positive_int(name, getattr(self, name))
        if self.seed is not None and (not _is_int(self.seed) or self.seed < 0):
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.allow_not_learning, bool):
            raise ValueError(
                "allow_not_learning must be True or False, got "
                f"{self.allow_not_learning!r}"
            )
        for name in ("lr", "weight_init_std"):
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

    def to_dict(self) -> dict:
        """A JSON-friendly dict (what checkpoints store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """The config stored by [`to_dict`][nn.TrainConfig.to_dict]; unknown keys are
        ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_positive_int(name: str, value) -> None:
    # Above 2**63 - 1 NumPy cannot even describe an array of that size.
    if not _is_int(value) or not 1 <= value < 2**63:
        raise ValueError(
            f"{name} must be a positive integer below 2**63, got {value!r}"
        )
