"""The PyTorch and JAX peers of ``bench/gpu_peers.py``, on the CPU.

Their code is what runs on the GPU in the report (``device="cuda"`` there):
here each peer, started from xpnet's own weights, must take the same steps as
xpnet's NumPy backend, and the script must time every variant it can build.
Each test skips when its library is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backend as B

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
SIZES = (784, 20, 10)
STEPS = 5


@pytest.fixture
def bench_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))


def _batches(n=STEPS, batch=16, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.random((n * batch, SIZES[0]), dtype=np.float32)
    t = rng.integers(0, SIZES[2], n * batch)
    return x, t, np.arange(n * batch).reshape(n, batch)


def _xpnet_reference(x, t, idx):
    """xpnet on NumPy, float32: initial params, the losses, final params."""
    import nn

    be = B.get_backend("numpy")
    net = nn.TwoLayerNet(*SIZES, backend=be, dtype="float32", rng=0)
    start = {k: np.array(v) for k, v in net.params.items()}
    opt = nn.SGD(lr=0.1)
    losses = [float(net.train_step(x[i], t[i], opt)) for i in idx]
    return start, losses, {k: np.array(v) for k, v in net.params.items()}


def _torch_steps(start, x, t, idx):
    torch = pytest.importorskip("torch")
    from torch_reference import TorchTwoLayerNet

    net = TorchTwoLayerNet(torch, *SIZES, torch.float32, lr=0.1, device="cpu")
    with torch.no_grad():
        for layer, n in ((net.model[0], "1"), (net.model[2], "2")):
            layer.weight.copy_(torch.from_numpy(start["W" + n].T.copy()))
            layer.bias.copy_(torch.from_numpy(start["b" + n]))
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    losses = [float(net.step(xt[i], tt[i])) for i in torch.from_numpy(idx)]
    final = {
        "W1": net.model[0].weight.detach().numpy().T,
        "b1": net.model[0].bias.detach().numpy(),
        "W2": net.model[2].weight.detach().numpy().T,
        "b2": net.model[2].bias.detach().numpy(),
    }
    return losses, final, int(net.count_correct(xt, tt))


def _jax_steps(start, x, t, idx, scan):
    jax = pytest.importorskip("jax")
    from jax_two_layer import JaxTwoLayerNet

    net = JaxTwoLayerNet(jax, *SIZES, lr=0.1, device=jax.devices("cpu")[0])
    net.params = {k: net.put(v) for k, v in start.items()}
    xj, tj = net.put(x), net.put(t.astype(np.int32))
    ij = net.put(idx.astype(np.int32))
    if scan:
        losses = [float(v) for v in net.steps(xj, tj, ij)]
    else:
        losses = [float(net.step(xj, tj, ij[i])) for i in range(len(idx))]
    final = {k: np.asarray(v) for k, v in net.params.items()}
    return losses, final, int(net.count_correct(xj, tj))


@pytest.mark.parametrize("peer", ["torch", "jax-jit", "jax-scan"])
def test_peer_takes_the_same_steps_as_xpnet(bench_path, peer):
    x, t, idx = _batches()
    start, want_losses, want = _xpnet_reference(x, t, idx)
    if peer == "torch":
        losses, final, correct = _torch_steps(start, x, t, idx)
    else:
        losses, final, correct = _jax_steps(start, x, t, idx, scan=peer == "jax-scan")
    np.testing.assert_allclose(losses, want_losses, rtol=1e-5)
    assert losses[-1] < losses[0]  # it learns the batches it sees
    for k in want:
        np.testing.assert_allclose(final[k], want[k], rtol=1e-4, atol=1e-6)
    import nn

    net = nn.TwoLayerNet(*SIZES, backend="numpy", dtype="float32", rng=0)
    net.params.update(want)
    expected = int(net.count_correct(x, t)[0])
    assert abs(correct - expected) <= 1  # a float32 near-tie may flip one


def test_the_whole_run_evaluates_18_times_at_the_books_sizes(bench_path):
    from gpu_peer_variants import chunks, run_indices

    steps = chunks(10_000, 600)
    assert sum(steps) == 10_000 and len(steps) + 1 == 18
    assert steps[-1] == 400 and set(steps[:-1]) == {600}
    idx = run_indices(1000, 100, 25, seed=0)
    assert idx.shape == (25, 100)
    # Each epoch (10 steps here) visits every training row once.
    for e in range(2):
        assert sorted(idx[e * 10 : (e + 1) * 10].ravel()) == list(range(1000))


@pytest.mark.slow
def test_peers_script_times_every_variant_on_the_cpu(tmp_path):
    if not any(
        __import__("importlib").util.find_spec(m) for m in ("torch", "jax")
    ):  # pragma: no cover - only without either library
        pytest.skip("neither PyTorch nor JAX is installed")
    out = tmp_path / "peers.jsonl"
    cmd = [sys.executable, str(BENCH / "gpu_peers.py"), "--out", str(out)]
    cmd += ["--device", "cpu", "--smoke", "--rounds", "1"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in out.read_text().splitlines()]
    plan = next(e for e in events if e["event"] == "plan")
    assert "xpnet" in plan["variants"]
    timings = [e for e in events if e["event"] == "peer"]
    assert len(timings) == len(plan["variants"]) * 3  # step, evaluate, run
    assert all(e["seconds"] > 0 for e in timings)
    runs = [e for e in timings if e["task"] == "run"]
    assert all(0.0 <= e["accuracy"] <= 1.0 for e in runs)
    skipped = {e["variant"]: e["reason"] for e in events if e["event"] == "skipped"}
    if "torch-eager" in plan["variants"]:
        assert "CUDA" in skipped["torch-graph"]  # no graphs without CUDA
    assert events[-1]["event"] == "finished"
    ready = {e["worker"]: e for e in events if e["event"] == "ready"}
    assert ready["xpnet"]["torch_loaded"] is False  # each library in its process
    if "jax" in ready:
        assert ready["jax"]["torch_loaded"] is False
