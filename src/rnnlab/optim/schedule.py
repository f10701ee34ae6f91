"""Learning-rate schedules, applied at the end of each epoch.

- ``constant``: lr never changes.
- ``zaremba``: constant for ``decay_after`` epochs, then multiplied by ``lr_decay`` after
  every epoch (Zaremba et al. 2014: lr 1, x0.5 per epoch after epoch 4).
- ``plateau``: multiplied by ``lr_decay`` whenever the validation loss fails to improve
  on the best so far (PyTorch's word_language_model divides by 4).
"""

from __future__ import annotations

from typing import Any

SCHEDULES = ("constant", "zaremba", "plateau")


class Schedule:
    def __init__(self, kind: str, optimizer: Any, *, lr_decay: float, decay_after: int,
                 best: float = float("inf")) -> None:
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {kind!r}")
        self.kind, self.optimizer = kind, optimizer
        self.lr_decay, self.decay_after, self.best = lr_decay, decay_after, best

    @classmethod
    def from_config(cls, cfg: Any, optimizer: Any, state: dict[str, Any] | None) -> Schedule:
        best = float((state or {}).get("best", float("inf")))
        return cls(cfg.schedule, optimizer, lr_decay=cfg.lr_decay, decay_after=cfg.decay_after,
                   best=best)

    def epoch_end(self, epochs_done: int, val_loss: float) -> None:
        """Update the optimizer's lr after ``epochs_done`` complete epochs."""
        if self.kind == "zaremba" and epochs_done >= self.decay_after:
            self.optimizer.lr *= self.lr_decay
        elif self.kind == "plateau" and val_loss >= self.best:
            self.optimizer.lr *= self.lr_decay
        self.best = min(self.best, val_loss)

    def state(self) -> dict[str, Any]:
        return {"best": self.best}
