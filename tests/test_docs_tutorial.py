"""The tutorial's commands, run cut short, so the site cannot drift from the code.

Every ``bash`` block in ``docs/tutorial/`` that follows a ``<!-- ci-run -->`` mark is run,
command by command, in one temporary folder per page (with ``examples/`` and ``src/`` of
this checkout linked in, so the commands read as from the repository root). A mark may
append flags to the commands that start with a given prefix, to cut them short::

    <!-- ci-run: rnnlab train += --max-steps 3 --time-budget 30 -->

(the last occurrence of a flag wins, so ``--max-steps 3`` overrides the page's own). Each
command must exit 0. A block CI cannot afford says so instead, visibly in the page and with
``<!-- ci-skip: why -->`` before it; every ``bash`` block carries one mark or the other.
``rnnlab`` and ``python`` run as this interpreter (``sys.executable -m rnnlab``). A page
that reads ``../shared/data`` (PTB) is skipped where that folder is missing, saying so,
except where CI=true, where it fails.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial"
SHARED = ROOT.parent / "shared" / "data"
ANY_BLOCK = re.compile(r"(?P<mark><!-- ci-(?:run|skip)[^>]*-->\n)?```bash\n")
BLOCK = re.compile(r"<!-- ci-run(?::(?P<rules>[^>]*))? -->\n```bash\n(?P<body>.*?)\n```", re.S)


def commands(body: str) -> list[str]:
    """The block's commands: continuation lines joined, comments and blank lines dropped."""
    lines = re.sub(r"\s*\\\n\s*", " ", body).split("\n")
    return [c.strip() for c in lines if c.strip() and not c.strip().startswith("#")]


def page_commands(text: str) -> list[str]:
    """Every marked block's commands, in page order, with its mark's flags appended."""
    out = []
    for m in BLOCK.finditer(text):
        rules = [r.split("+=") for r in (m["rules"] or "").split(";") if r.strip()]
        for c in commands(m["body"]):
            for prefix, flags in rules:
                if c.startswith(prefix.strip()):
                    c = f"{c} {flags.strip()}"
            out.append(c)
    return out


def runnable(command: str) -> str:
    """``rnnlab ...`` and ``python ...`` (also after a pipe) as this interpreter."""
    py = shlex.quote(sys.executable)
    command = re.sub(r"(^|\|\s*)rnnlab ", rf"\1{py} -m rnnlab ", command)
    return re.sub(r"(^|\|\s*)python ", rf"\1{py} ", command)


PAGES = sorted(p for p in TUTORIAL.glob("*.md") if p.name != "index.md")


def test_every_tutorial_step_has_marked_commands():
    assert len(PAGES) == 6, PAGES
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert page_commands(text), f"{page.name}: no <!-- ci-run --> block"
        # a mark not followed by a bash block would be silently skipped
        assert text.count("<!-- ci-run") == len(BLOCK.findall(text)), page.name
        unmarked = [m.start() for m in ANY_BLOCK.finditer(text) if not m["mark"]]
        assert not unmarked, f"{page.name}: a bash block with no ci-run or ci-skip mark"


def test_marks_append_flags_to_their_prefix_only():
    text = ("<!-- ci-run: rnnlab train += --max-steps 3 -->\n```bash\n"
            "rnnlab train --out r \\\n  --lr 1\n# a comment\nrnnlab sample --checkpoint r\n```")
    assert page_commands(text) == ["rnnlab train --out r --lr 1 --max-steps 3",
                                   "rnnlab sample --checkpoint r"]


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_tutorial_commands_run(page, tmp_path):
    text = page.read_text(encoding="utf-8")
    if "../shared/data" in text:
        if not (SHARED / "ptb" / "ptb.train.txt").is_file():
            if os.environ.get("CI") == "true":
                pytest.fail(f"{SHARED}/ptb is missing: CI must run {page.name}'s commands")
            pytest.skip(f"{SHARED}/ptb is missing (the Penn Treebank files)")
        text = text.replace("../shared/data", str(SHARED))
    for name in ("examples", "src"):
        (tmp_path / name).symlink_to(ROOT / name)
    for command in page_commands(text):
        done = subprocess.run(["bash", "-o", "pipefail", "-c", runnable(command)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (f"{page.name}: `{command}` exited {done.returncode}\n"
                                      f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
