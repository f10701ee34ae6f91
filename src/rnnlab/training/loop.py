"""The one training loop, for every task (the task contract: :mod:`rnnlab.training.task`).

One step (Zaremba et al. 2014; PyTorch's word_language_model; for a language model the
batch is window i of the B parallel token streams, its state carried from window i-1)::

    model.zero_grad()
    loss, tokens = feed.step(model, i)         forward pass and mean loss of batch i
    model.backward_loss()                      no gradient across a window edge
    loss, norm = clip_and_read(params, clip, loss)   global L2 norm (pre-clip); on a GPU
                                               the step's one read: loss and norm together
    optimizer.step()

Every ``--log-every`` steps a row of ``steps.jsonl`` (mean training loss and gradient norm
over those steps); every ``--eval-every`` steps and at each epoch's end an evaluation: a
row of ``metrics.jsonl`` (losses, the task's metrics, learning rate, the pre-clip gradient
norm at that step and, since the previous evaluation, its mean ``grad_norm_mean``, the
fraction of steps clipped ``clipped_frac``, ``tokens_per_s``), then the ``last`` checkpoint,
and ``best`` when the task's main metric improved.

A NaN or exploding loss stops before anything is saved (the last good checkpoint stays).
SIGTERM or Ctrl-C stop after the current step (and its evaluation, if one is due there,
which a resumed run would not make again): ``last`` is written at that
step (with the running sums, so the next row is the one an uninterrupted run would log)
and :func:`train` returns the signal; a second Ctrl-C stops at once. Everything the next
step depends on is in the checkpoint, so ``--resume`` reproduces an uninterrupted run bit
for bit (on the same BLAS threads and device).

On K processes (``mpiexec -n K``, :mod:`rnnlab.training.ranks`) the loop is the same on
every rank: the feed gives each rank its share of the batch (``Feed.shard``), and between
the backward pass and clipping one all-reduce (:mod:`rnnlab.training.allreduce`) makes every
rank's gradients those of one process's mean loss over the global batch, and makes the
ranks agree on the loss, the tokens, a stop signal and the elapsed time. So every rank takes
the same decisions at the same steps; only rank 0 writes (its :class:`RunFolder`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from rnnlab.device import using
from rnnlab.errors import TrainingDiverged
from rnnlab.optim import clip_and_read, grad_norm
from rnnlab.optim.schedule import Schedule
from rnnlab.training.allreduce import AgreedStop, StepReducer
from rnnlab.training.config import TrainConfig
from rnnlab.training.progress import Progress, TaskProgress
from rnnlab.training.run import Run
from rnnlab.training.signals import StopRequests

__all__ = ["diverged_message", "divergence_limit", "out_of_budget", "train"]


def divergence_limit(cfg: TrainConfig, outputs: int) -> float:
    """The loss above which training counts as diverged: ``diverge_factor * ln V``.

    ``ln V`` is the loss of guessing uniformly over the V outputs; a loss 100 times that
    (the default factor) gives the right output a probability below ``V**-100``. Runs that
    start far above ``ln V`` (a large ``--init-range``) stay well below it; only an
    explosion gets there. ``diverge_factor = 0`` turns the rule off (NaN still stops).
    """
    if cfg.diverge_factor == 0:
        return math.inf
    return cfg.diverge_factor * max(math.log(outputs), 1.0)


def train(run: Run, *, progress_bar: bool = True, stop: StopRequests | None = None
          ) -> int | None:
    """Train ``run`` until its epochs, steps or time budget are spent. Returns None, or the
    signal (SIGINT, SIGTERM) that stopped it after ``last`` was saved. ``stop``: the
    caller's :class:`StopRequests`, entered already (a signal may have come before the
    first step); by default the loop sets up its own."""
    with (stop or StopRequests()) as requests, np.errstate(over="ignore", invalid="ignore"), \
            using(run.device):  # on cuda:N, new arrays go to GPU N
        return _Loop(run, requests, progress_bar).loop()


class _Loop:
    """One call of :func:`train`: the run, its schedule, and where the last save was."""

    def __init__(self, run: Run, stop: StopRequests, progress_bar: bool) -> None:
        self.run, self.progress_bar = run, progress_bar
        self.own_stop = stop
        self.stop: StopRequests | AgreedStop = stop  # what the loop acts on
        self.reducer: StepReducer | None = None
        if run.world.size > 1:  # the ranks act on what they agreed at the last all-reduce
            self.reducer, self.stop = StepReducer(run.world, run.model.named_params()), \
                AgreedStop()
        self.cfg, self.prog, self.feed = run.config, run.progress, run.feed
        self.schedule = Schedule.from_config(self.cfg, run.optimizer, run.schedule_state)
        self.limit = divergence_limit(self.cfg, run.task.outputs())
        self.params = run.model.named_params()
        self.started = time.perf_counter() - self.prog.elapsed_s
        self.saved_at = self.prog.step if self.prog.step else None  # 'last' is at this step
        self.norm = float("nan")

    def loop(self) -> int | None:
        cfg, prog = self.cfg, self.prog
        self.run.model.train()
        while prog.epoch < cfg.epochs and not out_of_budget(cfg, prog) and not self.stop.signal:
            if prog.batch == 0:
                self.feed.begin_epoch()
            self._epoch()
            if self.stop.signal and prog.batch < len(self.feed):
                break
            epoch_done = prog.batch >= len(self.feed)
            if epoch_done:
                prog.epoch += 1
                prog.batch = 0
            self._evaluate_and_save(epoch_end=epoch_done)
        if self.stop.signal is not None:
            if prog.step and self.saved_at != prog.step:
                self._save_last()
            return self.stop.signal
        return None

    def _epoch(self) -> None:
        """The rest of the current epoch's batches, until the budget ends or a signal."""
        cfg, prog, feed = self.cfg, self.prog, self.feed
        bar = epoch_bar(self.progress_bar, len(feed), prog)
        while prog.batch < len(feed):
            loss, tokens = self._step()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{prog.tokens / prog.elapsed_s:.0f}")
            if out_of_budget(cfg, prog):
                break  # evaluated and saved by the caller
            if prog.batch < len(feed) and cfg.eval_every and prog.step % cfg.eval_every == 0:
                self._evaluate_and_save(epoch_end=False)  # also when a signal came: a resumed
            if self.stop.signal:  # run would not evaluate this step again
                break  # saved as it stops
        if bar is not None:
            bar.close()

    def _step(self) -> tuple[float, int]:
        cfg, prog, model = self.cfg, self.prog, self.run.model
        self.schedule.step_begin(run_fraction(cfg, prog, len(self.feed)))
        model.zero_grad()
        loss, tokens = self.feed.step(model, prog.batch)
        elapsed = time.perf_counter() - self.started
        if self.reducer is None:
            model.backward_loss()
        else:
            loss, tokens, elapsed = self._all_reduce(tokens, elapsed)
        loss, norm = clip_and_read(self.params, cfg.clip, loss)  # on a GPU: the one read
        if not (loss <= self.limit and math.isfinite(norm)):  # NaN fails every comparison
            raise self._agreed(TrainingDiverged(diverged_message(
                prog, "training", loss, self.limit, self.params)))
        self.run.optimizer.step()
        self.norm = norm
        prog.grad_norm_sum += norm
        prog.clipped_count += int(cfg.clip > 0 and norm > cfg.clip)
        prog.batch += 1
        prog.step += 1
        prog.tokens += tokens
        prog.last_loss = loss
        prog.train_loss_sum += loss
        prog.train_loss_count += 1
        prog.elapsed_s = elapsed if self.reducer else time.perf_counter() - self.started
        self._log_step(loss, norm)
        every = cfg.check_weights_every
        if self.reducer is not None and every and prog.step % every == 0:
            self.reducer.check_weights(prog.step)
        return loss, tokens

    def _all_reduce(self, tokens: int, elapsed: float) -> tuple[float, int, float]:
        """This rank's backward pass, then the step's one all-reduce: the global mean loss
        and tokens, rank 0's elapsed time; the agreed stop request becomes ``self.stop``."""
        loss_sum, count = self.feed.loss_sum(self.run.model)
        if count:  # a rank without an example contributes zeros
            self.run.model.backward_loss()
        assert self.reducer is not None
        loss, tokens, self.stop.signal, elapsed = self.reducer.reduce(
            loss_sum, count, tokens, self.own_stop.signal, elapsed)
        return loss, tokens, elapsed

    def _agreed(self, error: TrainingDiverged) -> TrainingDiverged:
        """``error``, marked as raised alike by every rank (it checks agreed values)."""
        error.every_rank = self.reducer is not None
        return error

    def _log_step(self, loss: float, norm: float) -> None:
        """Every ``log_every`` steps, a row of steps.jsonl: the means since the last row."""
        prog, every = self.prog, self.cfg.log_every
        if not every:
            return
        prog.log_loss_sum += loss
        prog.log_norm_sum += norm
        prog.log_count += 1
        if prog.step % every == 0:
            n = prog.log_count
            self.run.folder.log_steps({
                "step": prog.step, "epoch": prog.epoch + prog.batch / max(len(self.feed), 1),
                "train_loss": prog.log_loss_sum / n, "grad_norm": prog.log_norm_sum / n,
                "lr": self.run.optimizer.lr})
            prog.log_loss_sum, prog.log_norm_sum, prog.log_count = 0.0, 0.0, 0

    def _evaluate_and_save(self, *, epoch_end: bool) -> None:
        run, prog = self.run, self.prog
        run.model.eval()
        metrics = self.feed.evaluate(run.model)
        run.model.train()
        val_loss = metrics["loss"]
        if not val_loss <= self.limit:  # checked before anything is saved: the last good stays
            raise self._agreed(TrainingDiverged(diverged_message(
                prog, "validation", val_loss, self.limit, self.params, stepped=True)))
        row = self._row(metrics)
        prog.train_loss_sum, prog.train_loss_count = 0.0, 0
        prog.grad_norm_sum, prog.clipped_count = 0.0, 0
        if epoch_end:
            self.schedule.epoch_end(prog.epoch, val_loss)
        improved = _improved(prog, run.task.main_metric, metrics)
        run.folder.log_metrics(row)
        self._save_last()
        if improved:
            run.save_checkpoint("best")

    def _row(self, metrics: dict[str, Any]) -> dict[str, Any]:
        prog, run = self.prog, self.run
        steps = max(prog.train_loss_count, 1)
        return {
            "step": prog.step, "epoch": prog.epoch + prog.batch / max(len(self.feed), 1),
            "lr": run.optimizer.lr, "train_loss": prog.train_loss_sum / steps,
            "val_loss": metrics["loss"],
            **{f"val_{k}": v for k, v in metrics.items() if k != "loss" and isinstance(v, float)},
            "grad_norm": self.norm, "grad_norm_mean": prog.grad_norm_sum / steps,
            "clipped_frac": prog.clipped_count / steps,
            "tokens_per_s": prog.tokens / max(prog.elapsed_s, 1e-9), "elapsed_s": prog.elapsed_s,
            **self.feed.extras(run.model),
        }

    def _save_last(self) -> None:
        self.run.schedule_state = self.schedule.state()
        self.run.save_checkpoint("last")
        self.saved_at = self.prog.step


