"""What every model's ``from_config`` shares: check a configuration, then build from it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def checked_from_config(cls: Any, cfg: dict[str, Any], keys: Sequence[str],
                        positional: Sequence[str], rng: np.random.Generator) -> Any:
    """``cls(*(cfg[k] for k in positional), **the rest of cfg, rng=rng)``, after checking
    that every key of ``cfg`` is one of ``keys`` and the positional ones are there; else a
    ValueError naming the first key at fault.

    >>> from rnnlab.models import LanguageModel
    >>> checked_from_config(LanguageModel, {"embed_size": 4}, ["vocab_size", "embed_size"],
    ...                     ["vocab_size"], np.random.default_rng(0))
    Traceback (most recent call last):
    ...
    ValueError: model configuration lacks 'vocab_size'
    """
    unknown = sorted(set(cfg) - set(keys))
    if unknown:
        raise ValueError(f"unknown model configuration key {unknown[0]!r} "
                         f"(known: {', '.join(keys)})")
    missing = [k for k in positional if k not in cfg]
    if missing:
        raise ValueError(f"model configuration lacks {missing[0]!r}")
    kw = dict(cfg)
    args = [kw.pop(k) for k in positional]  # popped before kw is spread
    return cls(*args, **kw, rng=rng)
