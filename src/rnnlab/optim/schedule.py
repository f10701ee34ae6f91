"""Learning-rate schedules: ``epoch_end`` after each epoch, ``step_begin`` before each step.

- ``constant``: lr never changes.
- ``zaremba``: constant for ``decay_after`` epochs, then multiplied by ``lr_decay`` after
  every epoch (Zaremba et al. 2014: lr 1, x0.5 per epoch after epoch 4).
- ``plateau``: multiplied by ``lr_decay`` whenever the validation loss fails to improve
  on the best so far (PyTorch's word_language_model divides by 4).
- ``cosine``: annealed from the configured lr to 0 over the run (Loshchilov & Hutter 2017,
  SGDR without restarts; PyTorch's ``CosineAnnealingLR`` with ``eta_min=0``):
  ``lr = lr_0 * (1 + cos(pi * done)) / 2``, ``done`` the share of the run behind, by
  whichever limit ends it first (``--epochs``, ``--max-steps``, ``--time-budget``; see
  :func:`rnnlab.training.loop.run_fraction`). Under a time budget the lr follows the clock,
  so two runs of the same seed differ.
"""

from __future__ import annotations

import math
from typing import Any

SCHEDULES = ("constant", "zaremba", "plateau", "cosine")


class Schedule:
    def __init__(self, kind: str, optimizer: Any, *, lr_decay: float, decay_after: int,
                 best: float = float("inf"), lr: float | None = None) -> None:
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {kind!r}")
        self.kind, self.optimizer = kind, optimizer
        self.lr_decay, self.decay_after, self.best = lr_decay, decay_after, best
        self.lr_0 = optimizer.lr if lr is None else lr  # cosine's starting lr

    @classmethod
    def from_config(cls, cfg: Any, optimizer: Any, state: dict[str, Any] | None) -> Schedule:
        best = float((state or {}).get("best", float("inf")))
        return cls(cfg.schedule, optimizer, lr_decay=cfg.lr_decay, decay_after=cfg.decay_after,
                   best=best, lr=cfg.lr)

    def step_begin(self, done: float) -> None:
        """Set the lr of the next step, ``done`` in [0, 1] the share of the run behind."""
        if self.kind == "cosine":
            self.optimizer.lr = self.lr_0 * (1.0 + math.cos(math.pi * min(done, 1.0))) / 2.0

    def epoch_end(self, epochs_done: int, val_loss: float) -> None:
        """Update the optimizer's lr after ``epochs_done`` complete epochs."""
        if self.kind == "zaremba" and epochs_done >= self.decay_after:
            self.optimizer.lr *= self.lr_decay
        elif self.kind == "plateau" and val_loss >= self.best:
            self.optimizer.lr *= self.lr_decay
        self.best = min(self.best, val_loss)

    def state(self) -> dict[str, Any]:
        return {"best": self.best}
