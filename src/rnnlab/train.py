"""Training a language model with truncated backpropagation through time.

One step (Zaremba et al. 2014; PyTorch's word_language_model)::

    x, y = window i of the B parallel token streams          (T, B) each
    loss, state = model.loss(x, y, state)                    state carried from window i-1
    model.backward_loss()                                    no gradient across the window edge
    norm = clip_grad_norm(params, clip)                      global L2 norm (pre-clip)
    optimizer.step()

Each evaluation logs a row of ``metrics.jsonl``: losses, learning rate, the pre-clip
gradient norm at that step (``grad_norm``) and, since the previous evaluation, the mean
pre-clip norm (``grad_norm_mean``) and the fraction of steps clipped (``clipped_frac``),
and a text sampled from the model (``sample``, ``sample_length`` tokens drawn from the
run's own sample stream, so that sampling leaves training untouched).

The state is reset to zeros at each epoch. Everything needed to continue exactly (weights,
optimizer buffers, the RNG, the carried state, the data position, the schedule) is saved
at every evaluation, so ``--resume`` reproduces an uninterrupted run bit for bit.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from rnnlab.errors import TrainingDiverged
from rnnlab.evaluation import evaluate_loss
from rnnlab.generate import sample_text
from rnnlab.metrics import perplexity
from rnnlab.optim import clip_grad_norm, grad_norm
from rnnlab.run import Progress, Run, TrainConfig, load_metrics
from rnnlab.schedule import Schedule

__all__ = ["Progress", "TrainingDiverged", "diverged_message", "divergence_limit", "epoch_bar",
           "evaluate", "load_metrics", "out_of_budget", "train"]


def evaluate(run: Run, ids: np.ndarray) -> tuple[float, int]:
    """Mean loss in nats per token over ``ids`` (state carried), and the token count, with
    the run's validation settings (``eval_batch_size`` streams, ``bptt``)."""
    cfg = run.config
    return evaluate_loss(run.model, ids, batch_size=cfg.eval_batch_size, bptt=cfg.bptt)


def divergence_limit(cfg: TrainConfig, vocab_size: int) -> float:
    """The loss above which training counts as diverged: ``diverge_factor * ln V``.

    ``ln V`` is the loss of guessing uniformly over the V tokens; a loss 100 times that
    (the default factor) gives the right token a probability below ``V**-100``. Runs that
    start far above ``ln V`` (a large ``--init-range``) stay well below it; only an
    explosion gets there. ``diverge_factor = 0`` turns the rule off (NaN still stops).
    """
    if cfg.diverge_factor == 0:
        return math.inf
    return cfg.diverge_factor * max(math.log(vocab_size), 1.0)


def train(run: Run, *, progress_bar: bool = True) -> Progress:
    """Train ``run`` until its epochs, steps or time budget are spent; returns the progress."""
    cfg, model = run.config, run.model
    prog: Progress = run.progress
    schedule = Schedule.from_config(cfg, run.optimizer, run.schedule_state)
    params = model.named_params()
    started = time.perf_counter() - prog.elapsed_s
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught explicitly
        return _train_epochs(run, prog, schedule, params, started, progress_bar)


def _train_epochs(run: Run, prog: Progress, schedule: Schedule, params: dict[str, Any],
                  started: float, progress_bar: bool) -> Progress:
    cfg, model = run.config, run.model
    limit = divergence_limit(cfg, len(run.vocab))
    while prog.epoch < cfg.epochs and not out_of_budget(cfg, prog):
        batches = run.train_batches
        state = run.state if prog.batch > 0 else None
        bar = epoch_bar(progress_bar, len(batches), prog)
        for x, y in batches.iter_from(prog.batch):
            loss, state = model.loss(x, y, state)
            model.zero_grad()
            model.backward_loss()
            norm = clip_grad_norm(params, cfg.clip) if cfg.clip > 0 else grad_norm(params)
            if not (loss <= limit and math.isfinite(norm)):  # NaN fails every comparison
                raise TrainingDiverged(diverged_message(prog, "training", loss, limit, params))
            run.optimizer.step()
            prog.grad_norm_sum += norm
            prog.clipped_count += int(cfg.clip > 0 and norm > cfg.clip)
            prog.batch += 1
            prog.step += 1
            prog.tokens += x.size
            prog.last_loss = loss
            prog.train_loss_sum += loss
            prog.train_loss_count += 1
            prog.elapsed_s = time.perf_counter() - started
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{prog.tokens / prog.elapsed_s:.0f}")
            if out_of_budget(cfg, prog):
                break  # evaluated and saved below
            if prog.batch < len(batches) and cfg.eval_every and prog.step % cfg.eval_every == 0:
                run.state = state
                _evaluate_and_save(run, prog, schedule, norm, limit, epoch_end=False)
        if bar is not None:
            bar.close()
        run.state = state
        epoch_done = prog.batch >= len(batches)
        if epoch_done:
            prog.epoch += 1
            prog.batch = 0
        _evaluate_and_save(run, prog, schedule, norm, limit, epoch_end=epoch_done)
    return prog


