"""A small activations page with known cells, shared by the page tests (static and browser).

h of layer 0, cell 3 is the quote indicator (+0.9 inside, -0.9 outside), h of layer 1,
cell 5 counts along the line; every other cell is noise. The predictions at position t
are the tokens "p<t>a", "p<t>b", ... so a test can tell which position a tooltip shows.
"""

import numpy as np

from rnnlab.inspect.activations_page import activations_page
from rnnlab.inspect.features import token_features

ATTACK = "</script><script>window.pwned = 1; alert(1)</script>"
TEXT = ('He said "to be (or not) to be" & left.\n'
        'First Citizen:\nBefore we proceed any further, hear me speak.\n\n'
        f'All:\nSpeak, speak. {ATTACK} <b>bold?</b>\n"Quoted\n line" end\n') * 3
QUOTE_CELL, LINE_CELL = ("h", 0, 3), ("h", 1, 5)
L, H, K = 2, 8, 5


def page_inputs(text=TEXT, level="char"):
    tokens = list(text)
    T = len(tokens)
    f = token_features(tokens, level)
    rng = np.random.default_rng(0)
    h = np.tanh(rng.normal(size=(L, T, H)))
    h[0, :, 3] = 0.9 * (2 * f["in_quotes"] - 1)
    h[1, :, 5] = np.tanh(f["line_position"] / 20 - 1)
    c = 3 * rng.normal(size=(L, T, H))
    top_tokens = [[f"p{t}{chr(97 + j)}" for j in range(K)] for t in range(T)]
    top_probs = np.tile(np.array([0.5, 0.2, 0.15, 0.1, 0.05]), (T, 1))
    return tokens, {"h": h, "c": c}, top_tokens, top_probs


def build_page(**kw):
    tokens, states, top_tokens, top_probs = page_inputs()
    return activations_page(tokens, "char", states, top_tokens, top_probs,
                            title="Test page <i>&</i>", **kw)
