"""Numbers reported about a model, and how they are written so that nothing can crash on them.

A loss is finite or it is not; its perplexity ``exp(loss)`` overflows a float for any loss
above about 709.78 nats. Neither case may raise, and neither may reach a JSON file as
``Infinity`` or ``NaN`` (not JSON: strict readers reject them)::

    >>> perplexity(2.0)
    7.38905609893065
    >>> perplexity(1000.0)
    inf
    >>> describe_perplexity(1000.0)
    'infinite (exp of the loss overflows)'
    >>> json_line({"loss": 1000.0, "ppl": perplexity(1000.0)})
    '{"loss": 1000.0, "ppl": null, "ppl_note": "infinite (too large for a float)"}'
"""

from __future__ import annotations

import json
import math
from typing import Any


def perplexity(loss: float) -> float:
    """``exp(loss)``: ``inf`` when it overflows, ``nan`` for a NaN loss; never raises."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def describe_perplexity(loss: float) -> str:
    """The perplexity of ``loss`` in words, for a person to read (two decimals when finite)."""
    if math.isnan(loss):
        return "undefined (the loss is NaN)"
    ppl = perplexity(loss)
    return f"{ppl:.2f}" if math.isfinite(ppl) else "infinite (exp of the loss overflows)"


def _note(value: float) -> str:
    return "NaN (not a number)" if math.isnan(value) else "infinite (too large for a float)"


def json_safe(row: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` with each non-finite float written as None and ``<key>_note`` beside it."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key], out[f"{key}_note"] = None, _note(value)
        else:
            out[key] = value
    return out


def json_line(row: dict[str, Any]) -> str:
    """``row`` as one line of standard JSON (``allow_nan=False``: no Infinity, no NaN)."""
    return json.dumps(json_safe(row), allow_nan=False)
