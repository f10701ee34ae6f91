"""Open an HTML file in headless Chromium through selenium: for the page's tests and screenshots.

Uses the system's Chromium and ChromeDriver (Debian: ``apt-get install chromium
chromium-driver``) at explicit paths, so selenium-manager never downloads anything; a fresh
profile folder per session; flags that keep Chromium off the network (no sync, no
component updates, no background requests). selenium is in the ``test`` extra, imported
only when a browser is opened.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars")
PATHS = {"chromium": ("/usr/bin/chromium", "chromium"),
         "chromedriver": ("/usr/bin/chromedriver", "chromedriver")}


def find_browser() -> tuple[Path, Path] | None:
    """Paths of (chromium, chromedriver): /usr/bin first, then ``PATH``; None if either is missing.

    >>> found = find_browser()
    >>> found is None or all(p.is_file() for p in found)
    True
    """
    found = []
    for fixed, name in PATHS.values():
        path = fixed if Path(fixed).is_file() else shutil.which(name)
        if path is None:
            return None
        found.append(Path(path))
    return found[0], found[1]


@contextmanager
def open_page(html_path: str | Path, width: int = 1280, height: int = 860, *,
              log_requests: bool = False) -> Iterator[Any]:
    """A selenium WebDriver showing ``html_path`` (a file:// URL) in a ``width`` x ``height``
    pixel viewport, closed on exit. ``log_requests``: keep Chromium's network log, for
    :func:`requested_urls`.

    Raises RuntimeError naming the missing piece when Chromium, ChromeDriver or selenium
    is not installed.

    Not run as a doctest (needs Chromium); tests/test_inspect_browser.py runs it::

    >>> with open_page("page.html") as driver:  # doctest: +SKIP
    ...     driver.find_element("id", "t0").text
    'T'
    """
    found = find_browser()
    if found is None:
        raise RuntimeError("Chromium or ChromeDriver not found: apt-get install chromium "
                           "chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise RuntimeError("selenium is not installed: pip install 'selenium>=4.20'") from None
    with tempfile.TemporaryDirectory(prefix="rnnlab-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(found[0])
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        if log_requests:
            options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=str(found[1])), options=options)
        try:  # the window includes the browser's frame: fix the page's viewport itself
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            driver.get(Path(html_path).resolve().as_uri())
            yield driver
        finally:
            driver.quit()


def requested_urls(driver: Any) -> list[str]:
    """Every URL the page has asked for so far (documents, scripts, styles, fonts, images,
    fetches), from Chromium's network log: the driver must come from
    ``open_page(..., log_requests=True)``. Reading the log empties it."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def screenshot(html_path: str | Path, png_path: str | Path, width: int = 1280,
               height: int = 860, hover: int | None = None) -> Path:
    """Save a PNG of ``html_path`` as Chromium draws it, ``width`` x ``height`` pixels.

    ``hover``: the index of a token of the activations page to point at first, so that
    the picture shows its tooltip (value and predictions).

    Not run as a doctest (needs Chromium); tests/test_inspect_browser.py runs it::

    >>> screenshot("activations.html", "activations.png")  # doctest: +SKIP
    PosixPath('activations.png')
    """
    with open_page(html_path, width, height) as driver:
        first = driver.find_element("id", "t0")  # the script has run and drawn the text
        if hover is not None:
            from selenium.webdriver.common.action_chains import ActionChains

            target = driver.find_element("id", f"t{hover}") if hover else first
            ActionChains(driver).move_to_element(target).perform()
        if not driver.save_screenshot(str(png_path)):
            raise RuntimeError(f"Chromium could not write the screenshot {png_path}")
    return Path(png_path)
