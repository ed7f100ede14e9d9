"""The study: created once with its settings, joined by every later command.

A study stores what defines its trials (the space and the fixed settings,
``SearchSettings.defining``) in its user attributes. A command whose settings
differ is refused before it writes anything, so a mistyped flag on a second
machine cannot mix two searches in one study.

``--trials`` counts finished trials (complete or pruned). Failed trials (a
worker killed, Ctrl-C, an error) do not count, so a restarted command runs
as many new trials as it takes to reach ``--trials`` finished ones.
"""

from __future__ import annotations

import json
import zlib

ATTR = "xpnet_search"
SAMPLERS = ("random", "tpe")
PRUNERS = ("median", "hyperband", "successive-halving")


class StudyError(ValueError):
    """A study that this command may not join (message names the fix)."""


def check_study(storage, settings) -> bool:
    """Whether the study exists; StudyError if its settings differ. Writes nothing."""
    from optuna.exceptions import DuplicatedStudyError  # noqa: F401 (optuna present)

    wanted = settings.defining()
    for summary in storage.get_all_studies():
        if summary.study_name != settings.study:
            continue
        stored = summary.user_attrs.get(ATTR)
        if stored is None:
            raise StudyError(
                f"study {settings.study!r} was not made by xpnet-search; "
                "choose another --study name"
            )
        diff = [
            k
            for k in sorted(set(stored) | set(wanted))
            if stored.get(k) != wanted.get(k)
        ]
        if diff:
            shown = "; ".join(
                f"{k}: study {_show(stored.get(k))}, here {_show(wanted.get(k))}"
                for k in diff
            )
            raise StudyError(
                f"study {settings.study!r} exists with a different search ({shown}); "
                "repeat its flags, or give a new --study name"
            )
        return True
    return False


def open_study(storage, settings, create: bool = False, worker_seed: int = 0):
    """The Optuna study, created (with its settings stored) when ``create``."""
    import optuna

    sampler = make_sampler(settings.sampler, worker_seed)
    pruner = make_pruner(settings.prune)
    if create:
        study = optuna.create_study(
            storage=storage,
            study_name=settings.study,
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,  # another machine may have created it meanwhile
        )
        study.set_user_attr(ATTR, settings.defining())
        return study
    return optuna.load_study(
        study_name=settings.study, storage=storage, sampler=sampler, pruner=pruner
    )


def make_sampler(name: str, seed: int):
    """Random sampling (the book's) or TPE, seeded per worker."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(name: str | None):
    """Optuna's pruner ``name`` fed each epoch's validation accuracy; None: none."""
    import optuna

    if name is None:
        return optuna.pruners.NopPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    # The median of earlier trials at the same epoch, after 5 trials and 3 epochs.
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)


def counts(study) -> dict:
    """Trials by state name (COMPLETE, PRUNED, FAIL, RUNNING, WAITING)."""
    out: dict = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def finished(study) -> int:
    """Trials that count towards ``--trials``: complete or pruned."""
    c = counts(study)
    return c.get("COMPLETE", 0) + c.get("PRUNED", 0)


def worker_seed(settings, worker: str) -> int:
    """A sampler seed distinct per worker (``worker``: its host, process and
    index), so workers, restarts and machines never draw the same values."""
    return zlib.crc32(f"{settings.seed}:{worker}:{settings.study}".encode())


def _show(value) -> str:
    return json.dumps(value) if not isinstance(value, str) else value
