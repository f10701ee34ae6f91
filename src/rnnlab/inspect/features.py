"""Simple features of a text, one number per token, and the cells that follow them.

Karpathy, Johnson & Fei-Fei ("Visualizing and Understanding Recurrent Networks", 2015)
found LSTM cells that track whether the text is inside quotes, how far along the line it
is, or how deep in brackets: interpretable cells, found by colouring text with one cell's
activation. With hundreds of cells per layer one does not find them by clicking through;
so, as LSTMVis (Strobelt et al.) matches cells to user-chosen patterns, we rank every cell
by the absolute Pearson correlation of its activation with each feature below.

Each feature is the value *after reading* token t, the moment the state h_t is computed:

- ``in_quotes``: 1 while an odd number of double quotes has been read (the opening quote
  is inside, the closing quote is not); quotes may span lines.
- ``in_brackets``: 1 while more ``( [ {`` than ``) ] }`` are open (an unmatched closer
  is ignored).
- ``line_position``: the token's index within its line (0 for the first token of a line).
- ``after_newline``: 1 for the first token of a line, except the text's first token.

A feature that is the same for every token (no double quote in the text, say) correlates
with no cell: :func:`rank_cells` lists no cells for it, and :func:`constant_notes` says why
in one line, which the activations page shows instead of cells at r +0.00.

A newline is the token ``"\\n"`` at char and byte level and ``"<eos>"`` (or ``"\\n"``) at
word level, as in :mod:`rnnlab.data.vocab`.

    >>> f = token_features(list('a "b" (c)'), "char")
    >>> f["in_quotes"].tolist()
    [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    >>> f["in_brackets"].tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

FEATURES = ("in_quotes", "in_brackets", "line_position", "after_newline")
LEVELS = ("char", "word", "byte")
OPENERS, CLOSERS = "([{", ")]}"
MARKS = {"in_quotes": ('"', "double quotes"), "in_brackets": (OPENERS + CLOSERS, "brackets")}


def is_newline(token: str, level: str) -> bool:
    """Whether ``token`` ends a line at this level (``"<eos>"`` is the word-level newline).

    >>> is_newline("<eos>", "word"), is_newline("\\n", "char"), is_newline("a", "char")
    (True, True, False)
    """
    return token == "\n" or (level == "word" and token == "<eos>")


def token_features(tokens: Sequence[str], level: str) -> dict[str, np.ndarray]:
    """The :data:`FEATURES` of ``tokens`` (length T): a dict of float64 arrays, each (T,).

    >>> f = token_features(["ab", "(", "c", ")", "<eos>", "d"], "word")
    >>> f["in_brackets"].tolist()
    [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    >>> f["line_position"].tolist(), f["after_newline"].tolist()
    ([0.0, 1.0, 2.0, 3.0, 4.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    T = len(tokens)
    out = {name: np.zeros(T) for name in FEATURES}
    quotes = depth = column = 0
    previous_newline = False
    for t, token in enumerate(tokens):
        newline = is_newline(token, level)
        if not newline:
            quotes += token.count('"')
            for ch in token:
                depth += ch in OPENERS
                depth = max(0, depth - (ch in CLOSERS))
        out["in_quotes"][t] = quotes % 2
        out["in_brackets"][t] = depth > 0
        out["line_position"][t] = column
        out["after_newline"][t] = previous_newline
        column = 0 if newline else column + 1
        previous_newline = newline
    return out


def correlations(values: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """Pearson r of each column of ``values`` (T, H) with ``feature`` (T,): an (H,) array.

    A constant column or a constant feature has no correlation: r is 0 there, never NaN.

    >>> v = np.array([[0.0, 5.0, 1.0], [1.0, 5.0, 0.0], [2.0, 5.0, 1.0]])
    >>> correlations(v, np.array([0.0, 1.0, 2.0])).round(6).tolist()
    [1.0, 0.0, 0.0]
    """
    x = np.asarray(values, dtype=np.float64)
    y = np.asarray(feature, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"expected values (T, H) and feature (T,), got {x.shape} and {y.shape}")
    r = np.zeros(x.shape[1])
    if x.shape[0] < 2 or y.min() == y.max():
        return r
    varies = x.min(axis=0) != x.max(axis=0)  # exact test: a constant column has r = 0
    xc = x[:, varies] - x[:, varies].mean(axis=0)  # (T, H') centred
    yc = y - y.mean()  # (T,)
    denom = np.sqrt((xc * xc).sum(axis=0) * (yc @ yc))  # (H',) > 0
    r[varies] = np.clip((yc @ xc) / denom, -1.0, 1.0)
    return r


def rank_cells(
    states: Mapping[str, np.ndarray], features: Mapping[str, np.ndarray], k: int = 5
) -> dict[str, list[dict[str, Any]]]:
    """Per feature, the ``k`` cells with the largest |r|, over every state, layer and cell.

    ``states`` maps a state name (``"h"``, ``"c"``) to an array (L, T, H); each feature is
    (T,). Each entry is JSON-able: ``{"state", "layer", "cell", "r"}``, r with its sign;
    ties keep the order state, layer, cell. A feature that is the same for every token
    gets no cells (an empty list): every r would be 0, and the order meaningless.

    >>> quote = token_features(list('x"ab"y'), "char")["in_quotes"]
    >>> h = np.stack([np.zeros(6), -quote, np.arange(6.0)], axis=1)[None]  # (1, 6, 3)
    >>> rank_cells({"h": h}, {"in_quotes": quote}, k=1)
    {'in_quotes': [{'state': 'h', 'layer': 0, 'cell': 1, 'r': -1.0}]}
    """
    keys: list[tuple[str, int, int]] = []
    columns: list[np.ndarray] = []
    for name, arr in states.items():
        arr = np.asarray(arr)
        if arr.ndim != 3:
            raise ValueError(f"states[{name!r}] must be (L, T, H), got shape {arr.shape}")
        L, T, H = arr.shape
        columns.append(arr.transpose(1, 0, 2).reshape(T, L * H))  # (T, L*H), layer-major
        keys += [(name, layer, cell) for layer in range(L) for cell in range(H)]
    table = np.concatenate(columns, axis=1)  # (T, S*L*H)
    ranked: dict[str, list[dict[str, Any]]] = {}
    for feature_name, feature in features.items():
        if np.ptp(feature) == 0:
            ranked[feature_name] = []
            continue
        r = correlations(table, feature)
        order = np.argsort(-np.abs(r), kind="stable")[:k]
        ranked[feature_name] = [
            {"state": s, "layer": layer, "cell": cell, "r": round(float(r[j]), 4)}
            for j in order
            for s, layer, cell in [keys[j]]
        ]
    return ranked


def constant_notes(
    tokens: Sequence[str], level: str, features: Mapping[str, np.ndarray]
) -> dict[str, str]:
    """For each feature that is the same for every token, one line saying so; others absent.

    >>> text = list("no quotes (here)")
    >>> for name, note in constant_notes(text, "char", token_features(text, "char")).items():
    ...     print(f"{name}: {note}")
    in_quotes: no double quotes in this text
    after_newline: no token follows a newline in this text
    >>> constant_notes(['"a', "b"], "word", token_features(['"a', "b"], "word"))["in_quotes"]
    'every token of this text is inside double quotes'
    """
    text = "".join(tok for tok in tokens if not is_newline(tok, level))
    notes = {}
    for name, feature in features.items():
        values = np.asarray(feature)
        if values.size and np.ptp(values) == 0:
            notes[name] = _constant_note(name, float(values[0]), text)
    return notes


def _constant_note(name: str, value: float, text: str) -> str:
    """Why feature ``name`` is ``value`` throughout ``text`` (its tokens, newlines left out).

    A text can hold quotes or brackets and still have a constant feature: a word ``'""'``
    opens and closes its quote within one token.
    """
    if name in MARKS:
        marks, what = MARKS[name]
        if not any(ch in text for ch in marks):
            return f"no {what} in this text"
        return f"{'every' if value else 'no'} token of this text is inside {what}"
    if name == "line_position":  # 0 throughout: every token starts a line
        return "every token of this text starts a line"
    if name == "after_newline":  # 0 throughout (the first token is never after a newline)
        return "no token follows a newline in this text"
    return f"{name} is {value:g} for every token of this text"
