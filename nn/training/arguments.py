"""``xpnet-train``'s flags: the parser, its checks and the errors it reports.

Every bad flag is one line ``<prog>: error: ...`` with exit code 2 (see
`nn.training.cli`, which runs the parsed arguments).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from nn.training.config import ACTIVATIONS, DTYPES, GRAD_METHODS, TrainConfig

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


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    d = TrainConfig()
    p = _Parser(
        prog=prog,
        description="Train TwoLayerNet by mini-batch SGD as in chapters 4 and 5 of "
        "'Deep Learning from Scratch'. The defaults reproduce chapter 5's run "
        "(784-50-10 ReLU, 10000 iterations, batch 100, lr 0.1, evaluated every "
        "epoch) with --device auto and --dtype float32.",
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
    a(
        "--hidden-size",
        type=_positive_int,
        metavar="N",
        help=f"hidden layer width (default: {d.hidden_size})",
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
    a("--lr", type=_positive_float, help=f"learning rate (default: {d.lr})")
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
    a(
        "--allow-not-learning",
        action="store_true",
        help="warn once and go on instead of stopping (exit 1) when the network is "
        "not learning: accuracy at chance after the first epoch, a loss pinned "
        "at its maximum, or every ReLU dead (a NaN or inf loss always stops)",
    )
    a("--quiet", action="store_true", help="print only errors and the final summary")
    return p
