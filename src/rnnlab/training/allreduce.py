"""One step of a data-parallel run: every rank's gradients and counts, summed in one call.

Rank r's model computed the mean loss of its share of the global batch, ``L_r = S_r / n_r``
(S_r its summed loss, n_r the positions it counted), and backpropagated it. One process on
the global batch would have computed ``L = Σ_r S_r / N``, ``N = Σ_r n_r``, whose gradient is

    ∇L = Σ_r (n_r / N) ∇L_r

So each rank writes ``n_r ∇L_r`` (the gradient of its summed loss) into one contiguous
buffer, with ``S_r``, ``n_r`` and the rest of what the ranks must agree on behind it::

    buf = [ n_r g_1.ravel() | ... | n_r g_P.ravel() | S_r  n_r  tokens_r  int_r  term_r  t_0 ]

and one ``Allreduce(SUM)`` gives every rank ``Σ_r n_r ∇L_r`` (divided by N: ∇L), the global
loss ``Σ S_r / N``, the batch's tokens, whether any rank got SIGINT or SIGTERM, and rank 0's
elapsed time (t_0; the others add 0), so that every rank takes the same decision to stop
after the same step. A NaN loss on one rank makes the sum NaN: every rank sees it and stops
alike. A rank with no example (a batch smaller than K) contributes zeros. The buffer has the
gradients' dtype (4 bytes per parameter in float32), so the loss sum is rounded to it.
Clipping and the update then run on the same summed gradients on every rank, so the
weights stay equal.
"""

from __future__ import annotations

import signal
from typing import Any

import numpy as np

from rnnlab.training.ranks import World

EXTRA = 6  # S, n, tokens, SIGINT, SIGTERM, rank 0's elapsed seconds


class AgreedStop:
    """The stop request the ranks agreed on at the last all-reduce (what the loop reads,
    instead of this rank's own signal, so that every rank stops at the same step)."""

    signal: int | None = None


class StepReducer:
    """The buffer and the one ``Allreduce`` of every step (see the module doc)."""

    def __init__(self, world: World, params: dict[str, Any]) -> None:
        self.world = world
        self.grads = [p.grad for p in params.values()]
        dtype = np.result_type(*self.grads)
        self.bounds = np.cumsum([0] + [g.size for g in self.grads])
        self.buf = np.empty(int(self.bounds[-1]) + EXTRA, dtype=dtype)

    def reduce(self, loss_sum: float, count: int, tokens: int, own: int | None,
               elapsed: float) -> tuple[float, int, int | None, float]:
        """Sum the gradients (in place, now ``∇L`` on every rank); returns the global mean
        loss, tokens, the agreed signal (SIGTERM before SIGINT; None) and the elapsed time."""
        buf, b = self.buf, self.bounds
        for g, lo, hi in zip(self.grads, b[:-1], b[1:], strict=True):
            np.multiply(g.reshape(-1), count, out=buf[lo:hi])
        buf[-EXTRA:] = (loss_sum, count, tokens, own == signal.SIGINT, own == signal.SIGTERM,
                        elapsed if self.world.root else 0.0)
        self.world.sum(buf)
        total_sum, total, tokens_all, sigint, sigterm, t0 = (float(v) for v in buf[-EXTRA:])
        scale = buf.dtype.type(1.0 / total) if total else buf.dtype.type(0.0)
        for g, lo, hi in zip(self.grads, b[:-1], b[1:], strict=True):
            np.multiply(buf[lo:hi], scale, out=g.reshape(-1))
        agreed = signal.SIGTERM if sigterm else signal.SIGINT if sigint else None
        loss = total_sum / total if total else 0.0
        return loss, int(round(tokens_all)), agreed, t0
