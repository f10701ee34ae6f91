"""The activations page in a real browser: headless Chromium driven by selenium.

Skips, saying why, only where no browser is installed (Debian: ``apt-get install chromium
chromium-driver`` and ``pip install selenium``); where CI=true it fails instead.
"""

import os

import numpy as np
import pytest
from activations_data import LINE_CELL, QUOTE_CELL, TEXT, build_page, page_inputs

from rnnlab.inspect.activations_page import activations_page
from rnnlab.inspect.browser import find_browser, open_page, screenshot
from rnnlab.inspect.features import token_features

try:
    import selenium  # noqa: F401
    from selenium.common.exceptions import NoAlertPresentException
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

PAGE_SIZE = 200


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("page") / "activations.html"
    path.write_text(build_page(page_size=PAGE_SIZE), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def driver(page_file):
    with open_page(page_file) as d:
        WebDriverWait(d, 10).until(lambda d: d.find_elements(By.ID, "t0"))
        yield d


def colours(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#text .tok'), "
        "s => getComputedStyle(s).backgroundColor);")


def rgb(css):
    return tuple(int(v) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])


def choose(driver, state, layer, cell):
    Select(driver.find_element(By.ID, "state")).select_by_visible_text(state)
    Select(driver.find_element(By.ID, "layer")).select_by_visible_text(str(layer))
    box = driver.find_element(By.ID, "cell")
    box.clear()
    box.send_keys(str(cell), "\n")
    driver.execute_script("document.getElementById('cell').dispatchEvent(new Event('change'))")


def test_text_renders_as_text_and_no_script_runs(driver):
    spans = driver.find_elements(By.CSS_SELECTOR, "#text .tok")
    assert len(spans) == PAGE_SIZE  # the first page only
    shown = "".join(s.get_attribute("textContent") for s in spans).replace("⏎", "\n")
    assert shown == TEXT[:PAGE_SIZE]
    assert driver.find_element(By.ID, "t0").text == "H"
    assert "</script><script>window.pwned" in shown  # the attack is on the page as text
    assert driver.execute_script("return window.pwned === undefined")
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018
    assert driver.find_elements(By.CSS_SELECTOR, "#text b") == []
    nl = driver.find_element(By.ID, f"t{TEXT.index(chr(10))}")
    assert nl.text == "⏎" and "nl" in nl.get_attribute("class")


def test_colours_follow_the_chosen_cell(driver):
    choose(driver, *QUOTE_CELL)
    quoted = token_features(list(TEXT[:PAGE_SIZE]), "char")["in_quotes"]
    for t, css in enumerate(colours(driver)):
        r, _, b = rgb(css)
        assert (r > b) if quoted[t] else (b > r), (t, TEXT[t], css)
    before = colours(driver)
    choose(driver, *LINE_CELL)
    assert colours(driver) != before
    value = float(driver.find_element(By.ID, "t0").get_attribute("data-v"))
    _, states, _, _ = page_inputs()
    assert value == pytest.approx(states["h"][1, 0, 5], abs=1 / 127)


def test_top_cell_button_selects_the_quote_cell(driver):
    choose(driver, "c", 1, 0)
    first = driver.find_element(By.CSS_SELECTOR, ".top")  # first feature: inside quotes
    assert first.text.startswith("h layer 0 cell 3")
    first.click()
    got = [driver.find_element(By.ID, i).get_attribute("value") for i in ("state", "layer", "cell")]
    assert got == ["0", "0", "3"] and "active" in first.get_attribute("class")


def test_a_constant_feature_shows_one_line_and_no_buttons(tmp_path):
    tokens = list("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 4)
    h = np.tanh(np.random.default_rng(5).normal(size=(2, len(tokens), 8)))
    path = tmp_path / "plain.html"
    path.write_text(activations_page(tokens, "char", {"h": h}), encoding="utf-8")
    with open_page(path) as d:
        WebDriverWait(d, 10).until(lambda d: d.find_elements(By.ID, "t0"))
        rows = d.execute_script(
            "return Array.from(document.querySelectorAll('#tops > *'), "
            "e => e.tagName + ' ' + e.textContent);")
        shown = [d.find_element(By.ID, i).get_attribute("value") for i in ("layer", "cell")]
    assert rows[:4] == ["H3 inside double quotes", "DIV no double quotes in this text",
                        "H3 inside brackets", "DIV no brackets in this text"]
    assert rows[4] == "H3 position in the line" and rows[5].startswith("BUTTON h layer")
    assert len(rows) == 4 + 2 * (1 + 5)
    _, _, _, layer, _, cell = rows[5].split()[:6]  # "BUTTON h layer 0 cell 3"
    assert shown == [layer, cell]  # the first cell listed is shown, though not in_quotes's


def test_hover_shows_the_predictions(driver):
    t = TEXT.index('"') + 1
    ActionChains(driver).move_to_element(driver.find_element(By.ID, f"t{t}")).perform()
    tip = driver.find_element(By.ID, "tip")
    WebDriverWait(driver, 5).until(lambda d: tip.is_displayed())
    for j, p in enumerate(["0.500", "0.200", "0.150", "0.100", "0.050"]):
        assert f"p{t}{chr(97 + j)} {p}" in tip.text
    assert f"#{t}" in tip.text


def test_paging_shows_the_next_tokens(driver):
    driver.find_element(By.ID, "pgnext").click()
    assert driver.find_elements(By.ID, "t0") == []
    assert driver.find_element(By.ID, f"t{PAGE_SIZE}").get_attribute("textContent") \
        == TEXT[PAGE_SIZE].replace("\n", "⏎")
    driver.find_element(By.ID, "pgprev").click()
    assert driver.find_element(By.ID, "t0")


def test_screenshot(page_file, tmp_path):
    t = TEXT.index("(")
    out = screenshot(page_file, tmp_path / "activations.png", width=1100, height=700, hover=t)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1100, 700)
