"""The layout keeps its design: ``backend`` is the ground floor, no import
cycles, backends live in their own folders and nothing picks a kernel by a
backend's name outside that backend's folder."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("backend", "nn")
#: The book's model code at the top of nn/.
MODEL = (
    "functions",
    "gradient",
    "layers",
    "optimizer",
    "simple_net",
    "two_layer_net",
    "three_layer_net",
)


def _modules() -> list[str]:
    """Dotted names of every module of both packages."""
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def _imports(module: str) -> set[str]:
    """The project modules that ``module`` imports anywhere in its source
    (top level or inside functions), resolved to modules that exist."""
    known = set(_modules())
    path = ROOT.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name in known and name != module:
                found.add(name)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a package importing its own submodules
    through its ``__init__`` is not one), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if node.startswith(dep + "."):
                continue  # a submodule importing its own package's __init__
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_import_backend_imports_no_nn_module():
    code = (
        "import sys, backend; "
        "print(sorted(m for m in sys.modules if m == 'nn' or m.startswith('nn.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_backend_sources_never_import_nn():
    bad = [
        f"{m} imports {dep}"
        for m in _modules()
        if m.startswith("backend")
        for dep in _imports(m)
        if dep.startswith("nn")
    ]
    assert not bad


def test_no_import_cycles():
    graph = {m: _imports(m) for m in _modules()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_model_code_never_imports_training():
    # nn/__init__.py (the public facade) re-exports the trainer; the book's
    # model modules themselves do not use it.
    model = [f"nn.{m}" for m in MODEL]
    bad = [f"{m} imports {d}" for m in model for d in _imports(m) if "training" in d]
    assert set(model) <= set(_modules()) and not bad


@pytest.mark.parametrize("module", _modules())
def test_every_module_imports_alone(module):
    out = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    # Optional libraries may be missing where the module needs them at import
    # (the compiled kernels of an uninstalled backend); anything else fails.
    assert out.returncode == 0 or "No module named 'numba'" in out.stderr, out.stderr


def test_no_name_tests_pick_kernels_outside_a_backend_folder():
    """Nothing chooses a kernel by comparing a backend's name, except inside
    that backend's own folder (``.name == "numba"`` and the like)."""
    bad = []
    for path in [
        *ROOT.joinpath("nn").rglob("*.py"),
        *ROOT.joinpath("backend").glob("*.py"),
    ]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute):
                if node.left.attr == "name" and any(
                    isinstance(c, ast.Constant)
                    and c.value in ("numpy", "numba", "cupy")
                    for c in node.comparators
                ):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad


def test_a_backend_is_one_folder_with_one_registry_entry():
    import backend as B

    for name, module in B._REGISTRY.items():
        folder = ROOT.joinpath(*module.split("."))
        assert (folder / "__init__.py").is_file(), f"{name}: {folder} is no package"
    assert set(B.NAMES) == set(B._REGISTRY) | {"auto"}
