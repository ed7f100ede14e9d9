"""nn/ model code goes through the backend shim: it never imports an array library.

Only the host-side I/O and plotting modules listed in HOST_SIDE (IDX parsing,
the parse cache, checkpoints, pickles, figures) may import NumPy; every other
module of nn/, new ones included, may not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NN = Path(__file__).resolve().parents[1] / "nn"
#: The book's math: these must exist, and like every nn/ module not listed in
#: HOST_SIDE they may not import an array library.
REQUIRED = [
    "functions.py",
    "gradient.py",
    "layers.py",
    "simple_net.py",
    "two_layer_net.py",
    "three_layer_net.py",
    "optimizer.py",
    "training/trainer.py",
]
#: Host-side I/O and plotting, allowed to use NumPy directly (paths below nn/).
HOST_SIDE = {
    "training/checkpoint.py",
    "figures/calculus.py",  # plot grids and contour values for matplotlib
    "figures/chapter6.py",  # curves for matplotlib
    # Chapter 6's experiments: batch indices drawn and loss curves smoothed on the
    # host; the networks themselves run on the backend.
    "figures/chapter6_runs.py",
    "data/idx.py",
    "data/mnist.py",
    "data/parsed.py",
    "data/safe_pickle.py",
    "data/book_weights.py",
}
#: Every other module, in every subfolder (a new one cannot escape the check).
OTHERS = sorted(
    p.relative_to(NN).as_posix()
    for p in NN.rglob("*.py")
    if p.relative_to(NN).as_posix() not in HOST_SIDE | set(REQUIRED)
)
FORBIDDEN = {"numpy", "cupy", "numba"}


def _imported_roots(source: str) -> list[tuple[int, str]]:
    """(line, top-level module) of every import, however it is spelled."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in {
            "__import__",
            "import_module",
        }:
            if node.args and isinstance(node.args[0], ast.Constant):
                found.append((node.lineno, str(node.args[0].value).split(".")[0]))
    return found


@pytest.mark.parametrize("name", REQUIRED + OTHERS)
def test_model_module_does_not_import_array_libraries(name):
    path = NN / name
    assert path.exists(), f"nn/{name} is missing"
    bad = [
        f"nn/{name}:{line} imports {module}"
        for line, module in _imported_roots(path.read_text(encoding="utf-8"))
        if module in FORBIDDEN
    ]
    assert not bad, "; ".join(bad) + " (use `import backend as B` instead)"


@pytest.mark.parametrize(
    "source",
    [
        "import numpy as np",
        "import os, numpy",
        "from numpy import zeros",
        "from numpy.random import default_rng",
        "def f():\n    import cupy\n",
        "np = __import__('numpy')",
    ],
)
def test_the_scanner_catches_every_spelling(source):
    assert any(module in FORBIDDEN for _, module in _imported_roots(source))


def test_the_walk_reaches_subfolders():
    # A module added in a subfolder must be scanned too.
    assert "training/loop.py" in OTHERS and "figures/base.py" in OTHERS
    assert all((NN / name).exists() for name in HOST_SIDE)


def test_the_scanner_allows_the_shim():
    assert _imported_roots("import backend as B\nfrom backend import H") == [
        (1, "backend"),
        (2, "backend"),
    ]
