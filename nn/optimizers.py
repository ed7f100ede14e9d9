"""The optimizers of chapter 6: the book's update rules, in place, on any backend.

Each optimizer has the book's name, signature and defaults and its
``update(params, grads)``: ``params`` and ``grads`` are dicts of arrays with
the same keys, and every parameter array changes in place (the layers hold
references to them). State arrays (velocities, squared-gradient sums, Adam's
moments) are created on the parameters' backend at the first update, and the
update over all parameters is one call of a backend kernel
(``Backend.adam_update`` and the like: compiled on Numba, fused on CUDA).

``state_dict()`` returns the hyper-parameters, the step count and the state
arrays (the live arrays: copy them to keep them); ``load_state_dict(state)``
takes what it returned, from any backend, and copies it.
"""

from __future__ import annotations

import math
import numbers

import backend as B
from nn.optimizer import SGD, _check_lr

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Momentum",
    "Nesterov",
    "AdaGrad",
    "RMSprop",
    "Adam",
]


def _check_rate(name: str, value) -> float:
    """A decay or momentum factor in [0, 1)."""
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value < 1
    )
    if not ok:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


class _Stateful:
    """An optimizer with per-parameter state arrays (``SLOTS``) and
    hyper-parameters (``HYPER``, besides ``lr``)."""

    NAME = ""
    SLOTS: tuple[str, ...] = ()
    HYPER: tuple[str, ...] = ()

    def __init__(self, lr: float, backend=None, **hyper):
        self.lr = _check_lr(lr)
        for name, value in hyper.items():
            setattr(self, name, _check_rate(name, value))
        #: The backend whose kernels update; None: the parameters' backend.
        self.backend = None if backend is None else B.get_backend(backend)
        #: ``{slot: {key: array}}``, created at the first update.
        self.state: dict | None = None
        self._pending: dict | None = None  # loaded, not yet on a backend

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)}" for k in ("lr", *self.HYPER))
        return f"{type(self).__name__}({args})"

    def update(self, params: dict, grads: dict) -> None:
        """params, grads: dicts of arrays with the same keys; params change in place."""
        missing = set(params) - set(grads)
        if missing:
            raise KeyError(f"no gradient for parameters {sorted(missing)}")
        keys = list(params)
        be = self.backend or B.backend_for(*(params[k] for k in keys))
        self._ensure_state(params, be)
        ps = [params[k] for k in keys]
        gs = [grads[k] for k in keys]
        slots = [[self.state[s][k] for k in keys] for s in self.SLOTS]
        self._apply(be, ps, gs, *slots)

    def _apply(self, be, params, grads, *slots) -> None:
        raise NotImplementedError

    def _ensure_state(self, params: dict, be) -> None:
        if self._pending is not None:
            self.state = self._adopt(self._pending, params, be)
            self._pending = None
        elif self.state is None:
            self.state = {
                s: {k: be.xp.zeros_like(p) for k, p in params.items()}
                for s in self.SLOTS
            }
        elif set(self.state[self.SLOTS[0]]) != set(params):
            raise ValueError(
                f"{type(self).__name__} holds state for parameters "
                f"{sorted(self.state[self.SLOTS[0]])} but was given "
                f"{sorted(params)}; use one optimizer per network"
            )

    def _adopt(self, state: dict, params: dict, be) -> dict:
        """Copies of the loaded state arrays on ``be``, checked against params."""
        out = {}
        for slot in self.SLOTS:
            arrays = state[slot]
            if set(arrays) != set(params):
                raise ValueError(
                    f"the state_dict holds {slot!r} for parameters {sorted(arrays)} "
                    f"but the network has {sorted(params)}; it comes from another "
                    "network"
                )
            out[slot] = {}
            for key, p in params.items():
                shape = tuple(getattr(arrays[key], "shape", ()))
                if shape != tuple(p.shape):
                    raise ValueError(
                        f"the state_dict's {slot!r} for {key} has shape {shape} "
                        f"but the parameter has {tuple(p.shape)}; it comes from "
                        "another network shape"
                    )
                out[slot][key] = be.asarray(arrays[key], dtype=p.dtype).copy()
        return out

    def state_dict(self) -> dict:
        """``{"optimizer": name, "lr": ..., <hyper-parameters>, <slot>: {key:
        array}}``; the slots are absent before the first update."""
        out = {"optimizer": self.NAME, "lr": self.lr}
        out.update({k: getattr(self, k) for k in self.HYPER})
        out.update(self._extra_state())
        state = self._pending if self._pending is not None else self.state
        if state is not None:
            out.update({s: dict(state[s]) for s in self.SLOTS})
        return out

    def _extra_state(self) -> dict:
        return {}

    def load_state_dict(self, state: dict, params: dict | None = None) -> None:
        """Restore what ``state_dict`` returned (arrays of any backend, copied).

        ``params`` (optional): the network's parameters, to check the state's
        shapes and move it to their backend now rather than at the next update.
        """
        got = state.get("optimizer")
        if got != self.NAME:
            raise ValueError(
                f"the state_dict is from {got or 'sgd'!r}, not {self.NAME!r}; load "
                f"it into nn.optimizers.OPTIMIZERS[{got or 'sgd'!r}]"
            )
        lr = _check_lr(state["lr"])
        hyper = {k: _check_rate(k, state[k]) for k in self.HYPER}
        present = [s for s in self.SLOTS if s in state]
        if present and len(present) != len(self.SLOTS):
            raise ValueError(
                f"the state_dict has {present} of {list(self.SLOTS)}; it is damaged"
            )
        for slot in present:
            if not isinstance(state[slot], dict):
                raise ValueError(f"the state_dict's {slot!r} is not a dict of arrays")
        pending = {s: dict(state[s]) for s in present} if present else None
        if pending is not None and params is not None:
            be = self.backend or B.backend_for(*params.values())
            pending = self._adopt(pending, params, be)
        self._load_extra(state)
        self.lr = lr
        for k, v in hyper.items():
            setattr(self, k, v)
        if pending is not None and params is not None:
            self.state, self._pending = pending, None
        else:
            self.state, self._pending = None, pending

    def _load_extra(self, state: dict) -> None:
        pass


