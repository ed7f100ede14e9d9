"""The search space: which settings a trial samples, and from what range.

Written as ``--space`` text, one entry per searched setting, comma-separated::

    lr=1e-6:1e-2:log,weight_decay=1e-8:1e-4:log   # the book's 6.5 (the default)
    lr=1e-4:1e-1:log,optimizer=sgd|momentum|adam  # a float and a choice
    dropout=0:0.5,batch_size=32:256:int           # linear float, integer

``low:high`` is a float drawn uniformly, ``low:high:log`` uniformly in its
logarithm (the book's ``10 ** np.random.uniform(-6, -2)``), ``low:high:int``
an integer (``:int:log`` both); ``a|b|c`` a choice. Settings left out of the
space keep the value of their ``xpnet-search`` flag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The book's section 6.5: learning rate and weight decay on log scales.
DEFAULT_SPACE = "lr=1e-6:1e-2:log,weight_decay=1e-8:1e-4:log"

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
#: Searchable settings: name -> kind ("float", "int", or the allowed choices).
SEARCHABLE = {
    "lr": "float",
    "weight_decay": "float",
    "dropout": "float",
    "batch_size": "int",
    "depth": "int",
    "width": "int",
    "optimizer": OPTIMIZERS,
    "weight_init": ("he", "xavier"),
    "batchnorm": ("true", "false"),
}
#: Lowest value each numeric setting allows (strict where the flag requires > 0).
_FLOORS = {
    "lr": (0.0, False),
    "weight_decay": (0.0, True),
    "dropout": (0.0, True),
    "batch_size": (1, True),
    "depth": (1, True),
    "width": (1, True),
}


class SpaceError(ValueError):
    """A ``--space`` text that cannot be searched (message names the fix)."""


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a numeric range or a list of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[str, ...] = ()

    def text(self) -> str:
        """The canonical ``--space`` entry (what the study stores)."""
        if self.choices:
            return f"{self.name}={'|'.join(self.choices)}"
        low, high = (
            (str(int(v)) for v in (self.low, self.high))
            if self.integer
            else (repr(float(v)) for v in (self.low, self.high))
        )
        flags = "".join(
            f":{f}" for f, on in (("int", self.integer), ("log", self.log)) if on
        )
        return f"{self.name}={low}:{high}{flags}"

    def suggest(self, trial):
        """Sample this setting in an Optuna ``trial``."""
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)


def parse_space(text: str) -> tuple[Dimension, ...]:
    """``--space`` text -> its dimensions, sorted by name. Raises SpaceError."""
    dims = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        name, sep, spec = (s.strip() for s in entry.partition("="))
        if not sep or not spec:
            raise SpaceError(
                f"--space entry {entry!r} is not NAME=LOW:HIGH[:log][:int] or "
                "NAME=A|B; e.g. lr=1e-6:1e-2:log"
            )
        if name not in SEARCHABLE:
            raise SpaceError(
                f"--space cannot search {name!r}; searchable: {', '.join(SEARCHABLE)}"
            )
        if name in dims:
            raise SpaceError(f"--space names {name} twice; keep one entry")
        dims[name] = _dimension(name, spec, SEARCHABLE[name])
    if not dims:
        raise SpaceError(f"--space is empty; e.g. --space {DEFAULT_SPACE}")
    return tuple(dims[n] for n in sorted(dims))


def space_text(dims) -> str:
    """The canonical text of ``dims`` (equal for equal spaces)."""
    return ",".join(d.text() for d in dims)


def _dimension(name: str, spec: str, kind) -> Dimension:
    if isinstance(kind, tuple):
        choices = tuple(c.strip().lower() for c in spec.split("|"))
        bad = [c for c in choices if c not in kind]
        if bad or len(set(choices)) != len(choices):
            raise SpaceError(
                f"--space {name}={spec}: choose distinct values among {'|'.join(kind)}"
            )
        return Dimension(name, choices=choices)
    parts = spec.split(":")
    flags = {p.strip().lower() for p in parts[2:]}
    if len(parts) < 2 or not flags <= {"log", "int"}:
        raise SpaceError(
            f"--space {name}={spec} is not LOW:HIGH with optional :log and :int; "
            f"e.g. {name}=1e-6:1e-2:log"
        )
    integer = "int" in flags or kind == "int"
    try:
        low, high = (float(p) for p in parts[:2])
    except ValueError:
        raise SpaceError(
            f"--space {name}={spec}: LOW and HIGH must be numbers"
        ) from None
    if integer and not (low.is_integer() and high.is_integer()):
        raise SpaceError(f"--space {name}={spec}: {name} takes whole numbers")
    if kind == "float" and integer:
        raise SpaceError(f"--space {name}={spec}: {name} is a float; drop :int")
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise SpaceError(
            f"--space {name}={spec}: the low end must be below the high end; "
            f"e.g. {name}={':'.join([parts[1], parts[0], *parts[2:]])}"
            if math.isfinite(low) and math.isfinite(high) and low > high
            else f"--space {name}={spec}: the low end must be below the high end"
        )
    floor, inclusive = _FLOORS[name]
    log = "log" in flags
    if low < floor or (low == floor and not inclusive) or (log and low <= 0):
        raise SpaceError(
            f"--space {name}={spec}: the low end must be "
            f"{'above' if log or not inclusive else 'at least'} {floor:g}"
            f"{' on a log scale' if log else ''}"
        )
    if name == "dropout" and high >= 1:
        raise SpaceError(f"--space {name}={spec}: a dropout ratio must be below 1")
    return Dimension(name, low, high, log=log, integer=integer)
