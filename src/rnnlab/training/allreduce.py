"""One step of a data-parallel run: every rank's gradients and counts, summed in one call.

Rank r's model computed the mean loss of its share of the global batch, ``L_r = S_r / n_r``
(S_r its summed loss, n_r the positions it counted), and backpropagated it. One process on
the global batch would have computed ``L = Σ_r S_r / N``, ``N = Σ_r n_r``, whose gradient is

    ∇L = Σ_r (n_r / N) ∇L_r

So each rank writes ``n_r ∇L_r`` (the gradient of its summed loss) into one contiguous
buffer, with ``S_r``, ``n_r`` and the rest of what the ranks must agree on behind it::

    buf = [ n_r g_1.ravel() | ... | n_r g_P.ravel() | S_r  s_r  n_r  tokens_r  int_r  term_r  t_0 ]

and one ``Allreduce(SUM)`` gives every rank ``Σ_r n_r ∇L_r`` (divided by N: ∇L), the global
loss ``Σ S_r / N``, the batch's tokens, whether any rank got SIGINT or SIGTERM, and rank 0's
elapsed time (t_0; the others add 0), so that every rank takes the same decision to stop
after the same step. A NaN loss on one rank makes the sum NaN: every rank sees it and stops
alike. A rank with no example (a batch smaller than K) contributes zeros. The buffer has the
gradients' dtype (4 bytes per parameter in float32); the loss sum rides in it as two parts
(*the split sum*: ``S_r`` rounded to the buffer's dtype and ``s_r``, what that rounding lost),
so that a float32 run's global loss keeps about twice float32's digits.
Clipping and the update then run on the same summed gradients on every rank, so the
weights stay equal; :meth:`StepReducer.check_weights` proves it every
``--check-weights-every`` steps (a CRC-32 of every parameter's bytes, gathered: 4 bytes per
rank), and a rank whose weights differ stops every rank with one line.
"""

from __future__ import annotations

import signal
import zlib
from typing import Any

import numpy as np

from rnnlab.errors import RanksDisagree
from rnnlab.training.ranks import World

EXTRA = 7  # S, s (the split sum), n, tokens, SIGINT, SIGTERM, rank 0's elapsed seconds


class AgreedStop:
    """The stop request the ranks agreed on at the last all-reduce (what the loop reads,
    instead of this rank's own signal, so that every rank stops at the same step)."""

    signal: int | None = None


class StepReducer:
    """The buffer and the one ``Allreduce`` of every step (see the module doc)."""

    def __init__(self, world: World, params: dict[str, Any]) -> None:
        self.world, self.params = world, params
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
        rounded = float(buf.dtype.type(loss_sum))  # the split sum: S_r = rounded + rest
        buf[-EXTRA:] = (rounded, loss_sum - rounded, count, tokens, own == signal.SIGINT,
                        own == signal.SIGTERM, elapsed if self.world.root else 0.0)
        self.world.sum(buf)
        high, low, total, tokens_all, sigint, sigterm, t0 = (float(v) for v in buf[-EXTRA:])
        total_sum = high + low
        scale = buf.dtype.type(1.0 / total) if total else buf.dtype.type(0.0)
        for g, lo, hi in zip(self.grads, b[:-1], b[1:], strict=True):
            np.multiply(buf[lo:hi], scale, out=g.reshape(-1))
        agreed = signal.SIGTERM if sigterm else signal.SIGINT if sigint else None
        loss = total_sum / total if total else 0.0
        return loss, int(round(tokens_all)), agreed, t0

    def check_weights(self, step: int) -> None:
        """Every rank's checksum of its weights, gathered; a RanksDisagree (raised alike by
        every rank, printed once) naming the first rank whose weights are not rank 0's."""
        crc = 0
        for p in self.params.values():
            crc = zlib.crc32(p.value.tobytes(), crc)  # the exact bytes: any drift shows
        sums = self.world.gather(crc)
        bad = [r for r, c in enumerate(sums) if c != sums[0]]
        if bad:
            error = RanksDisagree(
                f"after step {step} the weights of rank {bad[0]} differ from rank 0's "
                f"(checksums {sums[bad[0]]:08x} and {sums[0]:08x}): the ranks no longer train "
                "one model, so nothing was saved at this step; --resume continues from the "
                "last checkpoint (rank 0's weights)")
            error.every_rank = True
            raise error
