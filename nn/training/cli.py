"""Train the book's two-layer network on MNIST or Fashion-MNIST (chapters 4 and 5).

The command line over `nn.training.trainer`: ``xpnet-train`` when
installed, ``python train.py`` in a clone (the same `main`).
Exit codes: 0 done, 1 the run failed (diverged or not learning, device or data
unavailable, disk error), 2 bad arguments, 130 stopped by Ctrl-C (checkpoint and
metrics saved; continue with --resume).
"""

from __future__ import annotations

import os
import shlex
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import backend as B
from nn.data.mnist import PIXEL_SCALE, DatasetNotFoundError
from nn.training.arguments import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    PROG,
    RUN_FLAGS,
    RunFailed,
    UsageError,
    build_parser,
)
from nn.training.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    load_checkpoint,
    resolve_path,
)
from nn.training.config import TrainConfig
from nn.training.data import data_folder
from nn.training.health import NotLearningWarning, TrainingNotLearning
from nn.training.progress import ConsoleReporter, SilentReporter
from nn.training.trainer import Trainer, load_data


def _select_device(name: str) -> tuple:
    """Make ``name`` the current backend. -> (backend, line to print).

    With ``auto`` the line says what was chosen and, when it is not the
    GPU, why in a few words: ``no NVIDIA GPU found`` on a CPU-only machine;
    CuPy's own reason (naming the extra to install) where a driver is present.
    """
    try:
        return B.select(name)
    except B.BackendUnavailableError as exc:
        raise RunFailed(f"--device {name}: {exc}") from None


def _resume_source(args) -> Path | None:
    if args.resume is None:
        return None
    if args.resume is True:
        if args.out is None:
            raise UsageError("--resume without RUN needs --out DIR naming the run")
        return args.out
    return Path(args.resume)


def _check_against_checkpoint(args, ckpt) -> None:
    try:
        # The saved settings with the defaults of keys an older run lacks.
        saved_config = TrainConfig.from_dict(ckpt.config)
    except (ValueError, TypeError) as exc:
        raise UsageError(
            f"--resume: the checkpoint's config is unusable: {exc}"
        ) from None
    for flag, key in RUN_FLAGS:
        given, saved = getattr(args, key), getattr(saved_config, key)
        if given is not None and given != saved:
            raise UsageError(
                f"{flag} {_shown(given)} differs from the resumed run's "
                f"{_shown(saved)}; drop {flag}, or start a new run"
            )
    if args.dataset is not None and args.dataset != ckpt.dataset:
        raise UsageError(
            f"--dataset {args.dataset} differs from the resumed run's {ckpt.dataset}"
        )


def _shown(value) -> str:
    """A flag's value as typed: (100, 100) as 100,100."""
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _check_out_dir(out: Path, resumed: Path | None) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    existing = out / CHECKPOINT_NAME
    if existing.exists() and (resumed is None or not existing.samefile(resumed)):
        raise UsageError(
            f"--out {out} already holds a run; continue it with --resume {out}, "
            "or choose another --out"
        )
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out} is not writable ({parent} does not allow it)")


