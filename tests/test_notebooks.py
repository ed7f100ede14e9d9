"""The chapter notebooks: built from their sources, and run top to bottom on real data.

Each run checks what the notebook prints against published or hand-derived
values (the book's 0.9352, f'(5) = 0.2, the apple prices, ...), not only that
it finished.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

NOTEBOOKS = ROOT / "notebooks"
NAMES = (
    "ch03_inference",
    "ch04_numerical_gradient",
    "ch05_backprop",
    "ch06_techniques",
)
#: Notebooks that are not a chapter (no real data needed).
OTHERS = ("gpu_check",)
#: Seconds a single cell may take before the run fails (CI machines are slow).
CELL_TIMEOUT = 600


def _build_module():
    spec = importlib.util.spec_from_file_location("nb_build", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _floats(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d*)?(?:e[-+]?\d+)?", text)]


def _line(text: str, prefix: str) -> str:
    """The first output line starting with ``prefix`` (a clear failure if none)."""
    for line in text.splitlines():
        if line.startswith(prefix):
            return line[len(prefix) :]
    raise AssertionError(f"no output line starts with {prefix!r}:\n{text}")


def test_notebooks_are_built_from_their_sources_without_outputs():
    pytest.importorskip("nbformat")
    build = _build_module()
    targets = build.targets()
    assert sorted(p.stem for p in targets) == sorted(NAMES + OTHERS)
    for notebook, source in targets.items():
        assert notebook.exists(), f"run python notebooks/build.py ({notebook.name})"
        assert notebook.read_text(encoding="utf-8") == build.render(source), (
            f"{notebook.name} is stale or has outputs: run python notebooks/build.py"
        )


def test_build_parses_markdown_magics_and_drops_the_header():
    pytest.importorskip("nbformat")
    cells = _build_module().parse(
        "# header, dropped\n# %% [markdown]\n# # Title\n#\n# text\n"
        "# %%\n# %matplotlib inline\nx = 1  # comment\n\n# %%\n\n"
    )
    assert cells == [
        ("markdown", "# Title\n\ntext"),
        ("code", "%matplotlib inline\nx = 1  # comment"),
    ]


def _run(name: str, shared_data, monkeypatch):
    """Execute a notebook in a fresh kernel -> (stdout and results text, PNG count)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("XPNET_DATA_DIR", str(shared_data))
    monkeypatch.setenv(
        "XPNET_SAMPLE_WEIGHT", str(shared_data / "book" / "sample_weight.pkl")
    )
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    texts, pngs = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stdout":
                texts.append(out.text)
            data = out.get("data", {})
            pngs += "image/png" in data
            if "image/png" not in data and "text/plain" in data:
                texts.append(data["text/plain"] + "\n")
    return "".join(texts), pngs


@pytest.mark.slow
def test_ch03_reproduces_the_books_accuracy(shared_data, monkeypatch):
    text, pngs = _run("ch03_inference", shared_data, monkeypatch)
    assert text.count("Accuracy:0.9352") == 2  # per sample and batched
    batch_lines = re.findall(r"batch +(\d+): accuracy (\S+),", text)
    assert [int(b) for b, _ in batch_lines] == [1, 10, 100, 1000, 10000]
    assert {acc for _, acc in batch_lines} == {"0.9352"}
    softmax = _floats(_line(text, "softmax "))
    assert softmax[:3] == pytest.approx([0.01821127, 0.24519181, 0.73659691], abs=1e-8)
    assert "x_test (10000, 784) float32 t_test (10000,) uint8" in text
    assert pngs == 2  # the digit grid and the misclassified digits


@pytest.mark.slow
def test_ch04_derivatives_descent_and_numerical_training(shared_data, monkeypatch):
    text, pngs = _run("ch04_numerical_gradient", shared_data, monkeypatch)
    lines = text.splitlines()
    start = lines.index(next(s for s in lines if s.startswith("data:"))) + 1
    # f(x) = 0.01 x^2 + 0.1 x: f'(5) = 0.2, f'(10) = 0.3; partials of x0^2 + x1^2.
    d5, d10 = float(lines[start]), float(lines[start + 1])
    assert (d5, d10) == pytest.approx((0.2, 0.3), abs=1e-9)
    assert float(lines[start + 3]) == pytest.approx(6.0, abs=1e-9)
    assert float(lines[start + 4]) == pytest.approx(8.0, abs=1e-9)
    assert _floats(_line(text, "[3.0, 4.0] ")) == pytest.approx([6, 8], abs=1e-6)
    assert _floats(_line(text, "[0.0, 2.0] ")) == pytest.approx([0, 4], abs=1e-6)
    # Gradient descent from (-3, 4): converges, diverges, barely moves.
    assert max(map(abs, _floats(_line(text, "lr=0.1: ")))) < 1e-8
    assert max(map(abs, _floats(_line(text, "lr=10: ")))) > 1e6
    assert _floats(_line(text, "lr=1e-10: ")) == pytest.approx([-3, 4], abs=1e-6)
    # SimpleNet with the book's W: loss 0.928068...
    assert float(_line(text, "loss ")) == pytest.approx(0.9280685, abs=1e-6)
    assert "argmax 2" in text
    # The fast numerical gradient agrees with the textbook loop and trains.
    assert "fast numerical gradient on this backend: True" in text
    assert float(_line(text, "max |fast - loop| = ")) < 1e-8
    accs = [float(a) for a in re.findall(r"test acc (\d\.\d+)", text)]
    assert accs[0] < 0.2 and accs[-1] > 0.4, accs
    assert float(_line(text, "final test accuracy ")) == accs[-1]
    assert pngs == 5  # tangent, quiver, descent paths, loss, accuracy


