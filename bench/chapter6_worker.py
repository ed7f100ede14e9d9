"""A worker process of ``chapter6.py``: one contender, driven over stdin/stdout.

    python bench/chapter6_worker.py NAME [--data-dir DIR] [--rows N] [--device D]

NAME is numpy, numba, cupy (xpnet's backends), torch or jax; ``--device cuda``
puts PyTorch and JAX on their GPU (skipped, with the reason, without one).
The worker loads the training set once, answers one JSON line
``{"ready": info, "data": source}`` (or ``{"skip": reason}`` when its library
or device is missing), then serves JSON-line
commands ``{"config", "hidden", "batch", "steps", "seed"}`` with
``{"seconds", "cpu_seconds", "loss_before", "loss_after"}`` until ``"quit"``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
#: Configuration name -> Batch Normalization (as in chapter6.py).
CONFIGS = {"adam": False, "adam-bn": True}
#: Rows of the training set on which the loss before and after is measured.
EVAL_ROWS = 1000


def load_data(data_dir: str | None, rows: int | None):
    """Fashion-MNIST training images (N, 784) float32 and labels (N,) int64,
    else synthetic MNIST-like data; and a string naming the source."""
    try:
        import nn

        (x, t), _ = nn.load_mnist(
            dataset="fashion-mnist", data_dir=data_dir, download=False
        )
        source = "fashion-mnist"
    except Exception as exc:  # any loader failure falls back, with the reason
        if os.environ.get("XPNET_REQUIRE_DATA") == "1":
            raise RuntimeError(f"real Fashion-MNIST required but: {exc}") from None
        rng = np.random.default_rng(1)
        n = rows or 60_000
        x = np.floor(rng.random((n, 784)) * 256).astype(np.float32) / 255
        x[rng.random((n, 784)) < 0.5] = 0
        t = rng.integers(0, 10, n)
        source = f"synthetic ({type(exc).__name__}: {exc})"
    x = np.ascontiguousarray(np.asarray(x, np.float32)[:rows])
    return x, np.asarray(t, np.int64)[:rows], source


class Worker:
    """One contender in this process: its library's arrays and networks."""

    def __init__(self, name: str, data_dir, rows, device: str = "cpu"):
        self.name, self.device = name, device
        if name == "torch":
            from torch_reference import import_torch

            self.lib = import_torch()  # before backend, which sets OMP_WAIT_POLICY
            if self.lib is None:
                raise ImportError("PyTorch is not installed (pip install torch)")
            if device == "cuda" and not self.lib.cuda.is_available():
                raise RuntimeError("PyTorch sees no CUDA device (a CPU-only build?)")
        elif name == "jax":
            from chapter6_nets import import_jax

            self.lib = import_jax()
            if self.lib is None:
                raise ImportError('JAX is not installed (pip install "jax[cpu]")')
            if device == "cuda":  # RuntimeError without a GPU: reported as skipped
                gpu = self.lib.devices("gpu")[0]
                self.lib.config.update("jax_default_device", gpu)
        else:
            import backend as B

            self.lib = B.get_backend(name)  # BackendUnavailableError says why
            # Free functions dispatch through the current backend.
            B.use(self.lib)
        x, t, self.source = load_data(data_dir, rows)
        self.x, self.t = self._arrays(x, t)
        self.x_eval, self.t_eval = self._arrays(x[:EVAL_ROWS], t[:EVAL_ROWS])

    def _arrays(self, x, t):
        if self.name == "torch":
            torch = self.lib
            return torch.from_numpy(x).to(self.device), torch.from_numpy(t).to(
                self.device
            )
        if self.name == "jax":
            jnp = self.lib.numpy
            return jnp.asarray(x), jnp.asarray(t.astype(np.int32))
        return self.lib.asarray(x), self.lib.asarray(t)

    def info(self) -> dict:
        """Versions and thread counts that matter for this contender."""
        out = {"backend": self.name, "cpu_count": os.cpu_count()}
        if self.name == "torch":
            out.update(torch=self.lib.__version__, threads=self.lib.get_num_threads())
        elif self.name == "jax":
            out.update(jax=self.lib.__version__, device=str(self.lib.devices()[0]))
        else:
            out.update(describe=self.lib.describe(), numpy=np.__version__)
            if self.name == "numba":
                import numba

                out.update(numba=numba.__version__, threads=numba.get_num_threads())
        return out

    def network(self, config: str, hidden, seed: int = 0):
        from chapter6_nets import JaxNet, TorchNet, XpnetNet, he_params

        params = he_params((784, *hidden, 10), CONFIGS[config], seed=seed)
        if self.name == "torch":
            return TorchNet(self.lib, params, CONFIGS[config], device=self.device)
        if self.name == "jax":
            return JaxNet(self.lib, params, CONFIGS[config])
        return XpnetNet(self.lib, params, CONFIGS[config])

    def run(self, config: str, hidden, batch: int, steps: int, seed: int) -> dict:
        """Train a fresh network ``steps`` steps; seconds and losses."""
        net = self.network(config, hidden)
        n = int(self.x.shape[0])
        idx = np.random.default_rng(seed).integers(0, n, (steps, batch))
        before = net.eval_loss(self.x_eval, self.t_eval)
        rows = net.indices(idx)
        net.sync()
        start, cpu = time.perf_counter(), time.process_time()
        net.train(self.x, self.t, rows)
        net.sync()
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
        after = net.eval_loss(self.x_eval, self.t_eval)
        return {
            "seconds": seconds,
            "cpu_seconds": cpu,
            "loss_before": before,
            "loss_after": after,
        }


def worker_main(name: str, data_dir, rows, device: str = "cpu") -> int:
    """Serve JSON-line commands on stdin: {"config", "hidden", "batch", "steps",
    "seed"} -> {"seconds", "loss_before", "loss_after"}; "quit" ends."""
    sys.path.insert(0, str(HERE))
    out = sys.stdout
    sys.stdout = sys.stderr  # library chatter must not corrupt the protocol
    try:
        worker = Worker(name, data_dir, rows, device)
    except Exception as exc:  # the driver reports the contender as skipped
        out.write(json.dumps({"skip": f"{type(exc).__name__}: {exc}"}) + "\n")
        out.flush()
        return 0
    out.write(json.dumps({"ready": worker.info(), "data": worker.source}) + "\n")
    out.flush()
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd == "quit":
            break
        out.write(json.dumps(worker.run(**cmd)) + "\n")
        out.flush()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=("numpy", "numba", "cupy", "torch", "jax"))
    parser.add_argument("--data-dir")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    return worker_main(args.name, args.data_dir, args.rows, args.device)


if __name__ == "__main__":
    sys.exit(main())
