"""``rnnlab train``: start a run (any task) or continue one (``--resume``), on the one loop.

A problem the user can fix is raised as an :class:`rnnlab.errors.RnnlabError`, which the
command line prints as one line with exit status 2. SIGTERM and Ctrl-C save ``last`` and
exit 143 and 130 (:mod:`rnnlab.training.signals`).

Under an MPI launcher (``mpiexec -n K rnnlab train ...``: :mod:`rnnlab.training.ranks`)
every rank runs this command; rank 0 alone prints and writes, and the first line says how
the batch is split. Each rank uses (cores / ranks on its node) BLAS threads unless
``--threads`` says otherwise. A rank that fails ends them all (:meth:`World.guard`).

``--device cuda`` trains on a GPU (:mod:`rnnlab.device`): checked before the run folder is
touched (no CuPy, no GPU: one line, exit 2). Out of GPU memory is one line naming the
model and batch sizes (:mod:`rnnlab.cli.device`); the run folder is left as it was: a new
one that did not exist is removed, a resumed one keeps its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.cli.device import out_of_memory, out_of_memory_types, usable
from rnnlab.cli.sample import stream
from rnnlab.errors import RunFolderError, UsageError
from rnnlab.tasks import TASK_TYPES
from rnnlab.tasks.flags import TASKS, check_flags
from rnnlab.tasks.lm import LanguageModelTask
from rnnlab.training import Run, train, validate
from rnnlab.training.config import RESUMABLE, TrainConfig, flag
from rnnlab.training.ranks import World, world
from rnnlab.training.signals import StopRequests


def threads(n: int | None) -> Any:
    """A context limiting BLAS to ``n`` threads (None: as it is)."""
    if n is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n)


def run_task(directory: str | Path) -> str:
    """The task of a run folder: its config.json's, ``"lm"`` without one (or without the key)."""
    path = Path(directory) / "config.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        task = record.get("config", {}).get("task", "lm")
    except (OSError, ValueError, AttributeError):
        return "lm"  # Run.resume reports a missing or damaged run folder
    if task not in TASKS:
        raise RunFolderError(f"{path} field config.task: expected one of {', '.join(TASKS)}, "
                             f"got {task!r}: repair it, or retrain with --force")
    return str(task)


def rank_threads(n: int | None, ranks: World) -> int | None:
    """BLAS threads of each rank: ``--threads``, else the node's cores shared among its
    ranks (None for one process: as it is)."""
    if n is not None or ranks.size == 1:
        return n
    return max(1, (os.cpu_count() or 1) // ranks.local_size)


def resume_run(open_run: Callable[[str], Any], directory: str, given: dict[str, Any],
               say: Callable[[str], None]) -> Any:
    """The run in ``directory`` opened by ``open_run``, with the flags that may change on
    resume (RESUMABLE) applied; any other given flag is an error."""
    fixed = sorted(set(given) - set(RESUMABLE))
    if fixed:
        raise UsageError(f"{flag(fixed[0])} cannot change when resuming (only "
                         f"{', '.join(map(flag, RESUMABLE))} can): "
                         "drop it, or start a new run with --out")
    run = open_run(directory)
    for k in RESUMABLE:
        if k in given:
            setattr(run.config, k, given[k])
    try:
        run.folder.trim(run.progress.step)
    except BaseException:
        run.close()
        raise
    say(f"resuming {run.directory} at epoch {run.progress.epoch + 1}, "
        f"step {run.progress.step}")
    return run


def cmd_train(args: argparse.Namespace) -> int:
    given = {k: getattr(args, k) for k in TrainConfig.flags() if getattr(args, k) is not None}
    task = run_task(args.resume) if args.resume else given.get("task", "lm")
    check_flags(task, set(given) | ({"no_sample"} if args.no_sample else set()))
    if "device" in given:
        usable(given["device"])  # before any file is read or written
    ranks = world()
    with ranks.guard("train"):
        out = Path(args.resume or given.get("out", TrainConfig.out))
        existed = out.exists()
        try:
            return _train(args, task, given, ranks)
        except out_of_memory_types():  # CuPy's, when a GPU run ran out of its memory
            raise _out_of_memory(args, given, out, existed) from None


def _out_of_memory(args: argparse.Namespace, given: dict[str, Any], out: Path,
                   existed: bool) -> UsageError:
    """The one-line error, once the run folder is as it was (a new one removed)."""
    if args.resume:
        config, _ = validate.read_run_record(out)
        for k in RESUMABLE:
            if k in given:
                setattr(config, k, given[k])
        return out_of_memory(config, f"the run folder {out} keeps its last checkpoint")
    config = TrainConfig(**given)
    if not existed and out.is_dir() and not any(out.glob("*.npz")):
        shutil.rmtree(out, ignore_errors=True)  # nothing saved: as before the command
    if not existed and not out.exists():
        return out_of_memory(config, f"nothing was saved ({out} removed)")
    return out_of_memory(config, f"the run folder {out} keeps what was saved")


def _train(args: argparse.Namespace, task: str, given: dict[str, Any], ranks: World) -> int:
    def say(line: str) -> None:
        if ranks.root:
            print(line, file=sys.stderr)

    with StopRequests() as stop:  # from here a signal saves and stops (none saved: step 0)
        run = _open_run(args, task, given, ranks, say)
        with run, threads(rank_threads(run.config.threads, ranks)):
            stopped = train(run, progress_bar=not args.no_progress and ranks.root, stop=stop)
    if not ranks.root:
        return 128 + stopped if stopped is not None else 0
    prog = run.progress
    if stopped is not None:
        again = (f"continue with rnnlab train --resume {run.directory}" if prog.step else
                 "nothing was trained: run the command again with --force")
        print(f"stopped at step {prog.step}; {again}", file=sys.stderr)
        return 128 + stopped
    print(f"done: {prog.step} steps, {prog.epoch} epochs, {prog.elapsed_s:.0f} s; "
          f"{run.task.summary(prog)}")
    if isinstance(run.task, LanguageModelTask) and not args.no_sample:
        print("sample:")
        stream(run.model, run.task.vocab, None, 400, {}, np.random.default_rng(0))
    return 0


def _open_run(args: argparse.Namespace, task: str, given: dict[str, Any], ranks: World,
              say: Callable[[str], None]) -> Run:
    """The run to train: resumed, or created in ``--out`` (its first lines printed: how the
    batch is split across the ranks, then the run)."""
    if args.resume:
        lines: list[str] = []
        run = resume_run(lambda d: Run.resume(d, TASK_TYPES, ranks, given.get("device")),
                         args.resume, given, lines.append)
        for line in ([run.split] if run.split else []) + lines:
            say(line)
        return run
    if task == "tag" and "level" not in given:
        given["level"] = "word"  # CoNLL tokens are words
    cfg = TrainConfig(**given)
    cfg.check()
    run = Run.create(cfg, TASK_TYPES[task], force=args.force, world=ranks)
    if run.split:
        say(run.split)
    say(run.feed.describe(run.directory))
    return run