@pytest.mark.slow
def test_ch05_apples_gradient_check_training_and_timing(
    shared_data, monkeypatch, tmp_path
):
    bench = tmp_path / "pass-1.json"  # what pytest-benchmark writes, trimmed
    bench.write_text(
        json.dumps(
            {
                "benchmarks": [
                    {
                        "group": "gradients",
                        "name": f"test_gradient[{variant}]",
                        "extra_info": {"variant": variant, "size": "784-50-10 b100"},
                        "stats": {"median": seconds},
                    }
                    for variant, seconds in (("numpy-loop", 17.0), ("numpy-fast", 0.05))
                ]
            }
        )
    )
    monkeypatch.setenv("XPNET_BENCH_JSON", str(bench))
    text, pngs = _run("ch05_backprop", shared_data, monkeypatch)
    assert "price: 220.00000000000003" in text
    assert "dApple: 2.2 dApple_num: 110.00000000000001 dTax: 200" in text
    assert "price: 715.0000000000001" in text
    assert "dOrange: 3.3000000000000003 dOrange_num: 165.0 dTax: 650" in text
    table = dict(re.findall(r"^(W1|b1|W2|b2) +\([\d, ]+\) +(\S+)$", text, re.M))
    assert set(table) == {"W1", "b1", "W2", "b2"}
    assert all(float(v) < 1e-6 for v in table.values()), table
    assert float(table["W1"]) < 1e-8
    final = re.search(r"final train acc (\S+), test acc (\S+) \|", text)
    assert 0.78 < float(final.group(2)) < 0.9, final.group(0)
    for batch in (10, 100):
        assert float(_line(text, f"batch {batch:>3}: test acc ")) > 0.6
    grads = dict(
        re.findall(r"^gradient (\S+(?: \(estimate\))?) +(\S+) ms$", text, re.M)
    )
    backends = {k.split("-")[0] for k in grads}
    assert {"numpy", "numba"} <= backends or backends == {"numpy"}, grads
    for name in backends:
        backprop = float(grads[f"{name}-backprop"])
        assert float(grads[f"{name}-fast"]) > backprop > 0
    loop = next(float(v) for k, v in grads.items() if "loop" in k)
    assert loop > max(float(v) for k, v in grads.items() if "loop" not in k)
    assert "no benchmark results" not in text
    assert pngs == 5  # loss, accuracy, batch sizes, time bars, bench/ time bars


def test_gpu_check_runs_up_to_the_gpu_and_says_it_stopped_there(monkeypatch):
    """The GPU notebook executes (install skipped, the repository found from
    the notebook's folder) until it needs a GPU; there it says so and stops
    without an error, and its last cell says that no report was made."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("a GPU machine: the notebook would run the whole report")
    monkeypatch.setenv("XPNET_SKIP_INSTALL", "1")
    nb = nbformat.read(NOTEBOOKS / "gpu_check.ipynb", as_version=4)
    nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    outputs = [
        "".join(o.get("text", "") for o in cell.get("outputs", []))
        for cell in nb.cells
        if cell.cell_type == "code"
    ]
    assert len(outputs) == 3
    assert f"repository: {ROOT}" in outputs[0]
    assert "install skipped (XPNET_SKIP_INSTALL=1)" in outputs[0]
    assert "STOPPED HERE: no NVIDIA GPU on this machine" in outputs[1]
    assert "no report: the GPU stage above did not run" in outputs[2]
    errors = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in errors if o.output_type == "error"]


@pytest.mark.slow
def test_ch06_optimizers_initialisation_batchnorm_and_regularisation(
    shared_data, monkeypatch
):
    text, pngs = _run("ch06_techniques", shared_data, monkeypatch)
    # The toy function's minimum is (0, 0): Adam and Momentum get near it.
    ends = {
        name: _floats(_line(text, f"{name:>8}: after 30 steps at "))
        for name in ("SGD", "Momentum", "AdaGrad", "Adam")
    }
    assert all(abs(y) < 1 for _, y in ends.values()), ends
    assert abs(ends["AdaGrad"][0]) < abs(ends["SGD"][0]) < 7, ends
    # Figure 6-9: every optimizer learns; Adam ends below plain SGD.
    opt = {
        name: _floats(_line(text, f"{name:>8}: loss "))
        for name in ("SGD", "Momentum", "AdaGrad", "Adam")
    }
    assert all(end < start for start, end in opt.values()), opt
    assert opt["Adam"][1] < opt["SGD"][1], opt
    # Figure 6-15: std 0.01 does not learn in 300 SGD steps; He does.
    init = {
        name: _floats(_line(text, f"{name:>8}: loss "))
        for name in ("std=0.01", "Xavier", "He")
    }
    assert init["std=0.01"][1] > 2.2 and init["He"][1] < init["std=0.01"][1] - 0.5
    # Figure 6-19: with scale 0.01 only Batch Normalization learns.
    bn, plain = _floats(_line(text, "scale 0.01: accuracy with BN "))
    assert bn > 0.5 and plain < 0.2, (bn, plain)
    # Figures 6-20, 6-21, 6-23: 300 images learnt by heart; the gap narrows.
    gaps = {}
    for name in ("no regularisation", "weight decay 0.1", "Dropout 0.2"):
        train, test, gap = _floats(_line(text, f"{name}: train acc "))[:3]
        assert 0.3 < test <= 1.0 and 0.3 < train <= 1.0, (name, train, test)
        gaps[name] = gap
    assert gaps["no regularisation"] > 0.1, gaps  # it overfits
    assert gaps["weight decay 0.1"] < gaps["no regularisation"], gaps
    assert gaps["Dropout 0.2"] < gaps["no regularisation"], gaps
    assert pngs == 5  # paths, optimizers, initial weights, BN grid, overfitting
