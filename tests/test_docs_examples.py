"""The Python examples on the docs pages run as written, on the real data.

Each ```python block of the pages below runs in a fresh interpreter in an empty
folder (so its ``runs/`` go there), with ``../shared/data`` pointing at the real
data. Where a page shows the output in a ```text block right after the example,
the example must print exactly that.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = (
    "index.md",
    "install.md",
    "data.md",
    "training.md",
    "inference.md",
    "numerical-gradients.md",
    *(f"api/{p.name}" for p in sorted((ROOT / "docs" / "api").glob("*.md"))),
)
BLOCK = re.compile(r"^```python\n(.*?)^```\n(?:\n```text\n(.*?)^```\n)?", re.S | re.M)


def examples():
    for page in PAGES:
        text = (ROOT / "docs" / page).read_text(encoding="utf-8")
        for n, match in enumerate(BLOCK.finditer(text), 1):
            yield pytest.param(match.group(1), match.group(2), id=f"{page}-{n}")


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize(("code", "expected"), list(examples()))
def test_docs_example_runs(code, expected, shared_data, tmp_path):
    code = code.replace("../shared/data", str(shared_data))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XPNET_BACKEND": "numpy"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    if expected is not None:
        assert done.stdout == expected


def test_every_page_has_an_example():
    assert len(list(examples())) >= len(PAGES) - 1  # install.md's is the only other
