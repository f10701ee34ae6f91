"""griffe extension for the API pages: docstrings written for ``help()`` and doctest read
as Markdown.

rnnlab's docstrings are plain text: RST-style ``Text::`` before an indented block, and
doctest examples (``>>>``) at the text's own indentation. Markdown would read ``>>>`` as a
nested quotation, so each run of doctest lines (up to the next blank line) becomes a
``pycon`` code block, and a paragraph's closing ``::`` becomes ``:`` (the indented block
after it is already a Markdown code block), and a Sphinx role such as ``:func:`x``` becomes
``x`` in code. Only the rendering changes: the source and its
doctests are untouched. mkdocs.yml loads this file by path.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:meth|class|func|mod|data|attr|exc|obj):`~?([^`]+)`")


def fence_doctests(text: str) -> str:
    """Wrap each unindented run of ``>>>`` lines (and their output, up to a blank line) in
    a ``pycon`` fence; turn a line's closing ``::`` into ``:`` and a Sphinx role
    (``:func:`name```) into code."""
    text = ROLE.sub(r"`\1`", text)
    out: list[str] = []
    in_run = False
    for line in text.split("\n"):
        if not in_run and line.startswith(">>>"):
            out.append("```pycon")
            in_run = True
        elif in_run and not line.strip():
            out.append("```")
            in_run = False
        if not in_run and line.rstrip().endswith("::"):
            line = line.rstrip()[:-1]
        out.append(line)
    if in_run:
        out.append("```")
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    """Rewrites every loaded object's docstring with :func:`fence_doctests`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
