"""Training a sequence-task model: shuffled, length-bucketed, padded batches.

One step, as for the language model but with whole examples (no state carried)::

    batch = padded examples of similar length        x (T, N), lengths (N,), targets
    loss = task.loss(model, batch)                   masked mean over real steps / examples
    model.backward_loss(); clip_grad_norm(params, clip); optimizer.step()

Each epoch draws its batch order from ``run.order_rng`` once, at its start; the order, both
generators, the optimizer and the progress are saved at every evaluation, so ``--resume``
continues exactly where an uninterrupted run would be. Each evaluation logs the validation
loss and the task's metrics; ``best`` is the checkpoint with the highest main metric
(accuracy, entity F1 or token accuracy, exact match), ties broken by the lower loss.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from rnnlab.errors import TrainingDiverged
from rnnlab.optim import clip_grad_norm, grad_norm
from rnnlab.schedule import Schedule
from rnnlab.tasks.run import TaskProgress, TaskRun
from rnnlab.train import diverged_message, divergence_limit, epoch_bar, out_of_budget

__all__ = ["train_task"]


def train_task(run: TaskRun, *, progress_bar: bool = True) -> TaskProgress:
    """Train until the epochs, steps or time budget are spent; returns the progress."""
    cfg, prog = run.config, run.progress
    schedule = Schedule.from_config(cfg, run.optimizer, run.schedule_state)
    limit = divergence_limit(cfg, run.task.outputs())
    started = time.perf_counter() - prog.elapsed_s
    run.model.train()
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught explicitly
        while prog.epoch < cfg.epochs and not out_of_budget(cfg, prog):
            if prog.batch == 0 or run.order is None:
                run.order = run.train_batches.order()
            norm = _epoch(run, schedule, limit, started, progress_bar)
            if prog.batch >= len(run.order):
                prog.epoch += 1
                prog.batch = 0
                _evaluate_and_save(run, schedule, norm, limit, epoch_end=True)
            else:
                _evaluate_and_save(run, schedule, norm, limit, epoch_end=False)
    return prog


def _epoch(run: TaskRun, schedule: Schedule, limit: float, started: float,
           progress_bar: bool) -> float:
    """The rest of the current epoch's batches (or until the budget ends); the last norm."""
    cfg, prog, model, order = run.config, run.progress, run.model, run.order or []
    params = model.named_params()
    bar = epoch_bar(progress_bar, len(order), prog)
    norm = float("nan")
    for index in order[prog.batch:]:
        batch = run.train_batches.batch(index)
        model.zero_grad()
        loss = run.task.loss(model, batch, run.train)
        model.backward_loss()
        norm = clip_grad_norm(params, cfg.clip) if cfg.clip > 0 else grad_norm(params)
        if not (loss <= limit and math.isfinite(norm)):  # NaN fails every comparison
            raise TrainingDiverged(diverged_message(prog, "training", loss, limit, params))
        run.optimizer.step()
        prog.batch += 1
        prog.step += 1
        prog.tokens += int(batch.lengths.sum())
        prog.last_loss = loss
        prog.train_loss_sum += loss
        prog.train_loss_count += 1
        prog.elapsed_s = time.perf_counter() - started
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
        if out_of_budget(cfg, prog):
            break
        if prog.batch < len(order) and cfg.eval_every and prog.step % cfg.eval_every == 0:
            _evaluate_and_save(run, schedule, norm, limit, epoch_end=False)
    if bar is not None:
        bar.close()
    return norm


def _evaluate_and_save(run: TaskRun, schedule: Schedule, grad_norm: float, limit: float, *,
                       epoch_end: bool) -> None:
    prog, task = run.progress, run.task
    run.model.eval()
    metrics = task.evaluate(run.model, run.val, run.config.eval_batch_size)
    run.model.train()
    val_loss = metrics["loss"]
    if not val_loss <= limit:  # checked before anything is saved
        raise TrainingDiverged(diverged_message(prog, "validation", val_loss, limit,
                                                run.model.named_params(), stepped=True))
    row: dict[str, Any] = {
        "step": prog.step, "epoch": prog.epoch + prog.batch / max(len(run.train_batches), 1),
        "lr": run.optimizer.lr,
        "train_loss": prog.train_loss_sum / max(prog.train_loss_count, 1), "val_loss": val_loss,
        **{f"val_{k}": v for k, v in metrics.items() if k != "loss" and isinstance(v, float)},
        "grad_norm": grad_norm, "elapsed_s": prog.elapsed_s,
    }
    prog.train_loss_sum, prog.train_loss_count = 0.0, 0
    if epoch_end:
        schedule.epoch_end(prog.epoch, val_loss)
    main = metrics[task.main_metric]
    improved = main > prog.best_metric or (main == prog.best_metric and val_loss < prog.best_val)
    if improved:
        prog.best_metric, prog.best_val = main, val_loss
    run.schedule_state = schedule.state()
    run.log_metrics(row)
    run.save_checkpoint("last")
    if improved:
        run.save_checkpoint("best")
