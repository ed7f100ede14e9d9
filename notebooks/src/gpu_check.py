# Source of notebooks/gpu_check.ipynb: edit here, then run notebooks/build.py.

# %% [markdown]
# # Check xpnet on your GPU
#
# This notebook runs xpnet's GPU report: the GPU tests, the command-line tools
# on the GPU, xpnet against PyTorch and JAX on the same GPU, and CPU against
# GPU timings. It takes about 8 minutes and ends with a table to send back.
#
# **Google Colab:** *Runtime > Change runtime type > T4 GPU*, then set
# `REPO_URL` in the next cell to the address of the xpnet repository and run
# all cells. **Your own machine:** open this notebook from a clone of the
# repository (it finds the clone and installs nothing when
# `XPNET_SKIP_INSTALL=1`), or run `python bench/gpu_report.py` in the clone.
#
# Without real data the report uses synthetic images of the right shapes: the
# timings are the same, the accuracies are not meaningful.

# %%
import os
import shutil
import subprocess
import sys
from pathlib import Path

from IPython.display import Markdown, display

# The repository to install from: set this (a git URL or a local path). Not
# needed when this notebook runs inside a clone of the repository.
REPO_URL = os.environ.get("XPNET_REPO_URL", "https://github.com/OWNER/xpnet")
# CUDA 12 machines (Colab's T4) use the cuda12 extra; CUDA 13 ones the cuda13.
EXTRA = os.environ.get("XPNET_CUDA_EXTRA", "cuda12")


def find_checkout():
    """The clone this notebook sits in (or under the working folder), if any."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents, here / "xpnet"):
        if (folder / "bench" / "gpu_report.py").is_file():
            return folder
    return None


REPO = find_checkout()
if REPO is None:
    if "OWNER" in REPO_URL:
        raise RuntimeError("set REPO_URL (first lines of this cell) to xpnet's URL")
    subprocess.run(["git", "clone", "--depth", "1", REPO_URL, "xpnet"], check=True)
    REPO = Path("xpnet").resolve()
print("repository:", REPO)

if os.environ.get("XPNET_SKIP_INSTALL") == "1":
    print("install skipped (XPNET_SKIP_INSTALL=1): using what is installed")
else:
    # pytest and pytest-benchmark run the report's tests and timings; PyTorch
    # and JAX are used where already installed (Colab has both).
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    subprocess.run(
        [*pip, "-e", f"{REPO}[{EXTRA}]", "pytest", "pytest-benchmark"], check=True
    )
    print(f"installed xpnet[{EXTRA}], pytest, pytest-benchmark")

# %% [markdown]
# ## Run the report
#
# Needs an NVIDIA GPU: without one, this cell says so and stops here, and
# nothing below runs. Progress is printed stage by stage; each stage has a time
# budget, and a stage that runs out keeps (and reports) what it finished.

# %%
OUT = REPO / "runs" / "gpu" / "notebook"


def gpu_present() -> bool:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    return subprocess.run([smi, "-L"], capture_output=True).returncode == 0


if not gpu_present():
    print(
        "STOPPED HERE: no NVIDIA GPU on this machine (nvidia-smi finds none), so "
        "the report cannot run. In Colab: Runtime > Change runtime type > T4 GPU, "
        "then run all cells again."
    )
else:
    shutil.rmtree(OUT, ignore_errors=True)
    report = subprocess.Popen(
        [sys.executable, "bench/gpu_report.py", "--out", str(OUT)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in report.stdout:
        print(line, end="")
    print("exit status", report.wait())

# %% [markdown]
# ## The table
#
# Paste `report.md` (shown below) into a new issue of the repository, titled
# "GPU report: <your GPU>", and attach `report.json` from the same folder.

# %%
md = OUT / "report.md"
if md.is_file():
    display(Markdown(md.read_text()))
    print(f"to send: {md} (and {OUT / 'report.json'}); new issue at {REPO_URL}")
else:
    print("no report: the GPU stage above did not run")
