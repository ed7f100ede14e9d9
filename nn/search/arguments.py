"""``xpnet-search``'s flags: the parser, its checks and the settings they make.

Every bad flag is one line ``<prog>: error: ...`` with exit code 2 (see
``nn.search.cli``, which runs the parsed arguments).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from nn.search.settings import SearchSettings
from nn.search.space import (
    DEFAULT_SPACE,
    OPTIMIZERS,
    SpaceError,
    parse_space,
    space_text,
)
from nn.search.study import PRUNERS, SAMPLERS

PROG = "xpnet-search"
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class UsageError(Exception):
    """A bad flag, storage or study: one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _typed(parse, requirement: str, valid=lambda v: True):
    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be {requirement}, got {text!r}"
            ) from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value

    return convert


_count = _typed(int, "at least 1 (e.g. 2)", lambda v: v >= 1)
_seed = _typed(int, "a non-negative integer", lambda v: v >= 0)
_positive = _typed(float, "a positive number", lambda v: math.isfinite(v) and v > 0)
_nonneg = _typed(float, "a number >= 0", lambda v: math.isfinite(v) and v >= 0)
_fraction = _typed(float, "a fraction in (0, 1), e.g. 0.2", lambda v: 0 < v < 1)
_dropout = _typed(float, "a ratio in [0, 1)", lambda v: 0 <= v < 1)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"must be positive widths separated by commas (e.g. 100,100), got {text!r}"
        )
    return sizes


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    d = SearchSettings(space=DEFAULT_SPACE, storage="")
    p = _Parser(
        prog=prog,
        description="Search hyper-parameters as section 6.5 of 'Deep Learning from "
        "Scratch' does, on Optuna: the defaults sample the learning rate in "
        "10^[-6,-2] and the weight decay in 10^[-8,-4] for 100 trials of 50 epochs "
        "of the 784-100x6-10 network on 500 training images, 20% of them held out "
        "for validation (never the test set).",
    )
    a = p.add_argument
    a(
        "--trials",
        type=_count,
        default=d.trials,
        help="finished trials to reach (default: %(default)s)",
    )
    a(
        "--space",
        default=DEFAULT_SPACE,
        help="what to search: NAME=LOW:HIGH[:log][:int] or NAME=A|B, comma-separated "
        "(default: %(default)s)",
    )
    a(
        "--sampler",
        choices=SAMPLERS,
        default=d.sampler,
        help="default: %(default)s (the book's)",
    )
    a(
        "--prune",
        nargs="?",
        const="median",
        choices=PRUNERS,
        default=None,
        help="stop hopeless trials early on their per-epoch validation accuracy "
        "(--prune alone: median)",
    )
    a(
        "--workers",
        type=_count,
        default=None,
        help="worker processes on this machine "
        "(default: 1; with --device cuda, one per GPU)",
    )
    a(
        "--storage",
        metavar="URL",
        help="sqlite:///FILE.db, journal:///FILE.log, postgresql://... or "
        "mysql://... (default: study.db in --out)",
    )
    a(
        "--study",
        default=d.study,
        metavar="NAME",
        help="study to create or join (default: %(default)s)",
    )
    a(
        "--out",
        type=Path,
        default=Path(d.out),
        metavar="DIR",
        help="folder for trials.csv, the figure and the default storage "
        "(default: %(default)s)",
    )
    a(
        "--device",
        choices=("auto", "cpu", "numba", "cuda", "numpy", "cupy"),
        default=d.device,
        help="as xpnet-train (default: %(default)s)",
    )
    a("--dataset", choices=("mnist", "fashion-mnist"), default=d.dataset)
    a(
        "--data-dir",
        metavar="DIR",
        help="folder of the dataset's IDX .gz files (as xpnet-train)",
    )
    a(
        "--train-size",
        type=_count,
        default=d.train_size,
        metavar="N",
        help="training images used (default: %(default)s)",
    )
    a(
        "--validation",
        type=_fraction,
        default=d.validation,
        metavar="FRACTION",
        help="share of them held out to score trials (default: %(default)s)",
    )
    a(
        "--epochs",
        type=_count,
        default=d.epochs,
        help="epochs per trial (default: %(default)s)",
    )
    a("--batch-size", type=_count, default=d.batch_size, help="default: %(default)s")
    a(
        "--hidden-sizes",
        type=_sizes,
        default=d.hidden_sizes,
        metavar="N,N,...",
        help="hidden layer widths (default: six of 100)",
    )
    a(
        "--optimizer",
        choices=OPTIMIZERS,
        default=d.optimizer,
        help="default: %(default)s",
    )
    a(
        "--lr",
        type=_positive,
        help="learning rate when not searched (default: the optimizer's)",
    )
    a(
        "--weight-decay",
        type=_nonneg,
        default=d.weight_decay,
        metavar="LAMBDA",
        help="when not searched (default: 0)",
    )
    a(
        "--weight-init",
        default=d.weight_init,
        metavar="{he,xavier,NUMBER}",
        help="default: he",
    )
    a(
        "--dropout",
        type=_dropout,
        default=d.dropout,
        metavar="RATIO",
        help="when not searched (default: 0)",
    )
    a(
        "--batchnorm",
        action="store_true",
        help="Batch Normalization after each hidden layer",
    )
    a("--dtype", choices=("float32", "float64"), default=d.dtype)
    a(
        "--seed",
        type=_seed,
        default=d.seed,
        help="seed of the validation split and of each trial's weights "
        "(default: %(default)s)",
    )
    a(
        "--heartbeat",
        type=_count,
        default=d.heartbeat,
        metavar="SECONDS",
        help=argparse.SUPPRESS,
    )
    a("--quiet", action="store_true", help="print only errors and the best trials")
    return p


def settings_from(args) -> SearchSettings:
    """Checked settings from the parsed flags. Raises UsageError."""
    from nn.search.storage import StorageError, check_url, default_url

    try:
        space = space_text(parse_space(args.space))
    except SpaceError as exc:
        raise UsageError(str(exc)) from None
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a folder; choose another")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir} does not exist or is no folder")
    init = args.weight_init
    if init not in ("he", "xavier"):
        try:
            init = float(init)
        except ValueError:
            raise UsageError(
                f"--weight-init {init!r} must be he, xavier or a positive number"
            ) from None
    storage = args.storage or default_url(args.out)
    try:
        check_url(storage)
    except StorageError as exc:
        raise UsageError(str(exc)) from None
    return SearchSettings(
        space=space,
        storage=storage,
        study=args.study,
        trials=args.trials,
        dataset=args.dataset,
        data_dir=str(args.data_dir) if args.data_dir else None,
        train_size=args.train_size,
        validation=args.validation,
        epochs=args.epochs,
        batch_size=args.batch_size,
        hidden_sizes=args.hidden_sizes,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        weight_init=init,
        dropout=args.dropout,
        batchnorm=args.batchnorm,
        dtype=args.dtype,
        seed=args.seed,
        device=args.device,
        sampler=args.sampler,
        prune=args.prune,
        heartbeat=args.heartbeat,
        out=str(args.out),
    )
