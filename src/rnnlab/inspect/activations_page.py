"""One self-contained HTML page: the text, each token coloured by one cell's activation.

Karpathy, Johnson & Fei-Fei ("Visualizing and Understanding Recurrent Networks", 2015)
showed what single LSTM cells compute by colouring text with their activation: a cell
that turns on inside quotes, one that counts along the line, one that tracks brackets.
LSTMVis (Strobelt, Gehrmann, Pfister & Rush) made such views interactive. This page is
that view for one run, in one file that opens anywhere, offline:

- the text, each token (character, word or byte, as the run's level) a ``<span
  class="tok" id="t<index>" data-t="<index>" data-v="<shown value / scale>">`` coloured
  on a diverging scale, blue -1, white 0, red +1. h of a tanh cell lies in [-1, 1]; c is
  unbounded, so every cell is divided by its own max |value| (h: by max(1, max |h|)).
  A newline is the glyph ⏎ followed by a line break, still a hoverable token;
- selectors for state (h, c), layer and cell;
- per text feature (:mod:`rnnlab.inspect.features`) the cells ranked by |Pearson r|;
  a click colours the text by that cell. A feature the same for every token (a text
  without double quotes) shows one line instead, e.g. "no double quotes in this text";
- on hover: the token, its value and the model's top predictions for the next token.

Large texts: at most ``max_tokens`` tokens (default 20 000) and at most ``max_values``
state values (default 4 000 000, i.e. tokens x states x layers x cells) are embedded; the
first tokens are kept, the page says how many of how many. Values are stored as 8-bit
integers (value / scale x 127, base64: about 1.35 bytes each, so at most ~5.4 MB) and the
text is shown in pages of ``page_size`` tokens (default 2 000), so choosing a cell
recolours at most that many spans. Correlations use the embedded tokens only.

Safety: the data is JSON in ``<script type="application/json">`` with ``<``, ``>`` and
``&`` written as ``\\u003c`` etc., so no text can close the script; the title is
HTML-escaped; the script writes text only via ``textContent``; a Content-Security-Policy
forbids every network request.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rnnlab.inspect._page_assets import BODY, CSS, JS
from rnnlab.inspect.features import (
    LEVELS,
    constant_notes,
    is_newline,
    rank_cells,
    token_features,
)

FEATURE_NAMES = {"in_quotes": "inside double quotes", "in_brackets": "inside brackets",
                 "line_position": "position in the line", "after_newline": "right after a newline"}
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data:")


def top_predictions(
    probs: np.ndarray, vocab: Sequence[str], k: int = 5
) -> tuple[list[list[str]], np.ndarray]:
    """The ``k`` most probable next tokens at every position, for :func:`activations_page`.

    ``probs`` (T, V): the model's next-token distribution after each token; ``vocab`` (V,)
    the token strings. Returns (T, k) token strings (a list of lists) and (T, k) float64
    probabilities, most probable first (ties: lower id first).

    >>> toks, p = top_predictions(np.array([[0.1, 0.7, 0.2]]), ["a", "b", "c"], k=2)
    >>> toks, p.tolist()
    ([['b', 'c']], [[0.7, 0.2]])
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(vocab):
        raise ValueError(f"probs must be (T, V) with V = len(vocab) = {len(vocab)}, "
                         f"got shape {p.shape}")
    k = min(k, p.shape[1])
    idx = np.argsort(-p, axis=1, kind="stable")[:, :k]  # (T, k)
    return [[vocab[j] for j in row] for row in idx], np.take_along_axis(p, idx, axis=1)


def display_token(token: str, level: str) -> tuple[str, bool]:
    """How a token is shown, and whether it was escaped (drawn in grey).

    Newlines are ⏎; control characters their Unicode control pictures (U+2400 + code);
    at byte level every byte >= 0x80 is written as ``\\xNN``.

    >>> display_token("\\n", "char"), display_token("\\x00", "char"), display_token("\\xe9", "byte")
    (('⏎', True), ('␀', True), ('\\\\xe9', True))
    >>> display_token("<eos>", "word"), display_token("ab", "word")
    (('⏎', True), ('ab', False))
    """
    if is_newline(token, level):
        return "⏎", True
    if level == "byte" and ord(token) >= 0x80:
        return f"\\x{ord(token):02x}", True
    if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in token):
        shown = "".join(chr(0x2400 + ord(ch)) if ord(ch) < 32 and ch != "\t" else
                        "␡" if ord(ch) == 127 else ch for ch in token)
        return shown, True
    return token, False


