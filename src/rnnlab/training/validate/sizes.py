"""Will a language model fit? Its parameter count and training memory, checked before anything
is allocated::

    parameter_count(kw, V)           parameters of LanguageModel(V, **kw)
    memory_bytes(kw, V, B, T)        parameters + gradients + optimizer buffers + one step's
                                     activations
    check_size(kw, V, B, T, where)   refuses a model needing more than this machine's memory
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnnlab.errors import RnnlabError, UsageError
from rnnlab.models._cells import CELLS


def parameter_count(kw: Mapping[str, Any], vocab_size: int) -> int:
    """Parameters of ``LanguageModel(vocab_size, **kw)`` (a tied decoder weight counted once)."""
    E, H, L = kw["embed_size"], kw["hidden_size"], kw["num_layers"]
    G = CELLS[kw["cell"]].gates
    rnn = G * H * (E + H + 2) + (L - 1) * G * H * (2 * H + 2)  # layer 0 reads E, the rest H
    decoder = (0 if kw["tie_weights"] else H * vocab_size) + vocab_size
    return vocab_size * E + rnn + decoder


def memory_bytes(kw: Mapping[str, Any], vocab_size: int, batch: int, bptt: int) -> int:
    """About what training needs: value, gradient and two optimizer buffers per parameter,
    and one window's activations (gates and states per layer, logits and their gradient)."""
    H, L, E = kw["hidden_size"], kw["num_layers"], kw["embed_size"]
    G = CELLS[kw["cell"]].gates
    activations = batch * bptt * (E + L * (2 * G + 4) * H + 3 * vocab_size)
    return np.dtype(kw["dtype"]).itemsize * (4 * parameter_count(kw, vocab_size) + activations)


def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): no limit known
        return None


def check_size(kw: Mapping[str, Any], vocab_size: int, batch: int, bptt: int, where: str,
               error: type[RnnlabError] = UsageError) -> None:
    """Refuse a model (``LanguageModel`` arguments ``kw``) too big for this machine's memory."""
    need, have = memory_bytes(kw, vocab_size, batch, bptt), _physical_memory()
    if have is not None and need > have:
        raise error(f"{where}: a {kw['num_layers']}x{kw['hidden_size']} {kw['cell'].upper()} "
                    f"(embed {kw['embed_size']}, {vocab_size} tokens, batch {batch} x bptt "
                    f"{bptt}) needs about {_gib(need)} GiB but this machine has "
                    f"{_gib(have)} GiB: lower --hidden, --embed, --layers, --batch-size "
                    "or --bptt")


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g}" if n < 2**1000 else "more than 1e290"
