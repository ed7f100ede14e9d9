"""No raw Sphinx roles: in the sources, through the docs hook, and in the built site.

mkdocstrings renders docstrings as Markdown, where ``:class:`X``` shows up as
the literal text ":class:" before the name; cross-references are written
``[`X`][dotted.path]`` instead. docs/hooks/raw_roles.py turns a role left in a
rendered page into a warning, which ``mkdocs build --strict`` fails on.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOOK = ROOT / "docs" / "hooks" / "raw_roles.py"
# Built from pieces so that this file does not match itself.
ROLE_IN_SOURCE = re.compile(
    ":" + r"(?:py:)?(?:meth|class|func|mod|data|attr|exc|obj|const)" + r":`"
)
SOURCE_DIRS = ("nn", "backend", "bench", "examples", "notebooks", "tests")


def load_hook():
    spec = importlib.util.spec_from_file_location("raw_roles", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_sphinx_roles_in_python_sources():
    files = [ROOT / "train.py"]
    for folder in SOURCE_DIRS:
        files += sorted((ROOT / folder).rglob("*.py"))
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in files
        if path != Path(__file__).resolve()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ROLE_IN_SOURCE.search(line)
    ]
    assert not hits, (
        "Sphinx roles in docstrings (the docs render Markdown): write "
        "[`name`][dotted.path] for a target on an API page, else `name`:\n"
        + "\n".join(hits)
    )


def test_no_sphinx_roles_in_docs_pages():
    hits = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "docs").rglob("*.md"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ROLE_IN_SOURCE.search(line)
    ]
    assert not hits, hits


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>Restore what :meth:<code>state_dict</code> returned.</p>", 1),
        ("<p>See :py:class:`Trainer` and :func:<code>use</code>.</p>", 2),
        (
            '<p>Restore what <a href="#nn.SGD.state_dict"><code>state_dict</code></a>'
            " returned.</p>",
            0,
        ),
        # A role named in running text (as on this page's own docs) is not one.
        ("<p>the text <code>:class:</code> before the name</p>", 0),
    ],
)
def test_hook_warns_once_per_raw_role(html, expected, caplog):
    hook = load_hook()

    class Page:
        class file:  # noqa: N801 - mimics mkdocs' page.file.src_uri
            src_uri = "api/example.md"

    with caplog.at_level(logging.WARNING, logger="mkdocs.hooks.raw_roles"):
        assert hook.on_page_content(html, page=Page) == html
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == expected
    assert all("api/example.md" in r.getMessage() for r in warnings)
    # mkdocs' strict mode counts warnings of loggers under "mkdocs".
    assert hook.log.name.startswith("mkdocs.")


def test_mkdocs_config_runs_the_hook():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^hooks:\n\s+- docs/hooks/raw_roles\.py$", config, re.M)
    assert re.search(r"^strict: true$", config, re.M)


def test_built_site_has_no_raw_roles(tmp_path):
    """The strict build passes and its API pages hold links, not roles (~5 s)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    hook = load_hook()
    pages = sorted(site.rglob("*.html"))
    raw = {
        str(p.relative_to(site)): hook.find_raw_roles(p.read_text(encoding="utf-8"))
        for p in pages
    }
    assert not {k: v for k, v in raw.items() if v}
    networks = (site / "api" / "networks" / "index.html").read_text(encoding="utf-8")
    assert 'href="#nn.TwoLayerNet.loss"' in networks
    assert "Formatting signatures requires" not in done.stderr
