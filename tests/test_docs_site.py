"""The documentation site: ``mkdocs build --strict``, then two built pages in headless Chromium.

The build must pass with no warning (strict: broken links, missing anchors, pages left out
of the nav all fail it). A layer page and a tutorial page are then opened from the built
files: every equation must have been typeset by KaTeX (``.katex`` elements of non-zero
size, KaTeX's own fonts loaded, no raw ``\\(``, ``\\[`` or ``$$`` left in the text), and no
request may leave the machine (every URL the page asked for is a file:// URL or inline).

Skips, saying why, where mkdocs (``pip install -e ".[docs]"``), KaTeX (``npm ci``) or
Chromium (``apt-get install chromium chromium-driver``, selenium) is missing; where CI=true
it fails instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from rnnlab.inspect.browser import find_browser, open_page, requested_urls

ROOT = Path(__file__).resolve().parent.parent
# each page, and how many typeset equations it has at least
PAGES = {"layers/lstm/index.html": 20, "tutorial/hello/index.html": 4}
NETWORK = ("http", "https", "ws", "wss", "ftp")
LOCAL = ("localhost", "127.0.0.1", "::1")


def missing() -> str | None:
    try:
        import material  # noqa: F401
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
        import selenium  # noqa: F401
    except ImportError as e:
        return f"{e.name} is not installed (pip install -e '.[docs,test]')"
    if not (ROOT / "node_modules" / "katex" / "dist" / "katex.min.js").is_file():
        return f"KaTeX is not installed: run `npm ci` in {ROOT}"
    if find_browser() is None:
        return "Chromium or ChromeDriver not installed (apt-get install chromium chromium-driver)"
    return None


MISSING = missing()
if MISSING:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{MISSING}: CI must build and check the documentation site", pytrace=False)
    pytest.skip(MISSING, allow_module_level=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner, not a warning
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    return out


def test_build_is_strict_and_complete(site):
    for page in PAGES:
        assert (site / page).is_file(), page
    assert (site / "assets/katex/katex.min.js").is_file()
    assert any((site / "assets/katex/fonts").glob("KaTeX_Main-Regular.woff2"))
    html = (site / "layers/lstm/index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis" not in html and "cdn.jsdelivr" not in html
    text = re.sub(r"<[^>]+>", "", html)
    assert "def _step_backward(" in text  # the code itself, pulled from the source


# the text a reader sees, code blocks left out (code may hold a backslash or a dollar)
VISIBLE_TEXT = """
const article = document.querySelector("article").cloneNode(true);
article.querySelectorAll("pre, code, .katex").forEach((e) => e.remove());
return article.innerText;
"""
MATH_BOXES = """
return Array.from(document.querySelectorAll("article .katex")).map((e) => {
  const r = e.getBoundingClientRect(); return [r.width, r.height];
});
"""


@pytest.mark.parametrize("page", PAGES)
def test_equations_render_offline(site, page):
    with open_page(site / page, 1200, 900, log_requests=True) as d:
        d.set_script_timeout(30)
        # KaTeX runs on load; wait until it has, and its fonts are in
        d.execute_async_script(
            "const done = arguments[0];"
            "const ready = () => document.querySelector('article .katex') !== null;"
            "const poll = () => ready() ? document.fonts.ready.then(() => done()) :"
            " setTimeout(poll, 50); poll();")
        boxes = d.execute_script(MATH_BOXES)
        text = d.execute_script(VISIBLE_TEXT)
        raw = d.execute_script(
            "return document.querySelectorAll('article .arithmatex').length - "
            "document.querySelectorAll('article .arithmatex .katex').length;")
        font = d.execute_script("return document.fonts.check('16px KaTeX_Main');")
        errors = d.execute_script("return document.querySelectorAll('.katex-error').length;")
        folded = d.execute_script(
            "return document.querySelectorAll('details.mkdocstrings-source:not([open])').length;")
        urls = requested_urls(d)
    assert len(boxes) >= PAGES[page], f"{page}: {len(boxes)} typeset equations"
    assert all(w > 0 and h > 0 for w, h in boxes), f"{page}: an equation of zero size"
    assert raw == 0 and errors == 0, f"{page}: {raw} equations left raw, {errors} KaTeX errors"
    for token in ("$$", "\\(", "\\)", "\\[", "\\]"):
        assert token not in text, f"{page}: raw {token!r} in the text"
    assert font, f"{page}: KaTeX's font did not load"
    assert folded == 0, f"{page}: {folded} code listings left folded"
    assert any(u.endswith("katex.min.js") for u in urls), urls  # the log does see requests
    assert all(u.startswith(("file://", "data:", "blob:")) for u in urls
               if "/assets/" in u or u.endswith(".html")), urls  # the site's own files
    outside = [u for u in urls if urlparse(u).scheme in NETWORK
               and urlparse(u).hostname not in LOCAL]
    assert not outside, f"{page}: requests left the machine: {outside}"
