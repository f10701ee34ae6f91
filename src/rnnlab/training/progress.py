"""Where training stands: saved in every checkpoint (``meta.progress``, JSON) and restored
by ``--resume``, so that the next row an interrupted run logs is the row an uninterrupted
one would have logged."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Progress:
    """Counters of one run. The sums are running means' numerators: ``train_loss_sum`` and
    ``grad_norm_sum`` since the last evaluation (its row's ``train_loss``,
    ``grad_norm_mean``), ``log_*`` since the last row of ``steps.jsonl``."""

    epoch: int = 0
    batch: int = 0  # next batch of the epoch
    step: int = 0
    tokens: int = 0
    elapsed_s: float = 0.0
    last_loss: float = float("nan")
    best_val: float = float("inf")
    train_loss_sum: float = 0.0  # since the last evaluation, for its train_loss
    train_loss_count: int = 0  # also the steps since then
    grad_norm_sum: float = 0.0  # pre-clip norms since the last evaluation, for grad_norm_mean
    clipped_count: int = 0  # steps clipped since the last evaluation, for clipped_frac
    log_loss_sum: float = 0.0  # since the last steps.jsonl row (--log-every)
    log_norm_sum: float = 0.0
    log_count: int = 0


@dataclass
class TaskProgress(Progress):
    """Progress of a task whose ``best`` checkpoint is chosen by a metric other than the
    loss (accuracy, F1, exact match): that metric's best value so far."""

    best_metric: float = float("-inf")
