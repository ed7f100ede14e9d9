"""The same 784-50-10 ReLU network and SGD step in PyTorch, on the CPU or a GPU.

Optional: PyTorch is never a dependency of xpnet. `import_torch` returns
None when it is not installed and the benchmarks skip with that reason.
The code is what a PyTorch user would write (``nn.Sequential``,
``F.cross_entropy``, ``optim.SGD``), initialised like the book (N(0, 0.01^2)
weights, zero biases) so the work per step is the same.
"""

from __future__ import annotations

import os

#: OMP_WAIT_POLICY as PyTorch's OpenMP runtime saw it when it loaded.
OMP_WAIT_POLICY_AT_LOAD: str | None = None


def import_torch():
    """The ``torch`` module, or None when PyTorch is not installed."""
    global OMP_WAIT_POLICY_AT_LOAD
    if "torch" not in __import__("sys").modules:
        OMP_WAIT_POLICY_AT_LOAD = os.environ.get("OMP_WAIT_POLICY")
    try:
        import torch
    except ImportError:
        return None
    return torch


class TorchTwoLayerNet:
    """Linear -> ReLU -> Linear, cross-entropy loss, plain SGD.

    x: (N, input_size) tensor of ``dtype``; t: (N,) int64 labels, both on
    ``device`` (a torch device string: "cpu", "cuda").
    """

    def __init__(
        self,
        torch,
        input_size,
        hidden_size,
        output_size,
        dtype,
        lr=0.1,
        seed=0,
        device="cpu",
    ):
        self.torch = torch
        torch.manual_seed(seed)
        nn = torch.nn
        self.model = nn.Sequential(
            nn.Linear(input_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, output_size),
        ).to(device=device, dtype=dtype)
        with torch.no_grad():
            for layer in (self.model[0], self.model[2]):
                layer.weight.normal_(0.0, 0.01)
                layer.bias.zero_()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)

    def step(self, x, t):
        """Forward, backward and update; returns the loss before the update."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.model(x), t)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def accuracy(self, x, t) -> float:
        with self.torch.no_grad():
            return float((self.model(x).argmax(dim=1) == t).double().mean())

    def count_correct(self, x, t):
        """Correct predictions, a 0-d tensor on the device (no host wait)."""
        with self.torch.no_grad():
            return (self.model(x).argmax(dim=1) == t).sum()