def activations_page(
    tokens: Sequence[str],
    level: str,
    states: Mapping[str, np.ndarray],
    top_tokens: Sequence[Sequence[str]] | None = None,
    top_probs: np.ndarray | None = None,
    *,
    title: str = "rnnlab: cell activations",
    max_tokens: int = 20_000,
    max_values: int = 4_000_000,
    page_size: int = 2_000,
    cells_per_feature: int = 5,
) -> str:
    """The HTML of the page (a str; write it with any atomic writer).

    ``tokens`` (T,) strings at ``level`` (``"char"``, ``"word"`` or ``"byte"``);
    ``states``: ``{"h": (L, T, H)}`` and optionally ``"c": (L, T, H)``, the state after
    reading each token; ``top_tokens`` (T, K) strings and ``top_probs`` (T, K), the next-token
    predictions after each token (see :func:`top_predictions`), both or neither.

    >>> h = np.tanh(np.arange(12.0).reshape(1, 4, 3) - 6)   # (L=1, T=4, H=3)
    >>> page = activations_page(list("ab\\nc"), "char", {"h": h})
    >>> page.startswith("<!DOCTYPE html>") and "http:" not in page
    True
    """
    T = _check(tokens, level, states, top_tokens, top_probs)
    names = list(states)
    L, _, H = np.shape(states["h"])
    n = max(1, min(T, max_tokens, max_values // (len(names) * L * H)))  # tokens embedded
    kept = {name: np.asarray(states[name], dtype=np.float64)[:, :n] for name in names}
    values, scale = _quantise(kept, names)
    shown = [display_token(tok, level) for tok in tokens[:n]]
    features = token_features(tokens[:n], level)
    data: dict[str, Any] = {
        "title": title, "level": level, "about": _about(T, n, level, page_size),
        "tokens": [s for s, _ in shown],
        "escaped": [t for t, (_, e) in enumerate(shown) if e],
        "newlines": [t for t in range(n) if is_newline(tokens[t], level)],
        "states": names, "layers": kept["h"].shape[0], "cells": kept["h"].shape[2],
        "values": values, "scale": scale, "page_size": page_size,
        "top_cells": rank_cells(kept, features, cells_per_feature),
        "feature_names": FEATURE_NAMES,
        "feature_notes": constant_notes(tokens[:n], level, features),
    }
    if top_tokens is not None and top_probs is not None:
        data.update(_predictions(top_tokens[:n], np.asarray(top_probs)[:n], level))
    return _html(title, data)


def _check(tokens: Sequence[str], level: str, states: Mapping[str, np.ndarray],
           top_tokens: Any, top_probs: Any) -> int:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    T = len(tokens)
    if T == 0 or "h" not in states or not set(states) <= {"h", "c"}:
        raise ValueError(f"need tokens and states {{'h': (L, T, H)[, 'c': (L, T, H)]}}, got "
                         f"{T} tokens and states {sorted(states)}")
    for name, arr in states.items():
        shape = np.shape(arr)
        if len(shape) != 3 or shape[1] != T or shape != np.shape(states["h"]):
            raise ValueError(f"states[{name!r}] must be (L, T={T}, H) like h, got {shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"states[{name!r}] has NaN or infinite values")
    if (top_tokens is None) != (top_probs is None):
        raise ValueError("give both top_tokens and top_probs (T, K), or neither")
    if top_tokens is not None and (len(top_tokens) != T or np.shape(top_probs)[0] != T
                                   or np.ndim(top_probs) != 2):
        raise ValueError(f"top_tokens and top_probs must be (T={T}, K), got {len(top_tokens)} "
                         f"rows and probs of shape {np.shape(top_probs)}")
    return T


def _quantise(kept: Mapping[str, np.ndarray], names: list[str]) -> tuple[str, list[float]]:
    """Base64 of int8 (S, L, H, n) = round(127 x value / scale), and the (S*L*H,) scales."""
    stacked = np.stack([kept[name] for name in names]).transpose(0, 1, 3, 2)  # (S, L, H, n)
    peak = np.abs(stacked).max(axis=3)  # (S, L, H)
    floor = np.array([0.0 if name == "c" else 1.0 for name in names])[:, None, None]
    scale = np.maximum(peak, floor)
    scale[scale == 0] = 1.0  # an all-zero c cell: white everywhere
    q = np.rint(stacked / scale[..., None] * 127).astype(np.int8)
    return base64.b64encode(q.tobytes()).decode("ascii"), scale.ravel().round(6).tolist()


def _predictions(top_tokens: Sequence[Sequence[str]], top_probs: np.ndarray,
                 level: str) -> dict[str, Any]:
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(tok, len(vocab)) for tok in row] for row in top_tokens]
    shown = ["␣" if tok == " " else display_token(tok, level)[0] for tok in vocab]
    return {"pred_vocab": shown, "pred_ids": ids,
            "pred_probs": np.asarray(top_probs, dtype=np.float64).round(4).tolist()}


def _about(T: int, n: int, level: str, page_size: int) -> str:
    unit = {"char": "characters", "word": "words", "byte": "bytes"}[level]
    cut = f"the first {n:,} of {T:,} {unit}" if n < T else f"all {T:,} {unit}"
    return (f"Showing {cut}, {page_size:,} per page. Colour: blue -1, white 0, red +1 of "
            "the cell's scale (h: 1, or its max |h| if larger; c: its max |c|); values "
            "stored to 8 bits. Hover a token for its value and the model's predictions.")


def _html(title: str, data: dict[str, Any]) -> str:
    payload = (json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
               .replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e"))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style></head>\n<body>{BODY}"
            f'<script type="application/json" id="data">{payload}</script>\n'
            f"<script>{JS}</script>\n</body></html>\n")
