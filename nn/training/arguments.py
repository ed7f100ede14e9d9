"""``xpnet-train``'s flags: the parser, its checks and the errors it reports.

Every bad flag is one line ``<prog>: error: ...`` with exit code 2 (see
:mod:`nn.training.cli`, which runs the parsed arguments).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from nn.training.config import (
    ACTIVATIONS,
    DTYPES,
    GRAD_METHODS,
    OPTIMIZER_LR,
    WEIGHT_INITS,
    TrainConfig,
)

#: The program name in messages when none is given (the console script).
PROG = "xpnet-train"
DEVICES = ("auto", "cpu", "numba", "cuda", "numpy", "cupy")
DATASETS = ("mnist", "fashion-mnist")
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
#: Flags that must agree with the checkpoint being resumed: (flag, config key).
RUN_FLAGS = (
    ("--hidden-size", "hidden_size"),
    ("--activation", "activation"),
    ("--batch-size", "batch_size"),
    ("--lr", "lr"),
    ("--grad", "grad"),
    ("--dtype", "dtype"),
    ("--seed", "seed"),
    ("--eval-every", "eval_every"),
    ("--hidden-sizes", "hidden_sizes"),
    ("--optimizer", "optimizer"),
    ("--weight-init", "weight_init_std"),
    ("--weight-decay", "weight_decay"),
    ("--dropout", "dropout"),
    ("--batchnorm", "batchnorm"),
)


class UsageError(Exception):
    """A bad flag or path: reported in one line with exit code 2."""


class RunFailed(Exception):
    """The run could not start or finish: reported in one line with exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _checked(parse, kind: str, valid, requirement: str):
    """An argparse ``type``: ``parse`` the text, then require ``valid(value)``."""

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value

    return convert


_positive_int = _checked(int, "an integer", lambda v: v >= 1, "at least 1")
_seed = _checked(int, "an integer", lambda v: v >= 0, "non-negative")
_positive_float = _checked(
    float, "a number", lambda v: math.isfinite(v) and v > 0, "a positive number"
)


_non_negative_float = _checked(
    float, "a number", lambda v: math.isfinite(v) and v >= 0, "a number >= 0"
)
_ratio = _checked(float, "a number", lambda v: 0 <= v < 1, "a number in [0, 1)")


def _hidden_sizes(text: str) -> tuple[int, ...]:
    """``"100,100,100"`` -> (100, 100, 100)."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of widths such as 100,100"
        ) from None
    if not all(s >= 1 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"every hidden layer width must be at least 1, got {text}"
        )
    return sizes


def _weight_init(text: str):
    """A positive number, or he/xavier/relu/sigmoid."""
    if text.lower() in WEIGHT_INITS:
        return text.lower()
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a number nor one of {', '.join(WEIGHT_INITS)}"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    d = TrainConfig()
    p = _Parser(
        prog=prog,
        description="Train a network as in chapters 4 to 6 of 'Deep Learning from "
        "Scratch'. The defaults reproduce chapter 5's run (TwoLayerNet 784-50-10 "
        "ReLU, SGD, 10000 iterations, batch 100, lr 0.1, evaluated every epoch) "
        "with --device auto and --dtype float32; chapter 6's flags (--hidden-sizes, "
        "--optimizer, --weight-init, --weight-decay, --dropout, --batchnorm) "
        "train MultiLayerNetExtend.",
    )
    a = p.add_argument
    a(
        "--device",
        choices=DEVICES,
        default="auto",
        help="cpu/numpy = NumPy, numba = Numba-jitted CPU, cuda/cupy = CuPy on a GPU; "
        "auto picks CUDA if usable, else Numba if installed, else NumPy "
        "(default: auto)",
    )
    a("--dataset", choices=DATASETS, default=None, help="default: mnist")
    a(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder holding the dataset's IDX .gz files (default: $XPNET_DATA_DIR, "
        "the user cache, else a download)",
    )
    widths = p.add_mutually_exclusive_group()
    widths.add_argument(
        "--hidden-size",
        type=_positive_int,
        metavar="N",
        help=f"hidden layer width (default: {d.hidden_size})",
    )
    widths.add_argument(
        "--hidden-sizes",
        type=_hidden_sizes,
        metavar="N,N,...",
        help="widths of several hidden layers, e.g. 100,100,100,100 (chapter 6)",
    )
    a("--activation", choices=ACTIVATIONS, help=f"default: {d.activation}")
    length = p.add_mutually_exclusive_group()
    length.add_argument(
        "--iters",
        type=_positive_int,
        metavar="N",
        help=f"SGD steps in total (default: {d.iters})",
    )
    length.add_argument(
        "--epochs",
        type=_positive_int,
        metavar="N",
        help="train for N epochs instead of --iters",
    )
    a(
        "--batch-size",
        type=_positive_int,
        metavar="N",
        help=f"samples per step (default: {d.batch_size})",
    )
    a(
        "--optimizer",
        choices=tuple(OPTIMIZER_LR),
        help=f"update rule (default: {d.optimizer})",
    )
    a(
        "--lr",
        type=_positive_float,
        help="learning rate (default: 0.1) with sgd, as chapter 5; with another "
        "--optimizer the book's default: adam 0.001, the others 0.01",
    )
    a(
        "--weight-init",
        dest="weight_init_std",
        type=_weight_init,
        metavar="{NUMBER,he,xavier}",
        help="initial weight scale, or he (sqrt(2/n)) or xavier (sqrt(1/n)) "
        "(default: 0.01 with one hidden layer, he with several)",
    )
    a(
        "--weight-decay",
        type=_non_negative_float,
        metavar="LAMBDA",
        help="L2 weight decay lambda (default: 0, off)",
    )
    a(
        "--dropout",
        type=_ratio,
        metavar="RATIO",
        help="dropout ratio after each hidden layer, in [0, 1) (default: 0, off)",
    )
    a(
        "--batchnorm",
        action="store_true",
        default=None,
        help="Batch Normalization before each hidden activation",
    )
    a(
        "--grad",
        choices=GRAD_METHODS,
        help="backprop (chapter 5) or numerical (chapter 4: slow but real) "
        f"(default: {d.grad})",
    )
    a("--dtype", choices=DTYPES, help=f"default: {d.dtype}")
    a(
        "--seed",
        type=_seed,
        help="seed of weights and batches (default: random, printed and saved)",
    )
    a(
        "--eval-every",
        type=_positive_int,
        metavar="N",
        help="steps between accuracy evaluations and checkpoints "
        "(default: one epoch, train_size // batch_size)",
    )
    a(
        "--out",
        type=Path,
        metavar="DIR",
        help="run directory for metrics.csv, checkpoint.npz, loss.png, accuracy.png "
        "(default: runs/<dataset>-<time>; with --resume: the resumed run's)",
    )
    a(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="RUN",
        help="continue the run in RUN (its directory or checkpoint.npz; without RUN, "
        "the one in --out); --iters/--epochs may extend it",
    )
    a("--quiet", action="store_true", help="print only errors and the final summary")
    return p
