"""Parameter update rules."""

from __future__ import annotations

import math


def _check_lr(lr) -> float:
    try:
        value = float(lr)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"learning rate must be a finite number >= 0, got {lr!r}")
    return value


class SGD:
    """Stochastic gradient descent: W -= lr * dW, in place for every key."""

    def __init__(self, lr: float = 0.01):
        self.lr = _check_lr(lr)

    def update(self, params: dict, grads: dict) -> None:
        """params, grads: dicts of arrays with the same keys; params change in place."""
        missing = set(params) - set(grads)
        if missing:
            raise KeyError(f"no gradient for parameters {sorted(missing)}")
        for key in params:
            # In place (never rebind): the layers hold references to these arrays.
            params[key] -= self.lr * grads[key]

    def state_dict(self) -> dict:
        """Hyper-parameters and state, for checkpoints."""
        return {"lr": self.lr}

    def load_state_dict(self, state: dict, params: dict | None = None) -> None:
        """Restore what ``state_dict`` returned (``params`` is accepted, as the
        other optimizers take it, and unused: SGD has no state arrays)."""
        got = state.get("optimizer", "sgd")
        if got != "sgd" or set(state) - {"lr", "optimizer"}:
            raise ValueError(
                f"the state_dict is from {got!r}, not 'sgd'; load it into "
                f"nn.optimizers.OPTIMIZERS[{got!r}]"
            )
        self.lr = _check_lr(state["lr"])
