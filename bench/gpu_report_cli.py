"""The command-line stage of ``bench/gpu_report.py``: the CLIs on the GPU.

``train.py --device cuda``, its checkpoint resumed on the CPU and that one
resumed on the GPU again, a diverging run, and ``python -m nn.inference`` on
the GPU and on the CPU, whose predictions must agree except on near-ties.
Data: ``$XPNET_SHARED_DATA`` or ``../shared/data`` when present, else small
synthetic IDX files and weights written into the output folder.
"""

from __future__ import annotations

import gzip
import os
import pickle
import re
import shutil
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: GPU and CPU correct-prediction counts of chapter 3's inference may differ by
#: this many (float32 sums in another order flip near-ties).
COUNT_TOLERANCE = 2
#: A prediction may differ between devices only where its top two scores are
#: closer than this, relative to the larger.
NEAR_TIE = 1e-5


def _write_idx(path: Path, array) -> None:
    import numpy as np

    array = np.ascontiguousarray(array, dtype=np.uint8)
    head = b"\x00\x00\x08" + bytes([array.ndim])
    head += b"".join(struct.pack(">i", n) for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(head + array.tobytes())


def synthetic_data(folder: Path, train: int, test: int) -> dict:
    """MNIST-shaped IDX files (``fashion-mnist`` and ``mnist`` folders) and the
    book's weight shapes, random: the CLIs run the same code on them."""
    import numpy as np

    rng = np.random.default_rng(0)
    for name in ("fashion-mnist", "mnist"):
        d = folder / name
        d.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", train), ("t10k", test)):
            images = rng.integers(0, 256, (n, 28, 28)) * (rng.random((n, 28, 28)) < 0.2)
            _write_idx(d / f"{split}-images-idx3-ubyte.gz", images)
            _write_idx(d / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    sizes = [784, 50, 100, 10]
    weights = {}
    for i in range(3):
        weights[f"W{i + 1}"] = rng.standard_normal(sizes[i : i + 2]).astype("float32")
        weights[f"b{i + 1}"] = np.zeros(sizes[i + 1], dtype="float32")
    book = folder / "book"
    book.mkdir(exist_ok=True)
    with open(book / "sample_weight.pkl", "wb") as f:
        pickle.dump(weights, f)
    return {"source": f"synthetic ({train} train / {test} test rows)", "dir": folder}


def find_data(args, out: Path) -> dict:
    env = os.environ.get("XPNET_SHARED_DATA")
    for base in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "data"]:
        needed = [base / "fashion-mnist" / "train-images-idx3-ubyte.gz"]
        needed += [base / "mnist" / "t10k-images-idx3-ubyte.gz"]
        needed += [base / "book" / "sample_weight.pkl"]
        if not args.synthetic_data and all(p.is_file() for p in needed):
            return {"source": f"real ({base})", "dir": base}
    rows = (240, 100) if args.smoke else (6000, 1000)
    return synthetic_data(out / "data", *rows)


def _expect(pattern: str):
    def check(proc):
        if not re.search(pattern, proc.stdout + proc.stderr):
            return f"output lacks {pattern!r}"
        return None

    return check


def part_cli(r, data: dict, limit: float) -> None:
    """The CLI checks; ``r``: the report's Runner."""
    d = Path(data["dir"])
    run = r.out / "cli" / "run"
    shutil.rmtree(run.parent, ignore_errors=True)
    iters = (20, 30, 40, 10) if r.args.smoke else (400, 600, 800, 200)
    fashion = ["--dataset", "fashion-mnist", "--data-dir", d / "fashion-mnist"]
    # Synthetic data has random labels: nothing to learn, and that is fine here.
    train = [ROOT / "train.py", *fashion, "--quiet", "--allow-not-learning"]
    # The first run on a fresh machine compiles CuPy's kernels (NVRTC, then
    # cached on disk): give each run a minute if the budget has it.
    each = max(limit / 7, 60)
    done = r"final train acc"
    r.run(
        "cli",
        "train.py --device cuda",
        r.python(
            *train,
            "--device",
            "cuda",
            "--iters",
            iters[0],
            "--eval-every",
            iters[3],
            "--seed",
            5,
            "--out",
            run,
        ),
        each,
        check=_expect(done),
    )
    r.run(
        "cli",
        "GPU checkpoint resumed on the CPU",
        r.python(
            ROOT / "train.py",
            "--resume",
            run,
            "--iters",
            iters[1],
            "--device",
            "cpu",
            "--quiet",
            *fashion,
        ),
        each,
        check=_expect(done),
    )
    r.run(
        "cli",
        "CPU checkpoint resumed on the GPU",
        r.python(
            ROOT / "train.py",
            "--resume",
            run,
            "--iters",
            iters[2],
            "--device",
            "cuda",
            "--quiet",
            *fashion,
        ),
        each,
        check=_expect(done),
    )
    r.run(
        "cli",
        "checkpoint read back on both devices",
        r.python("-c", _CHECKPOINT_CHECK, run, iters[2]),
        each,
    )
    r.run(
        "cli",
        "train.py --device cuda diverging (lr 1e20)",
        r.python(
            *train,
            "--device",
            "cuda",
            "--iters",
            iters[0],
            "--lr",
            "1e20",
            "--eval-every",
            iters[3],
            "--seed",
            1,
            "--out",
            r.out / "cli" / "diverge",
        ),
        each,
        check=_expect("training diverged"),
        rc=1,
    )
    infer = [
        "-m",
        "nn.inference",
        "--weights",
        d / "book" / "sample_weight.pkl",
        "--data-dir",
        d / "mnist",
        "--no-download",
    ]
    gpu = r.run(
        "cli",
        "nn.inference --device cuda",
        r.python(*infer, "--device", "cuda"),
        each,
        check=_expect(r"Accuracy:"),
    )
    cpu = r.run(
        "cli",
        "nn.inference --device numpy",
        r.python(*infer, "--device", "numpy"),
        each,
        check=_expect(r"Accuracy:"),
    )
    _same_accuracy(gpu, cpu)
    r.run(
        "cli",
        "inference predictions, GPU against CPU",
        r.python(
            "-c",
            _PREDICTION_CHECK,
            d / "book" / "sample_weight.pkl",
            d / "mnist",
            NEAR_TIE,
        ),
        each,
    )


_CHECKPOINT_CHECK = """
import sys, numpy as np, backend as B
from nn.training.checkpoint import load_checkpoint
from nn.two_layer_net import TwoLayerNet
run, iters = sys.argv[1], int(sys.argv[2])
ck = load_checkpoint(run)
assert ck.iteration == iters, (ck.iteration, iters)
x = np.random.default_rng(0).random((64, 784)).astype(np.float32)
t = np.arange(64) % 10
counts = []
for name in ("numpy", "cupy"):
    be = B.get_backend(name)
    p = ck.params
    net = TwoLayerNet(784, p["W1"].shape[1], 10, backend=be, dtype=p["W1"].dtype.name)
    net.params.update({k: be.asarray(v) for k, v in p.items()})
    counts.append(net.count_correct(be.asarray(x), be.asarray(t))[0])
print("iteration", ck.iteration, "correct on numpy / cupy:", counts)
assert abs(counts[0] - counts[1]) <= 1, counts
"""


_PREDICTION_CHECK = """
import sys, numpy as np, backend as B
from nn.data.mnist import load_mnist_split
from nn.inference import load_net
weights, data_dir, near_tie = sys.argv[1], sys.argv[2], float(sys.argv[3])
x, t = load_mnist_split("test", normalize=True, data_dir=data_dir, download=False)
scores = {}
for name in ("numpy", "cupy"):
    be = B.get_backend(name)
    net = load_net(weights, be)
    scores[name] = B.to_numpy(net.predict(be.asarray(x))).astype(np.float64)
cpu, gpu = scores["numpy"], scores["cupy"]
top2 = np.sort(cpu, axis=1)[:, -2:]
gap = (top2[:, 1] - top2[:, 0]) / np.maximum(np.abs(top2[:, 1]), 1e-30)
differ = np.flatnonzero(cpu.argmax(1) != gpu.argmax(1))
ties = int(np.sum(gap[differ] < near_tie))
print(f"{len(t)} images: {len(differ)} predictions differ, {ties} of them near-ties")
bad = differ[gap[differ] >= near_tie]
assert bad.size == 0, f"predictions differ beyond near-ties at images {bad[:10]}"
"""


def _counts(entry: dict):
    found = re.search(r"\((\d+)/(\d+) correct\)", entry.get("stdout", ""))
    if found:
        return int(found.group(1)), int(found.group(2))
    found = re.search(r"Accuracy:([\d.]+)", entry.get("stdout", ""))
    return (None, None) if not found else (float(found.group(1)), 1)


def _same_accuracy(gpu: dict, cpu: dict) -> None:
    """The GPU's count of correct predictions within ``COUNT_TOLERANCE`` of the
    CPU's (a float32 near-tie may round the other way on the other device)."""
    (g, n), (c, _) = _counts(gpu), _counts(cpu)
    if g is None or c is None or gpu["status"] != "passed":
        return
    tolerance = COUNT_TOLERANCE if n > 1 else COUNT_TOLERANCE * 1e-4
    if abs(g - c) > tolerance:
        gpu["status"] = "failed"
        gpu["detail"] = f"GPU {g} but CPU {c} correct (tolerance {COUNT_TOLERANCE})"
    else:
        gpu["detail"] = f"{g} correct on the GPU, {c} on the CPU"
