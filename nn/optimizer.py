"""Parameter update rules."""

from __future__ import annotations


class SGD:
    """Stochastic gradient descent: W -= lr * dW, in place for every key."""

    def __init__(self, lr: float = 0.01):
        self.lr = lr

    def update(self, params, grads):
        """params, grads: dicts of arrays with the same keys; params change in place."""
        for key in params:
            # In place (never rebind): the layers hold references to these arrays.
            params[key] -= self.lr * grads[key]

    def state_dict(self) -> dict:
        """Hyper-parameters and state, for checkpoints."""
        return {"lr": self.lr}

    def load_state_dict(self, state: dict) -> None:
        self.lr = float(state["lr"])
