"""Evaluating a language model: its mean loss over a token stream.

The one evaluation loop, used by training (validation, ``eval_batch_size`` parallel
streams) and by ``rnnlab eval`` (one stream, so every token but the first is scored)::

    for x, y in BPTTBatches(ids, batch_size, bptt):     (T, B) windows, state carried
        loss, state = model.loss(x, y, state)
    mean = Σ loss sums / Σ targets                        nats per token

>>> model = LanguageModel(5, embed_size=4, hidden_size=4, rng=np.random.default_rng(0))
>>> ids = np.random.default_rng(1).integers(0, 5, size=101)
>>> loss, count = evaluate_loss(model, ids, batch_size=1, bptt=8)
>>> count, bool(abs(loss - np.log(5)) < 0.5)  # 100 targets; an untrained model is near ln V
(100, True)
"""

from __future__ import annotations

import numpy as np

from rnnlab.data import BPTTBatches
from rnnlab.models import LanguageModel


def evaluate_loss(model: LanguageModel, ids: np.ndarray, *, batch_size: int, bptt: int
                  ) -> tuple[float, int]:
    """Mean loss in nats per token over ``ids`` (state carried), and the number of targets.

    ``model`` runs in eval mode (no dropout) and is returned to its previous mode.
    ``batch_size``: the parallel streams the ids are cut into (the tail beyond a multiple
    of it is dropped, see :class:`rnnlab.data.BPTTBatches`); ``bptt``: steps per window.
    """
    was_training = model.training
    model.eval()
    try:
        state, total, count = None, 0.0, 0
        for x, y in BPTTBatches(ids, batch_size, bptt):
            _, state = model.loss(x, y, state)
            total += model.criterion.last_loss_sum
            count += model.criterion.last_count
    finally:
        model.train(was_training)
    return total / max(count, 1), count
