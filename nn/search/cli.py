"""``xpnet-search``: the book's hyper-parameter search (section 6.5) on Optuna.

Exit codes: 0 done, 1 a worker failed, 2 bad arguments (nothing written to
an existing study), 130 stopped by Ctrl-C (finished trials kept; the same
command continues the study).
"""

from __future__ import annotations

import signal
import sys

import backend as B
from nn.search.arguments import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    PROG,
    UsageError,
    build_parser,
    settings_from,
)

__all__ = ["build_parser", "main", "run"]


def run(args, prog: str = PROG) -> int:
    from nn.search import report
    from nn.search.storage import StorageError, open_storage, require_optuna
    from nn.search.study import StudyError, check_study, counts, finished, open_study
    from nn.search.workers import run_worker, start_workers, worker_envs

    say = (lambda text: None) if args.quiet else print
    try:
        require_optuna()
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    settings = settings_from(args)
    if settings.storage.startswith("sqlite:") and not args.storage:
        args.out.mkdir(parents=True, exist_ok=True)  # the default storage's folder
    try:
        storage = open_storage(settings.storage, settings.heartbeat)
        exists = check_study(storage, settings)
    except (StorageError, StudyError) as exc:
        raise UsageError(str(exc)) from None
    from nn.search.objective import split_data

    try:  # before the study is touched: a data or device problem writes nothing
        data = split_data(settings)
        be, device_line = B.select(settings.device)
    except B.BackendUnavailableError as exc:
        raise UsageError(f"--device {settings.device}: {exc}") from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot load {settings.dataset}: {exc}") from None
    study = open_study(storage, settings, create=not exists)
    done = finished(study)
    gpus = 0 if be.on_host else int(be.xp.cuda.runtime.getDeviceCount())
    n = args.workers or gpus or 1
    say(
        f"study {settings.study!r} ({_where(settings.storage)}): {done} of "
        f"{settings.trials} trials finished; {n} worker{'s' * (n > 1)}, "
        f"space {settings.space}, {settings.sampler} sampler"
        + (f", {settings.prune} pruning" if settings.prune else "")
    )
    if done < settings.trials:
        say(device_line)
    envs = worker_envs(n, settings.device, gpus)
    code = 0
    if done < settings.trials:
        code = _run_workers(settings, envs, run_worker, start_workers, say, data)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = report.trial_rows(study)
    csv_path = report.write_csv(rows, args.out / report.CSV_NAME)
    fig_path = args.out / report.FIGURE_NAME
    try:
        drawn = report.plot_best(rows, fig_path, dataset=settings.dataset) is not None
    except ImportError:
        drawn = False
    c = counts(study)
    say(
        "trials: "
        + (", ".join(f"{c[k]} {k.lower()}" for k in sorted(c)) or "none yet")
        + f" -> {csv_path}"
        + (f", {fig_path}" if drawn else "")
    )
    for line in report.best_lines(rows, settings):
        print(line)
    if code == EXIT_INTERRUPTED:
        print(
            f"{prog}: stopped by Ctrl-C; finished trials are kept in the study; "
            "run the same command to continue it",
            file=sys.stderr,
        )
    return code


def _run_workers(settings, envs, run_worker, start_workers, say, data) -> int:
    """Run the workers (in this process when there is one) -> exit code."""
    from nn.search.workers import _StopFlag

    stop = _StopFlag()
    previous = signal.signal(signal.SIGINT, stop.handle)
    try:
        if len(envs) == 1:
            return run_worker(settings, 0, envs[0], stop=stop, data=data)
        procs = start_workers(settings, envs)
        forwarded = False
        while any(p.is_alive() for p in procs):
            for p in procs:
                p.join(timeout=0.2)
            if stop.requested and not forwarded:
                say("stopping: each worker ends its current trial at the next step")
                for p in procs:
                    if p.is_alive():
                        _interrupt(p)
                forwarded = True
        codes = [p.exitcode for p in procs]
    finally:
        signal.signal(signal.SIGINT, previous)
    if stop.requested or EXIT_INTERRUPTED in codes:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if any(codes) else 0


def _interrupt(proc) -> None:
    import os

    try:
        os.kill(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        pass


def _where(url: str) -> str:
    from nn.search.storage import _redact

    return _redact(url)


def main(argv=None, prog: str = PROG) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) -> exit code."""
    args = build_parser(prog).parse_args(argv)
    try:
        return run(args, prog)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
