"""Host-side checks of chapter 3's weights before they become a ``ThreeLayerNet``.

Shared by `nn.three_layer_net.ThreeLayerNet.from_pickle` and the
``python -m nn.inference`` CLI, so both refuse integer, non-finite or
mis-shaped weights with the same one-line `WeightsError`. This module
reads NumPy arrays straight from a pickle, so (unlike the model code) it may
import NumPy.
"""

from __future__ import annotations

import os

import numpy as np

from nn.data.safe_pickle import UnsafePickleError, load_array_dict

__all__ = [
    "INPUT_SIZE",
    "NUM_CLASSES",
    "PARAM_NAMES",
    "WeightsError",
    "check_weights",
    "load_weights",
]

#: The network's parameters, in the order of its layers.
PARAM_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")
#: Input pixels and classes of MNIST: what W1's rows and W3's columns must be.
INPUT_SIZE, NUM_CLASSES = 784, 10
#: How to fix a bad file, for callers in Python (the CLI names its flag).
FIX = "use the book's ch03/sample_weight.pkl"


class WeightsError(ValueError):
    """The weights cannot be used as chapter 3's network (messages are one line)."""


def check_weights(
    params: dict,
    path,
    fix: str = FIX,
    input_size: int | None = INPUT_SIZE,
    num_classes: int | None = NUM_CLASSES,
) -> None:
    """Raise `WeightsError` unless ``params`` are chapter 3's network.

    Needed: float arrays W1 (input_size, H1), b1 (H1,), W2 (H1, H2), b2 (H2,),
    W3 (H2, num_classes), b3 (num_classes,), all finite; other entries are
    ignored. ``input_size`` or ``num_classes`` of None accepts any size.

    Parameters
    ----------
    params : dict
        Host NumPy arrays by name, as `nn.data.safe_pickle.load_array_dict`
        returns them.
    path : path
        The file they came from, named in the message.
    fix : str
        What the user should do, appended to the message.
    """

    def bad(problem: str, how: str = fix) -> WeightsError:
        return WeightsError(f"weights {path}: {problem}; {how}")

    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise bad(
            f"missing {', '.join(missing)} (has {', '.join(sorted(params)) or 'none'})",
            f"chapter 3's network needs {', '.join(PARAM_NAMES)}; {fix}",
        )
    for name in PARAM_NAMES:
        value = params[name]
        if value.dtype.kind != "f":
            raise bad(
                f"{name} holds {value.dtype} values, not floating-point weights",
                f"save it as float32 ({name}.astype('float32')) or {fix}",
            )
    rows = input_size
    for i in (1, 2, 3):
        W, b = params[f"W{i}"], params[f"b{i}"]
        cols = num_classes if i == 3 and num_classes is not None else "M"
        if (
            W.ndim != 2
            or (rows is not None and W.shape[0] != rows)
            or (cols != "M" and W.shape[1] != cols)
        ):
            why = (
                f"MNIST images have {input_size} pixels"
                if i == 1
                else f"W{i - 1} gives {rows} outputs"
            )
            if cols != "M":
                why += f" and there are {num_classes} classes"
            want = f"({'D' if rows is None else rows}, {cols})"
            raise bad(f"W{i} has shape {W.shape}, expected {want} ({why})")
        if b.shape != (W.shape[1],):
            raise bad(
                f"b{i} has shape {b.shape}, expected ({W.shape[1]},) to match W{i}"
            )
        rows = W.shape[1]
    for name in PARAM_NAMES:
        if not np.isfinite(params[name]).all():
            raise bad(f"{name} contains NaN or infinite values")


def load_weights(path: str | os.PathLike, fix: str = FIX, **sizes) -> dict:
    """Read a weights pickle safely and check it. -> ``{name: host ndarray}``.

    Refused pickles raise `UnsafePickleError` unchanged;
    usable-but-wrong weights raise `WeightsError` (see
    `check_weights`, which also takes ``input_size`` and ``num_classes``).
    """
    params = load_array_dict(path)
    check_weights(params, path, fix, **sizes)
    return params


def load_weights_for_cli(path, fix: str) -> dict:
    """`load_weights` with every failure as a one-line `WeightsError`."""
    try:
        params = load_array_dict(path)
    except UnsafePickleError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise WeightsError(f"weights {path}: {reason}; {fix}") from None
    except OSError as exc:
        raise WeightsError(f"weights {path}: cannot read it ({exc.strerror})") from None
    check_weights(params, path, fix)
    return params
