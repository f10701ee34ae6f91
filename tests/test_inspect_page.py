"""The activations page as a file: self-contained, escaped, capped (no browser needed)."""

import base64
import html.parser
import json

import numpy as np
import pytest
from activations_data import ATTACK, TEXT, build_page, page_inputs

from rnnlab.inspect.activations_page import activations_page, display_token, top_predictions


class Parsed(html.parser.HTMLParser):
    """Every tag with its attributes, and the text inside each <script>."""

    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._in_script = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append((dict(attrs), ""))

    def handle_endtag(self, tag):
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data):
        if self._in_script:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)


def parse(page):
    p = Parsed()
    p.feed(page)
    p.close()
    return p


def page_data(page):
    (attrs, payload), = [s for s in parse(page).scripts if s[0].get("id") == "data"]
    assert attrs["type"] == "application/json"
    return json.loads(payload)


def test_self_contained():
    page = build_page()
    low = page.lower()
    for needle in ("http:", "https:", "//cdn", "<link", "@import", "url(", "<iframe", "<img"):
        assert needle not in low, needle
    p = parse(page)
    assert all("src" not in attrs and "href" not in attrs for _, attrs in p.tags)
    assert [tag for tag, _ in p.tags].count("script") == 2  # data and code; nothing injected
    csp = [a["content"] for t, a in p.tags if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and csp[0].startswith("default-src 'none'")


def test_text_with_a_script_tag_stays_data():
    page = build_page()
    assert ATTACK not in page and "<b>bold?</b>" not in page  # not in the HTML as markup
    data = page_data(page)
    assert "".join(data["tokens"]).replace("⏎", "\n") == TEXT  # but all there, as data
    assert "<title>Test page &lt;i&gt;&amp;&lt;/i&gt;</title>" in page
    assert data["title"] == "Test page <i>&</i>"


def test_data_round_trip_values_and_predictions():
    tokens, states, top_tokens, top_probs = page_inputs()
    data = page_data(build_page())
    T = len(tokens)
    assert (data["states"], data["layers"], data["cells"]) == (["h", "c"], 2, 8)
    q = np.frombuffer(base64.b64decode(data["values"]), dtype=np.int8).reshape(2, 2, 8, T)
    scale = np.array(data["scale"]).reshape(2, 2, 8)
    for s, name in enumerate(["h", "c"]):
        back = q[s] / 127 * scale[s][..., None]  # (L, H, T)
        np.testing.assert_allclose(back, states[name].transpose(0, 2, 1),
                                   atol=scale[s].max() / 254 + 1e-9)
    assert (scale[0] == 1).all()  # tanh h: the fixed scale
    np.testing.assert_allclose(scale[1], np.abs(states["c"]).max(axis=1), rtol=1e-6)
    assert data["newlines"] == [t for t, ch in enumerate(tokens) if ch == "\n"]
    assert [data["pred_vocab"][i] for i in data["pred_ids"][7]] == top_tokens[7]
    assert data["pred_probs"][7] == top_probs[7].tolist()
    top = data["top_cells"]["in_quotes"][0]
    assert (top["state"], top["layer"], top["cell"], top["r"]) == ("h", 0, 3, 1.0)


def test_a_text_without_quotes_or_brackets_says_so_instead_of_listing_cells():
    tokens = list("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 4)
    h = np.tanh(np.random.default_rng(5).normal(size=(2, len(tokens), 8)))
    data = page_data(activations_page(tokens, "char", {"h": h}))
    assert data["top_cells"]["in_quotes"] == data["top_cells"]["in_brackets"] == []
    assert data["feature_notes"] == {"in_quotes": "no double quotes in this text",
                                     "in_brackets": "no brackets in this text"}
    assert len(data["top_cells"]["line_position"]) == 5


def test_a_text_with_quotes_lists_cells_and_no_notes():
    data = page_data(build_page())
    assert data["feature_notes"] == {}
    assert all(len(cells) == 5 for cells in data["top_cells"].values())


@pytest.mark.parametrize(("kw", "kept"), [
    ({"max_tokens": 100}, 100),
    ({"max_values": 2 * 2 * 8 * 50}, 50),  # 2 states x 2 layers x 8 cells per token
    ({"max_values": 1}, 1),
])
def test_large_texts_are_capped_and_the_page_says_so(kw, kept):
    data = page_data(build_page(**kw))
    assert len(data["tokens"]) == kept
    assert len(base64.b64decode(data["values"])) == 2 * 2 * 8 * kept
    assert f"the first {kept:,} of {len(TEXT):,} characters" in data["about"]


def test_word_and_byte_levels_and_no_predictions():
    words = ["the", '"cat', "sat", '"', "<eos>", "on"]
    h = np.linspace(-2, 2, 12).reshape(1, 6, 2)  # relu-like h beyond [-1, 1]
    data = page_data(activations_page(words, "word", {"h": h}))
    assert data["tokens"][4] == "⏎" and data["newlines"] == [4] and "pred_ids" not in data
    assert data["scale"] == [2.0, 2.0]  # max |h| when above 1
    preds = [[" ", "\n", "\xff"]] * 3
    data = page_data(activations_page(["a", "\xe9", "\n"], "byte", {"h": np.zeros((1, 3, 1))},
                                      preds, np.full((3, 3), 1 / 3)))
    assert data["tokens"] == ["a", "\\xe9", "⏎"] and data["escaped"] == [1, 2]
    assert data["pred_vocab"] == ["␣", "⏎", "\\xff"]  # visible in the tooltip


def test_display_token_control_characters():
    assert display_token("\r", "char") == ("␍", True)
    assert display_token("\t", "char") == ("\t", False)
    assert display_token("a\x7fb", "word") == ("a␡b", True)


def test_top_predictions_order_and_shapes():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=4)  # (T=4, V=10)
    toks, p = top_predictions(probs, list("abcdefghij"))
    assert len(toks) == 4 and all(len(r) == 5 for r in toks) and p.shape == (4, 5)
    assert (np.diff(p, axis=1) <= 0).all()
    assert toks[2][0] == "abcdefghij"[int(np.argmax(probs[2]))]
    with pytest.raises(ValueError, match="len\\(vocab\\)"):
        top_predictions(probs, ["a"])


@pytest.mark.parametrize(("states", "preds", "match"), [
    ({"c": np.zeros((1, 3, 2))}, None, "states"),
    ({"h": np.zeros((1, 4, 2))}, None, "T=3"),
    ({"h": np.zeros((1, 3, 2)), "c": np.zeros((1, 3, 3))}, None, "like h"),
    ({"h": np.full((1, 3, 2), np.nan)}, None, "NaN"),
    ({"h": np.zeros((1, 3, 2))}, ([["a"]] * 3, None), "both"),
    ({"h": np.zeros((1, 3, 2))}, ([["a"]] * 2, np.ones((2, 1))), "T=3, K"),
])
def test_bad_input_is_a_clear_error(states, preds, match):
    top_tokens, top_probs = preds or (None, None)
    with pytest.raises(ValueError, match=match):
        activations_page(list("abc"), "char", states, top_tokens, top_probs)