class Momentum(_Stateful):
    """Momentum SGD: v = momentum * v - lr * dW; W += v."""

    NAME, SLOTS, HYPER = "momentum", ("v",), ("momentum",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, *, backend=None):
        super().__init__(lr, backend, momentum=momentum)

    def _apply(self, be, params, grads, vs):
        be.momentum_update(params, grads, vs, self.lr, self.momentum)


class Nesterov(_Stateful):
    """Nesterov's accelerated gradient in the book's form:
    v = momentum * v - lr * dW; W += momentum**2 * v - (1 + momentum) * lr * dW."""

    NAME, SLOTS, HYPER = "nesterov", ("v",), ("momentum",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, *, backend=None):
        super().__init__(lr, backend, momentum=momentum)

    def _apply(self, be, params, grads, vs):
        be.nesterov_update(params, grads, vs, self.lr, self.momentum)


class AdaGrad(_Stateful):
    """AdaGrad: h += dW * dW; W -= lr * dW / (sqrt(h) + 1e-7)."""

    NAME, SLOTS, HYPER = "adagrad", ("h",), ()

    def __init__(self, lr: float = 0.01, *, backend=None):
        super().__init__(lr, backend)

    def _apply(self, be, params, grads, hs):
        be.adagrad_update(params, grads, hs, self.lr)


class RMSprop(_Stateful):
    """RMSprop: h = decay_rate * h + (1 - decay_rate) * dW * dW;
    W -= lr * dW / (sqrt(h) + 1e-7)."""

    NAME, SLOTS, HYPER = "rmsprop", ("h",), ("decay_rate",)

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99, *, backend=None):
        super().__init__(lr, backend, decay_rate=decay_rate)

    def _apply(self, be, params, grads, hs):
        be.rmsprop_update(params, grads, hs, self.lr, self.decay_rate)


class Adam(_Stateful):
    """Adam as the book writes it: at step ``iter``,
    lr_t = lr * sqrt(1 - beta2**iter) / (1 - beta1**iter);
    m += (1 - beta1) * (dW - m); v += (1 - beta2) * (dW**2 - v);
    W -= lr_t * m / (sqrt(v) + 1e-7)."""

    NAME, SLOTS, HYPER = "adam", ("m", "v"), ("beta1", "beta2")

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        *,
        backend=None,
    ):
        super().__init__(lr, backend, beta1=beta1, beta2=beta2)
        self.iter = 0

    def _apply(self, be, params, grads, ms, vs):
        self.iter += 1
        lr_t = (
            self.lr
            * math.sqrt(1.0 - self.beta2**self.iter)
            / (1.0 - self.beta1**self.iter)
        )
        be.adam_update(params, grads, ms, vs, lr_t, self.beta1, self.beta2)

    def _extra_state(self) -> dict:
        return {"iter": self.iter}

    def _load_extra(self, state: dict) -> None:
        it = state["iter"]
        if isinstance(it, bool) or not isinstance(it, numbers.Integral) or it < 0:
            raise ValueError(f"Adam's iter must be an integer >= 0, got {it!r}")
        self.iter = int(it)


#: Every optimizer by its command-line name.
OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adam": Adam,
}


def make_optimizer(name: str, lr: float | None = None, *, backend=None):
    """The optimizer called ``name`` (a key of ``OPTIMIZERS``), at the book's
    default learning rate unless ``lr`` is given."""
    if name not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}"
        )
    cls = OPTIMIZERS[name]
    kwargs = {} if lr is None else {"lr": lr}
    if cls is SGD:
        return cls(**kwargs)
    return cls(**kwargs, backend=backend)
