"""Small promises of the documentation site: long commands wrap in code
blocks, and the chapters page says how to get Jupyter (an extra that exists)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_code_blocks_wrap_long_commands():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    match = re.search(r"^extra_css:\n((?:\s+- .+\n)+)", config, re.MULTILINE)
    assert match, "mkdocs.yml has no extra_css"
    sheets = re.findall(r"- (\S+)", match.group(1))
    css = "".join((ROOT / "docs" / s).read_text(encoding="utf-8") for s in sheets)
    rule = re.search(r"\.md-typeset pre > code\s*\{([^}]*)\}", css)
    assert rule and "white-space: pre-wrap" in rule.group(1)


def test_chapters_page_says_how_to_get_jupyter():
    page = (ROOT / "docs" / "chapters.md").read_text(encoding="utf-8")
    intro = page.split("\n\n", 2)[1]  # the paragraph under the title
    (extra,) = re.findall(r'pip install -e "\.\[(\w+)\]"', intro)
    assert "jupyter lab" in intro.lower()
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(rf'^{extra} = \[.*"jupyterlab>=', pyproject, re.MULTILINE)
