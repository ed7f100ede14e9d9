"""Build the chapter notebooks from their sources in ``notebooks/src/``.

Each source is a Python file in the "percent" format: ``# %%`` starts a code
cell, ``# %% [markdown]`` a Markdown cell whose lines are comments, and a
commented magic (``# %matplotlib inline``) becomes a real one. The notebooks
are written with no outputs, so what is committed never goes stale; CI runs
them (``tests/test_notebooks.py``).

Usage::

    python notebooks/build.py           # (re)write notebooks/*.ipynb
    python notebooks/build.py --check   # exit 1 if a notebook is out of date
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
_MARKER = re.compile(r"^# %%(?: \[(?P<kind>\w+)\])?\s*$")
_MAGIC = re.compile(r"^# (?P<magic>%[a-z].*)$")
_METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def _trim(lines: list[str]) -> str:
    text = "\n".join(lines).strip("\n")
    return text


def parse(source: str) -> list[tuple[str, str]]:
    """``[(kind, text)]`` cells of a percent-format source; kind is code/markdown.

    Lines before the first ``# %%`` (the file's own header) are dropped.
    """
    cells: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        marker = _MARKER.match(line)
        if marker:
            kind = marker.group("kind") or "code"
            if kind not in ("code", "markdown"):
                raise ValueError(f"unknown cell kind {kind!r} in {line!r}")
            cells.append((kind, []))
        elif cells:
            kind, body = cells[-1]
            if kind == "markdown":
                body.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
            else:
                magic = _MAGIC.match(line)
                body.append(magic.group("magic") if magic else line)
    return [(kind, _trim(body)) for kind, body in cells if _trim(body)]


def render(source_path: Path) -> str:
    """The notebook JSON text for one source file (no outputs, stable cell ids)."""
    nb = nbformat.v4.new_notebook(metadata=dict(_METADATA))
    for i, (kind, text) in enumerate(parse(source_path.read_text())):
        new = (
            nbformat.v4.new_code_cell
            if kind == "code"
            else nbformat.v4.new_markdown_cell
        )
        cell = new(text)
        cell.id = f"{source_path.stem.split('_')[0]}-{i:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def targets() -> dict[Path, Path]:
    """``{notebook path: source path}`` for every source in ``notebooks/src``."""
    return {HERE / f"{src.stem}.ipynb": src for src in sorted(SOURCES.glob("*.py"))}


def _write_atomic(path: Path, text: str) -> None:
    # mkstemp creates the file 0600: give it the mode a plain open() would.
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only report notebooks that differ"
    )
    args = parser.parse_args(argv)
    stale = []
    for notebook, source in targets().items():
        text = render(source)
        current = notebook.read_text(encoding="utf-8") if notebook.exists() else None
        if current == text:
            continue
        stale.append(notebook.name)
        if not args.check:
            _write_atomic(notebook, text)
            print(f"wrote {notebook.relative_to(HERE.parent)}")
    if args.check and stale:
        print(
            f"out of date: {', '.join(stale)}; run python notebooks/build.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
