"""Worker processes: each takes trials from the shared study until it is done.

``--workers N`` starts N processes on this machine; the same command on
other machines adds theirs to the same study through its storage. A worker
asks the storage for its next trial, so no two workers ever run the same one.
Each worker's BLAS and Numba threads are pinned to its share of the cores
(N workers on N cores: one thread each), set in the environment a spawned
worker starts with (``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS``, ...) and again
through threadpoolctl. With ``--device cuda`` each worker sees one GPU
(``CUDA_VISIBLE_DEVICES``), round-robin over the visible ones.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import threading

import backend as B

THREAD_VARS = (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)
EXIT_INTERRUPTED = 130


class Surplus(Exception):
    """This trial would exceed ``--trials`` (another worker took the last one)."""


def worker_envs(n: int, device: str, gpus: int = 0) -> list[dict]:
    """The environment variables each of ``n`` workers runs with."""
    cores = os.cpu_count() or 1
    threads = max(1, cores // n)
    envs = []
    for i in range(n):
        env = {var: str(threads) for var in THREAD_VARS}
        if device in ("cuda", "cupy") and gpus > 1:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            ids = visible.split(",") if visible else [str(g) for g in range(gpus)]
            env["CUDA_VISIBLE_DEVICES"] = ids[i % len(ids)]
        envs.append(env)
    return envs


def pin_threads(threads: int) -> None:
    """Limit this process's BLAS thread pools to ``threads`` (threadpoolctl).

    Numba's pool is sized by ``NUMBA_NUM_THREADS`` when Numba loads, which a
    spawned worker has in its environment from its first instruction.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=threads)  # kept for the life of the process


def run_worker(settings, index: int, env: dict, stop=None, data=None, barrier=None):
    """Run trials until the study has ``settings.trials`` finished ones.

    -> exit code: 0 done, 130 stopped by Ctrl-C. ``stop``: an object whose
    ``requested`` turns true on Ctrl-C (made here when None); ``data``: the
    split of ``objective.split_data`` when the caller has it; ``barrier``: the
    workers of one command wait for each other there before their first trial,
    so a worker slow to start (imports, data) does not leave the others all
    the trials.
    """
    os.environ.update(env)
    threads = int(env.get("NUMBA_NUM_THREADS", "1"))
    if threads < (os.cpu_count() or 1):  # a share of the cores; never raise a limit
        pin_threads(threads)
    from nn.search.objective import Objective, SearchInterrupted
    from nn.search.storage import (
        fail_dead_trials,
        has_heartbeat,
        open_storage,
        require_optuna,
    )
    from nn.search.study import finished, open_study, worker_seed

    if stop is None:
        stop = _StopFlag()
    require_optuna()
    be, _line = B.select(settings.device)
    storage = open_storage(settings.storage, settings.heartbeat)
    key = f"{socket.gethostname()}:{os.getpid()}:{index}"
    study = open_study(storage, settings, worker_seed=worker_seed(settings, key))
    name = f"{socket.gethostname()}/{index}"
    objective = Objective(settings, worker=name, backend=be, split=data)

    def guarded(trial):
        if _ahead(study, trial.number) >= settings.trials:
            trial.set_user_attr("surplus", True)
            trial.set_user_attr("host_pid", f"{socket.gethostname()}:{os.getpid()}")
            raise Surplus(f"trial {trial.number} is beyond --trials {settings.trials}")
        return objective(trial)

    if barrier is not None:
        try:
            barrier.wait(timeout=120)
        except threading.BrokenBarrierError:
            pass  # a sibling failed to start; carry on alone
    while not stop.requested:
        if has_heartbeat(storage):
            import optuna

            optuna.storages.fail_stale_trials(study)
        else:
            fail_dead_trials(study)
        if finished(study) + _running(study) >= settings.trials:
            break
        try:
            study.optimize(guarded, n_trials=1, catch=())
        except Surplus:
            break
        except SearchInterrupted:
            return EXIT_INTERRUPTED
    return EXIT_INTERRUPTED if stop.requested else 0


def start_workers(settings, envs: list[dict]) -> list:
    """Start one process per entry of ``envs``. -> the started processes."""
    ctx = multiprocessing.get_context("spawn")
    procs = []
    barrier = ctx.Barrier(len(envs))
    for i, env in enumerate(envs):
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # a spawned child starts with these, before imports
        try:
            p = ctx.Process(
                target=_worker_main, args=(settings, i, env, barrier), daemon=False
            )
            p.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        p.barrier = barrier  # alive until the children have unpickled it
        procs.append(p)
    return procs


def _worker_main(settings, index: int, env: dict, barrier) -> None:
    # Its own process group: the terminal's Ctrl-C reaches the parent only,
    # which forwards one SIGINT to each worker (stopped between two steps).
    os.setpgrp()
    stop = _StopFlag()
    signal.signal(signal.SIGINT, stop.handle)
    try:
        code = run_worker(settings, index, env, stop=stop, barrier=barrier)
    except Exception as exc:
        print(
            f"xpnet-search: worker {index}: error: {exc}", file=sys.stderr, flush=True
        )
        code = 1
    sys.exit(code)


class _StopFlag:
    """Ctrl-C as a request: the current trial stops at its next step."""

    def __init__(self):
        self.requested = False

    def handle(self, signum, frame) -> None:
        self.requested = True


def _running(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _ahead(study, number: int) -> int:
    """Trials numbered below ``number`` that are running or finished."""
    from optuna.trial import TrialState

    states = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
    return sum(
        t.number < number for t in study.get_trials(deepcopy=False, states=states)
    )
