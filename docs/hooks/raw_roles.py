"""MkDocs hook: a Sphinx role left in a docstring or page is a build warning.

mkdocstrings renders Markdown, so ``:class:`Trainer``` reaches the page as the
literal text ":class:" before the name. ``mkdocs build --strict`` turns this
hook's warning into a failed build. Write cross-references as
``[`Trainer`][nn.Trainer]`` (the target must be on an API page) or plain
backticks.
"""

from __future__ import annotations

import logging
import re

# Loggers under "mkdocs." are the ones strict mode counts.
log = logging.getLogger("mkdocs.hooks.raw_roles")

ROLES = ("meth", "class", "func", "mod", "data", "attr", "exc", "obj", "const")
#: A role as it reaches the HTML: ":class:" then the name in <code> or backticks.
RAW_ROLE = re.compile(r":(?:py:)?(?:" + "|".join(ROLES) + r"):(?=<code>|`)")


def find_raw_roles(html: str) -> list[str]:
    """The raw roles in ``html``, each with a little of the text after it."""
    return [
        re.sub(r"<[^>]+>", "", html[m.start() : m.end() + 60]).split("\n")[0]
        for m in RAW_ROLE.finditer(html)
    ]


def on_page_content(html: str, page, **kwargs) -> str:
    for found in find_raw_roles(html):
        log.warning(
            "%s: raw Sphinx role %r; write [`name`][dotted.path] or `name`",
            page.file.src_uri,
            found,
        )
    return html