def _evaluate_and_save(
    run: Run, prog: Progress, schedule: Schedule, grad_norm: float, limit: float, *,
    epoch_end: bool,
) -> None:
    val_loss, _ = evaluate(run, run.val_ids)
    if not val_loss <= limit:  # checked before anything is saved: the last good checkpoint stays
        raise TrainingDiverged(diverged_message(prog, "validation", val_loss, limit,
                                                 run.model.named_params(), stepped=True))
    row: dict[str, Any] = {
        "step": prog.step, "epoch": prog.epoch + (prog.batch / len(run.train_batches)),
        "lr": run.optimizer.lr,
        "train_loss": prog.train_loss_sum / max(prog.train_loss_count, 1),
        "val_loss": val_loss, "val_ppl": perplexity(val_loss),
        "grad_norm": grad_norm, **_health(prog),
        "tokens_per_s": prog.tokens / max(prog.elapsed_s, 1e-9), "elapsed_s": prog.elapsed_s,
    }
    if run.level == "char":
        row["val_bpc"] = val_loss / math.log(2)
    if run.config.sample_length > 0:
        row["sample"] = sample_text(run.model, run.vocab, run.config.sample_length,
                                    run.sample_rng)
    prog.train_loss_sum, prog.train_loss_count = 0.0, 0
    prog.grad_norm_sum, prog.clipped_count = 0.0, 0
    if epoch_end:
        schedule.epoch_end(prog.epoch, val_loss)
    improved = val_loss < prog.best_val
    if improved:
        prog.best_val = val_loss
    run.schedule_state = schedule.state()
    run.log_metrics(row)
    run.save_checkpoint("last")
    if improved:
        run.save_checkpoint("best")


def _health(prog: Progress) -> dict[str, float]:
    """Since the last evaluation: the mean pre-clip gradient norm, the fraction of steps clipped."""
    steps = max(prog.train_loss_count, 1)
    return {"grad_norm_mean": prog.grad_norm_sum / steps,
            "clipped_frac": prog.clipped_count / steps}


def out_of_budget(cfg: TrainConfig, prog: Progress) -> bool:
    """Whether ``--max-steps`` or ``--time-budget`` is spent."""
    if cfg.max_steps is not None and prog.step >= cfg.max_steps:
        return True
    return cfg.time_budget is not None and prog.elapsed_s >= cfg.time_budget


def diverged_message(prog: Progress, what: str, loss: float, limit: float,
                      params: dict[str, Any], *, stepped: bool = False) -> str:
    """One line: which loss, at which step, the last sane training loss, each gradient norm."""
    norms = {n: grad_norm([p]) for n, p in params.items()}
    shown = ", ".join(f"{n}={v:.3g}" for n, v in norms.items())
    step = prog.step if stepped else prog.step + 1
    became = (f"became {loss} at step {step}" if not math.isfinite(loss) else
              f"exploded to {loss:.4g} at step {step}, above the divergence limit {limit:.4g} "
              "(--diverge-factor x ln V; 0 turns this check off)")
    return (f"{what} loss {became} (last sane loss {prog.last_loss:.4f}); "
            f"gradient norms: {shown}. The last good checkpoint is kept: lower --lr or set "
            "--clip, then --resume")


def epoch_bar(enabled: bool, total: int, prog: Progress) -> Any:
    """A tqdm bar over one epoch's ``total`` batches, from the current one (None: disabled)."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=prog.batch, desc=f"epoch {prog.epoch + 1}",
                unit="batch", dynamic_ncols=True, leave=False)