def run(args, prog: str = PROG) -> int:
    say = (lambda text: None) if args.quiet else print
    source = _resume_source(args)
    ckpt = None
    if source is not None:
        try:
            ckpt = load_checkpoint(source)
        except CheckpointError as exc:
            raise UsageError(f"--resume: {exc}") from None
        _check_against_checkpoint(args, ckpt)
        config = None
        dataset = ckpt.dataset
    else:
        given = {key: getattr(args, key) for _, key in RUN_FLAGS}
        given.update(iters=args.iters, epochs=args.epochs)
        given.update(allow_not_learning=args.allow_not_learning or None)
        try:
            config = TrainConfig(**{k: v for k, v in given.items() if v is not None})
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        dataset = args.dataset or "mnist"
    out = args.out
    if out is None and ckpt is not None:
        out = source.parent if source.is_file() else source
    elif out is None:
        out = Path("runs") / f"{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    _check_out_dir(out, resolve_path(source) if ckpt is not None else None)
    if args.data_dir is not None and not args.data_dir.is_dir():
        raise UsageError(f"--data-dir {args.data_dir} does not exist or is no folder")
    data_dir = args.data_dir
    if data_dir is None and ckpt is not None and ckpt.data_dir is not None:
        data_dir = Path(ckpt.data_dir)  # where the run read its data
        if not data_dir.is_dir():
            raise UsageError(
                f"--resume: the run read its {dataset} data from {data_dir}, which "
                "is gone; pass --data-dir DIR naming the folder that holds it now"
            )

    _, device_line = _select_device(args.device)
    say(device_line)
    try:
        # uint8 pixels, scaled per batch by the trainer: the same numbers as
        # the normalized images, at a quarter of the memory traffic.
        train, test = load_data(dataset, data_dir, normalize=False)
    except KeyboardInterrupt:
        raise
    except DatasetNotFoundError as exc:
        raise RunFailed(exc.cli_message) from None
    except Exception as exc:  # the loader's errors are already one clear line
        raise RunFailed(f"cannot load {dataset}: {exc}") from None
    reporter = SilentReporter() if args.quiet else ConsoleReporter()
    try:
        if ckpt is not None:
            trainer = Trainer.resume(
                ckpt,
                train,
                test,
                iters=args.iters,
                epochs=args.epochs,
                out_dir=out,
                reporter=reporter,
                pixel_scale=PIXEL_SCALE,
                data_dir=data_folder(dataset, data_dir),
            )
        else:
            trainer = Trainer(
                train,
                test,
                config,
                dataset=dataset,
                out_dir=out,
                reporter=reporter,
                pixel_scale=PIXEL_SCALE,
                data_dir=data_folder(dataset, data_dir),
            )
    except (CheckpointError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    except MemoryError as exc:
        raise RunFailed(
            f"not enough memory for this network ({exc}); try a smaller --hidden-size"
        ) from None
    if args.allow_not_learning:  # may be switched on for a resumed run
        trainer.config = replace(trainer.config, allow_not_learning=True)
    say(f"train: {trainer.describe()}")
    if ckpt is not None and trainer.iteration >= trainer.total:
        h = trainer.history
        acc = (
            f" (train acc {h.train_acc[-1]:.4f}, test acc {h.test_acc[-1]:.4f})"
            if h.train_acc
            else ""
        )
        print(
            f"nothing to do: the run in {out} already finished at iteration "
            f"{trainer.iteration}{acc}; give a larger --iters or --epochs to "
            "train it further"
        )
        return 0
    if ckpt is not None:
        say(f"resuming at iteration {ckpt.iteration} (saved on {ckpt.backend})")
    try:
        with warnings.catch_warnings():
            # Overflow inside a diverging run is reported once, as divergence.
            warnings.filterwarnings(
                "ignore", r"(overflow|invalid value|divide by zero)", RuntimeWarning
            )
            warnings.showwarning = _one_line_warning(prog, reporter, args.quiet)
            result = trainer.fit()
    except TrainingNotLearning as exc:
        raise RunFailed(str(exc)) from None
    except OSError as exc:
        raise RunFailed(f"cannot write to {out}: {exc}") from None
    except MemoryError as exc:
        raise RunFailed(
            f"out of memory while training ({exc}); try a smaller --batch-size "
            "or --hidden-size"
        ) from None
    if result.interrupted:
        print(
            f"{prog}: stopped by Ctrl-C at iteration {result.iterations}; checkpoint "
            f"and metrics saved in {out}; continue with: "
            f"{_command(prog)} --resume {shlex.quote(str(out))}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(f"{result.summary()} -> {out}")
    return 0


def _one_line_warning(prog: str, reporter, quiet: bool):
    """A ``warnings.showwarning`` printing a NotLearningWarning as one line."""
    default = warnings.showwarning

    def show(message, category, *args, **kwargs):
        if not issubclass(category, NotLearningWarning):
            return default(message, category, *args, **kwargs)
        line = f"{prog}: warning: {message}"
        if quiet:
            print(line, file=sys.stderr)
        else:
            reporter.message(line)

    return show


def _command(prog: str) -> str:
    """How a user runs this program again: ``python train.py`` or ``xpnet-train``."""
    return f"python {prog}" if prog.endswith(".py") else prog


def main(argv=None, prog: str = PROG) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) -> exit code."""
    args = build_parser(prog).parse_args(argv)
    try:
        return run(args, prog)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunFailed as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
