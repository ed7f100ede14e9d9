"""Train the book's two-layer network on MNIST or Fashion-MNIST (chapters 4 and 5).

The command line over :mod:`nn.training.trainer`: ``xpnet-train`` when
installed, ``python train.py`` in a clone (the same :func:`main`).
Exit codes: 0 done, 1 the run
failed (diverged, device or data unavailable, disk error), 2 bad arguments,
130 stopped by Ctrl-C (checkpoint and metrics saved; continue with --resume).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import backend as B
from nn.data.mnist import PIXEL_SCALE
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
from nn.training.progress import ConsoleReporter, SilentReporter
from nn.training.trainer import Trainer, TrainingDiverged, load_data


def _select_device(name: str) -> tuple:
    """Make ``name`` the current backend. -> (backend, line to print)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            be = B.use(name)
        except B.BackendUnavailableError as exc:
            raise RunFailed(f"--device {name}: {exc}") from None
    line = f"backend: {be.describe()}"
    if name == "auto":
        why = "; ".join(str(w.message) for w in caught)
        if not why and be.on_host:  # say why the GPU was passed over
            try:
                B.get_backend("cupy")
            except B.BackendUnavailableError as exc:
                why = f"cupy: {exc}"
        line += f"  [--device auto{': ' + why if why else ''}]"
    return be, line


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

    _, device_line = _select_device(args.device)
    say(device_line)
    try:
        # uint8 pixels, scaled per batch by the trainer: the same numbers as
        # the normalized images, at a quarter of the memory traffic.
        train, test = load_data(dataset, args.data_dir, normalize=False)
    except KeyboardInterrupt:
        raise
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
            )
    except (CheckpointError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    except MemoryError as exc:
        raise RunFailed(
            f"not enough memory for this network ({exc}); try a smaller --hidden-size"
        ) from None
    say(f"train: {trainer.describe()}")
    if ckpt is not None:
        say(f"resuming at iteration {ckpt.iteration} (saved on {ckpt.backend})")
    try:
        with warnings.catch_warnings():
            # Overflow inside a diverging run is reported once, as divergence.
            warnings.filterwarnings(
                "ignore", r"(overflow|invalid value|divide by zero)", RuntimeWarning
            )
            result = trainer.fit()
    except TrainingDiverged as exc:
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
            f"{_command(prog)} --resume {out}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(f"{result.summary()} -> {out}")
    return 0


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
