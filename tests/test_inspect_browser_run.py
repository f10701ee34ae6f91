"""The activations page of a real tiny run (``rnnlab train``, then ``rnnlab inspect
activations``) in headless Chromium. Skips only where no browser is installed; where
CI=true it fails instead (as tests/test_inspect_browser.py)."""

import json
import os
import re

import pytest
from test_cli import TINY, rnnlab

from rnnlab.data import bundled_corpus
from rnnlab.inspect.browser import find_browser, open_page

try:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
    MISSING = None if find_browser() else "Chromium or ChromeDriver not installed"
except ImportError:
    MISSING = "selenium not installed"

if MISSING:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{MISSING}: CI must run the browser tests", pytrace=False)
    pytest.skip(f"{MISSING} (apt-get install chromium chromium-driver; pip install selenium)",
                allow_module_level=True)

TOKENS = 300


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser_run")
    text = root / "small.txt"
    text.write_text(bundled_corpus().read_text(encoding="utf-8")[:20_000], encoding="utf-8")
    r = rnnlab("train", "--data", str(text), "--out", str(root / "run"), "--max-steps", "15",
               "--no-sample", *TINY, "--eval-every", "5")  # the last --eval-every wins
    assert r.returncode == 0, r.stderr
    out = root / "page.html"
    r = rnnlab("inspect", "activations", "--checkpoint", str(root / "run"), "--text", str(text),
               "--max-tokens", str(TOKENS), "--out", str(out))
    assert r.returncode == 0, r.stderr
    html = out.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="data">(.*?)</script>', html, re.S).group(1))
    r = rnnlab("report", str(root / "run"), "--steps", "10", "--windows", "2")
    assert r.returncode == 0, r.stderr
    return out, text.read_text(encoding="utf-8")[:TOKENS], data


@pytest.fixture(scope="module")
def driver(page):
    with open_page(page[0]) as d:
        WebDriverWait(d, 10).until(lambda d: d.find_elements(By.ID, "t0"))
        yield d


def test_the_run_text_is_shown_token_by_token(driver, page):
    _, text, data = page
    spans = driver.find_elements(By.CSS_SELECTOR, "#text .tok")
    assert len(spans) == TOKENS
    shown = "".join(s.get_attribute("textContent") for s in spans).replace("⏎", "\n")
    assert shown == text
    assert data["layers"] == 1 and data["cells"] == 32 and data["states"] == ["h", "c"]


def test_choosing_a_cell_colours_the_text(driver):
    Select(driver.find_element(By.ID, "state")).select_by_visible_text("c")
    box = driver.find_element(By.ID, "cell")
    box.clear()
    box.send_keys("4", "\n")
    driver.execute_script("document.getElementById('cell').dispatchEvent(new Event('change'))")
    colours = driver.execute_script(
        "return Array.from(document.querySelectorAll('#text .tok'), "
        "s => getComputedStyle(s).backgroundColor);")
    assert len(set(colours)) > 10  # a real cell varies along the text


def test_hover_shows_the_models_top_prediction(driver, page):
    _, _, data = page
    t = 10
    ActionChains(driver).move_to_element(driver.find_element(By.ID, f"t{t}")).perform()
    tip = driver.find_element(By.ID, "tip")
    WebDriverWait(driver, 5).until(lambda d: tip.is_displayed())
    best = data["pred_vocab"][data["pred_ids"][t][0]]
    assert f"{best} {data['pred_probs'][t][0]:.3f}" in tip.text


def test_the_run_report_shows_every_picture_offline(page):
    with open_page(page[0].parent / "run" / "report.html") as d:
        widths = d.execute_script("return Array.from(document.images, i => i.naturalWidth)")
        samples = d.find_elements(By.TAG_NAME, "pre")
    assert len(widths) == 5 and all(w > 100 for w in widths)  # decoded under the page's CSP
    assert len(samples) == 3  # evaluations at steps 5, 10, 15
