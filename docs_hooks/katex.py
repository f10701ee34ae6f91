"""mkdocs hook: KaTeX from the npm package into the built site, so the math renders offline.

``npm ci`` in the repository root installs the version pinned in ``package.json`` (and
``package-lock.json``, with its integrity hash) into ``node_modules/katex``. This hook adds
its ``katex.min.js``, ``katex.min.css``, ``contrib/auto-render.min.js`` and ``fonts/`` to
the site as ``assets/katex/...``; ``mkdocs.yml`` loads them from there. No CDN, no copy
kept in ``docs/``. The build stops with one line saying what to run when the package is
missing or is not the pinned version.
"""

from __future__ import annotations

import json
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "node_modules" / "katex"
FILES = ("katex.min.js", "katex.min.css", "contrib/auto-render.min.js")


def pinned_version() -> str:
    """The KaTeX version package.json pins (an exact version, no range)."""
    return json.loads((ROOT / "package.json").read_text(encoding="utf-8"))["dependencies"]["katex"]


def katex_dist() -> Path:
    """``node_modules/katex/dist``, checked to be the pinned version."""
    want = pinned_version()
    try:
        have = json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))["version"]
    except FileNotFoundError:
        raise PluginError(f"KaTeX is not installed in {PACKAGE}: run `npm ci` in {ROOT}") from None
    if have != want:
        raise PluginError(f"node_modules has KaTeX {have}, package.json pins {want}: "
                          f"run `npm ci` in {ROOT}")
    return PACKAGE / "dist"


def on_files(files, config):  # noqa: ANN001, ANN201 (mkdocs' hook signature)
    dist = katex_dist()
    fonts = sorted(p.relative_to(dist).as_posix() for p in (dist / "fonts").iterdir())
    for rel in (*FILES, *fonts):
        files.append(File.generated(config, f"assets/katex/{rel}", abs_src_path=str(dist / rel)))
    return files
