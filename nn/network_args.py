"""Checks of chapter 6's network arguments: widths, initial scales, weight decay."""

from __future__ import annotations

import math
import numbers

#: ``weight_init_std`` names: He's sqrt(2 / n) and Xavier's sqrt(1 / n).
INIT_SCALES = {"relu": 2.0, "he": 2.0, "sigmoid": 1.0, "xavier": 1.0}


def check_hidden_sizes(sizes) -> tuple[int, ...]:
    """``sizes`` as a tuple of positive ints, else a one-line ``ValueError``."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise ValueError(
            f"hidden_size_list must be a list of layer widths such as [100, 100], "
            f"got {sizes!r}"
        )
    sizes = tuple(sizes)
    if not sizes:
        raise ValueError(
            "hidden_size_list is empty; give at least one hidden layer width, "
            "such as [100]"
        )
    for s in sizes:
        if not isinstance(s, numbers.Integral) or isinstance(s, bool) or s < 1:
            raise ValueError(
                f"hidden layer widths must be positive integers, got {s!r} in "
                f"{list(sizes)}"
            )
    return tuple(int(s) for s in sizes)


def check_weight_init(value):
    """A finite number >= 0, or one of ``INIT_SCALES`` (lower-cased)."""
    if isinstance(value, str):
        key = value.lower()
        if key not in INIT_SCALES:
            raise ValueError(
                f"unknown weight initialisation {value!r}; give a number or one "
                f"of {', '.join(INIT_SCALES)}"
            )
        return key
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value >= 0):
        raise ValueError(
            f"weight_init_std must be a number >= 0 or one of "
            f"{', '.join(INIT_SCALES)}, got {value!r}"
        )
    return float(value)


def check_weight_decay(value) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value >= 0):
        raise ValueError(
            f"weight decay lambda must be a finite number >= 0 (0 is off), "
            f"got {value!r}"
        )
    return float(value)


def init_scale(weight_init_std, fan_in: int) -> float:
    """The standard deviation of a layer's initial weights: the number, or
    sqrt(2 / fan_in) for He ("relu"/"he"), sqrt(1 / fan_in) for Xavier."""
    if isinstance(weight_init_std, str):
        return math.sqrt(INIT_SCALES[weight_init_std] / fan_in)
    return weight_init_std
