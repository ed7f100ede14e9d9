"""The wheel as a user gets it, CUDA sources included: built, installed (not
editable) into a fresh venv, and run from a folder that is not the repository.

The fresh venv gets the wheel with ``--no-deps``; NumPy comes from the test's
own environment through a ``.pth`` line appended after the venv's
site-packages, so nothing is downloaded and ``nn`` / ``backend`` can only be
imported from the installed wheel (the test checks where they came from).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What the wheel may hold: the two packages and its own metadata.
TOP_LEVEL = {"nn", "backend"}
#: Never in the wheel.
FORBIDDEN = ("tests/", "bench/", "docs/", "examples/", "notebooks/")

pytestmark = pytest.mark.slow


def _source_files() -> list[str]:
    """The repository's files as a clone has them (tracked, or untracked and
    not ignored), so stale build output never reaches the wheel."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout to know the repository's files")
    return [name for name in out.decode().split("\0") if name]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``python -m build --wheel`` of a copy of the repository's files."""
    src = tmp_path_factory.mktemp("src")
    for name in _source_files():
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = dist.glob("xpnet-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict:
    """A fresh venv with the wheel installed; returns its env and bin folder."""
    home = tmp_path_factory.mktemp("venv") / "v"
    venv.create(home, with_pip=True)
    bindir = home / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    site = subprocess.run(
        [
            str(python),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # NumPy (and whatever else this environment has) after the venv's own
    # packages; the repository itself is not on that path.
    deps = Path(np.__file__).resolve().parents[1]
    assert not (deps / "nn" / "__init__.py").exists()
    (Path(site) / "zz_test_deps.pth").write_text(f"{deps}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    env["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    env.pop("XPNET_DATA_DIR", None)
    env.pop("XPNET_BACKEND", None)
    return {"env": env, "python": python, "site": Path(site), "bin": bindir}


def run(cmd, installed, cwd, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=installed["env"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_wheel_holds_the_packages_and_cuda_sources_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {
        n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")
    }
    assert tops == TOP_LEVEL, tops
    assert not [n for n in names if n.startswith(FORBIDDEN)]
    sources = sorted(
        p.relative_to(ROOT).as_posix()
        for pattern in ("backend/**/*.cu", "backend/**/*.cuh")
        for p in ROOT.glob(pattern)
    )
    assert sources and set(sources) <= set(names), (sources, names)
    modules = sorted(
        p.relative_to(ROOT).as_posix()
        for top in TOP_LEVEL
        for p in (ROOT / top).rglob("*.py")
    )
    assert set(modules) <= set(names), set(modules) - set(names)
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    metadata = zipfile.ZipFile(wheel).read(meta).decode()
    assert "Requires-Dist: numpy>=1.24" in metadata
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry).decode()
    assert "xpnet-train = nn.training.cli:main" in scripts, scripts


def test_imports_come_from_the_installed_wheel(installed, tmp_path):
    code = "import nn, backend; print(nn.__file__); print(backend.__file__)"
    proc = run([str(installed["python"]), "-c", code], installed, tmp_path)
    assert proc.returncode == 0, proc.stderr
    for line in proc.stdout.split():
        assert Path(line).resolve().is_relative_to(installed["site"].resolve()), line


def test_console_script_and_module_help(installed, tmp_path):
    script = installed["bin"] / "xpnet-train"
    assert script.is_file()
    proc = run([str(script), "--help"], installed, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "--device" in proc.stdout and "--resume" in proc.stdout
    proc = run(
        [str(installed["python"]), "-m", "nn.inference", "--help"], installed, tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "--weights" in proc.stdout and "--batch-size" in proc.stdout


@pytest.mark.realdata
def test_short_training_run_from_another_folder(installed, shared_data, tmp_path):
    out = tmp_path / "run"
    argv = ["xpnet-train", "--device", "cpu", "--dataset", "fashion-mnist"]
    argv += ["--data-dir", str(shared_data / "fashion-mnist"), "--iters", "50"]
    argv += ["--eval-every", "25", "--seed", "0", "--out", str(out), "--quiet"]
    proc = run(argv, installed, tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert (out / "checkpoint.npz").is_file() and (out / "metrics.csv").is_file()
    # 50 steps of batch 100 from random weights: well above chance (0.10).
    final = [line for line in proc.stdout.splitlines() if line.startswith("final")]
    assert final, proc.stdout
    test_acc = float(final[-1].split("test acc ")[1].split()[0])
    assert 0.3 < test_acc <= 1.0, final[-1]
