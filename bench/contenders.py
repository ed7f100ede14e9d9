"""One interface over every implementation the training benchmarks compare.

A *variant* is an implementation with a dtype: the book's code, the plain
float32 transcription, PyTorch, or xpnet on one backend. Its
`Contender` turns host data into its own arrays and runs a step, the
training loop's step, an accuracy and a device sync, so the benchmark bodies
are written once for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import benchkit
import numpy as np
import pytest
from book_reference import BookTwoLayerNet, one_hot
from torch_reference import TorchTwoLayerNet, import_torch

import backend as B

LEARNING_RATE = 0.1


@dataclass(frozen=True)
class Variant:
    """An implementation and dtype. ``baseline``: the book's row that ratios
    divide by; ``reference``: "torch" for PyTorch's float32 row."""

    id: str
    kind: str  # "book", "plain", "torch" or "xpnet"
    backend: str
    dtype: str
    baseline: bool = False
    reference: str | None = None


VARIANTS = {
    v.id: v
    for v in [
        Variant("book-f64", "book", "numpy", "float64", baseline=True),
        Variant("plain-f32", "plain", "numpy", "float32"),
        Variant("torch-f32", "torch", "torch-cpu", "float32", reference="torch"),
        Variant("torch-f64", "torch", "torch-cpu", "float64"),
    ]
    + [
        Variant(f"{name}-f{dtype[-2:]}", "xpnet", name, dtype)
        for name in benchkit.BACKEND_NAMES
        for dtype in benchkit.DTYPES
    ]
}


class Contender:
    """A network of one variant, with its data conversions. Use as a context
    manager: xpnet variants make their backend current and restore it after."""

    def __init__(self, variant: Variant, s: benchkit.Settings):
        self.variant = variant
        self.torch = None
        self._previous_backend = None
        sizes = (s.input_size, s.hidden_size, s.output_size)
        if variant.kind in ("book", "plain"):
            book = variant.kind == "book"
            self.net = BookTwoLayerNet(
                *sizes, dtype=np.dtype(variant.dtype), first_dx=book
            )
            # The book's targets are one-hot float64; the plain transcription
            # keeps them in its own dtype.
            self._target_dtype = np.float64 if book else np.float32
        elif variant.kind == "torch":
            self.torch = import_torch()
            if self.torch is None:
                pytest.skip("PyTorch is not installed (optional: pip install torch)")
            dtype = getattr(self.torch, variant.dtype)
            self._torch_dtype = dtype
            self.net = TorchTwoLayerNet(self.torch, *sizes, dtype, lr=LEARNING_RATE)
        else:
            import nn

            self.backend = benchkit.backend_or_skip(variant.backend)
            self.net = nn.TwoLayerNet(
                *sizes, backend=self.backend, dtype=variant.dtype, rng=0
            )
            self.optimizer = nn.SGD(lr=LEARNING_RATE)

    def activate(self) -> None:
        """Make this variant's backend current: the layers dispatch ``B.matmul``
        and friends through the current backend."""
        if self.variant.kind == "xpnet":
            B.use(self.backend)

    def __enter__(self):
        self._previous_backend = B.current()
        self.activate()
        return self

    def __exit__(self, *exc):
        B.use(self._previous_backend)

    def arrays(self, x: np.ndarray, t: np.ndarray):
        """Host float32 images (N, D) and int64 labels (N,) -> this variant's."""
        kind = self.variant.kind
        if kind in ("book", "plain"):
            x = x.astype(self.variant.dtype) if kind == "plain" else x
            return x, one_hot(t).astype(self._target_dtype)
        if kind == "torch":
            xt = self.torch.from_numpy(np.ascontiguousarray(x))
            return xt.to(self._torch_dtype), self.torch.from_numpy(t)
        be = self.backend
        return be.asarray(x, dtype=self.variant.dtype), be.asarray(t)

    def index(self, idx: np.ndarray):
        """Host int64 indices -> an index usable on this variant's arrays."""
        if self.variant.kind == "torch":
            return self.torch.from_numpy(idx)
        if self.variant.kind == "xpnet":
            return self.backend.asarray(idx)
        return idx

    def step(self, x, t):
        """One SGD step: forward, backward, update."""
        if self.variant.kind in ("book", "plain"):
            return self.net.sgd_step(x, t, LEARNING_RATE)
        if self.variant.kind == "torch":
            return self.net.step(x, t)
        return self.net.train_step(x, t, self.optimizer)

    def loop_step(self, x, t):
        """The training loop's step; the book's loop also recomputes the loss."""
        if self.variant.kind in ("book", "plain"):
            self.net.sgd_step(x, t, LEARNING_RATE)
            return self.net.loss(x, t)
        return self.step(x, t)

    def accuracy(self, x, t) -> float:
        return float(self.net.accuracy(x, t))

    def sync(self) -> None:
        if self.variant.kind == "xpnet":
            self.backend.synchronize()

    def info(self) -> dict:
        """extra_info fields of this variant."""
        return variant_info(self.variant)


def variant_info(v: Variant) -> dict:
    """extra_info fields of variant ``v``."""
    return {
        "backend": v.backend,
        "dtype": v.dtype,
        "kind": v.kind,
        "baseline": v.baseline,
        "reference": v.reference,
    }


def train_loop(c: Contender, x, t, indices, evaluate=None, eval_every=0) -> list:
    """The chapter 5 loop: one step per row of ``indices`` (iters, batch).

    ``evaluate()`` runs when ``i % eval_every == 0`` (the book's per-epoch
    train and test accuracy); losses stay device arrays, as a trainer keeps them.
    """
    losses = []
    for i in range(len(indices)):
        idx = indices[i]
        losses.append(c.loop_step(x[idx], t[idx]))
        if evaluate is not None and i % eval_every == 0:
            evaluate()
    c.sync()
    return losses