def _improved(prog: Progress, main_metric: str, metrics: dict[str, Any]) -> bool:
    """Whether this evaluation is the best so far (recorded in ``prog``): the lowest loss,
    or the highest main metric with ties broken by the lower loss."""
    loss = metrics["loss"]
    if main_metric == "loss" or not isinstance(prog, TaskProgress):
        if loss < prog.best_val:
            prog.best_val = loss
            return True
        return False
    main = metrics[main_metric]
    if main > prog.best_metric or (main == prog.best_metric and loss < prog.best_val):
        prog.best_metric, prog.best_val = main, loss
        return True
    return False


def out_of_budget(cfg: TrainConfig, prog: Progress) -> bool:
    """Whether ``--max-steps`` or ``--time-budget`` is spent."""
    if cfg.max_steps is not None and prog.step >= cfg.max_steps:
        return True
    return cfg.time_budget is not None and prog.elapsed_s >= cfg.time_budget


def run_fraction(cfg: TrainConfig, prog: Progress, batches: int) -> float:
    """The share of the run behind, in [0, 1]: the largest share of any limit that ends it
    (``--epochs``, ``--max-steps``, ``--time-budget``), as ``cosine`` anneals over it."""
    shares = [(prog.epoch + prog.batch / max(batches, 1)) / max(cfg.epochs, 1)]
    if cfg.max_steps:
        shares.append(prog.step / cfg.max_steps)
    if cfg.time_budget:
        shares.append(prog.elapsed_s / cfg.time_budget)
    return min(max(shares), 1.0)


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
