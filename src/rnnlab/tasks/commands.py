"""What ``rnnlab train``, ``predict`` and ``eval`` do for every task (the parser is cli.py).

``--task lm`` (the default) and language-model run folders go to :mod:`rnnlab.commands`
unchanged; the sequence tasks are handled here. A run folder's task is its config.json's
(``"task"``; a run saved before tasks existed has none and is a language model).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rnnlab import commands
from rnnlab.config import TrainConfig
from rnnlab.data import read_text
from rnnlab.errors import DataError, RunFolderError, UsageError
from rnnlab.metrics import json_line
from rnnlab.tasks.base import input_lines
from rnnlab.tasks.checks import read_task_checkpoint
from rnnlab.tasks.flags import TASKS, check_flags
from rnnlab.tasks.run import TASK_TYPES, Task, TaskRun
from rnnlab.tasks.train import train_task


def run_task(directory: str | Path) -> str:
    """The task of a run folder: its config.json's, ``"lm"`` without one (or without the key)."""
    path = Path(directory) / "config.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        task = record.get("config", {}).get("task", "lm")
    except (OSError, ValueError, AttributeError):
        return "lm"  # rnnlab.run reports a missing or damaged run folder
    if task not in TASKS:
        raise RunFolderError(f"{path} field config.task: expected one of {', '.join(TASKS)}, "
                             f"got {task!r}: repair it, or retrain with --force")
    return str(task)


def cmd_train(args: argparse.Namespace) -> int:
    given = {k: getattr(args, k) for k in TrainConfig.flags() if getattr(args, k) is not None}
    task = run_task(args.resume) if args.resume else given.get("task", "lm")
    check_flags(task, set(given) | ({"no_sample"} if args.no_sample else set()))
    if task == "lm":
        return commands.cmd_train(args)
    if args.resume:
        run = commands.resume_run(TaskRun.resume, args.resume, given)
    else:
        if task == "tag" and "level" not in given:
            given["level"] = "word"  # CoNLL tokens are words
        cfg = TrainConfig(**given)
        run = TaskRun.create(cfg, force=args.force)
        kind = f"{'bidirectional ' if cfg.bidirectional else ''}{cfg.cell.upper()}"
        print(f"training a {cfg.layers}x{cfg.hidden} {kind} {task} model on "
              f"{cfg.data} ({len(run.train)} training and {len(run.val)} validation "
              f"examples) into {run.directory}", file=sys.stderr)
    with commands.threads(run.config.threads):
        prog = train_task(run, progress_bar=not args.no_progress)
    print(f"done: {prog.step} steps, {prog.epoch} epochs, {prog.elapsed_s:.0f} s; best "
          f"validation {run.task.main_metric} {prog.best_metric:.4f} (loss {prog.best_val:.4f})")
    return 0


def load_task(path: str) -> tuple[Task, Any]:
    """The task and model (in eval mode) of a run folder's best checkpoint (else its last)."""
    directory = Path(path)
    if not directory.is_dir():
        raise RunFolderError(f"no run folder at {directory}: train one with "
                             "rnnlab train --task ..., or pass --checkpoint RUN")
    name = "best" if (directory / "best.json").exists() else "last"
    ckpt = read_task_checkpoint(directory, name)  # the checks every task command shares
    ckpt.model.eval()
    return ckpt.task, ckpt.model


def _read_inputs(path: str | None) -> tuple[str, str]:
    """The text of ``--input`` (checked as a data file) or of standard input, and its name."""
    if path is not None:
        return read_text(path), repr(path)
    try:
        return sys.stdin.buffer.read().decode("utf-8"), "standard input"
    except UnicodeDecodeError as e:
        raise DataError(f"standard input is not UTF-8 text (byte {e.start}): convert it to "
                        "UTF-8") from None


def cmd_predict(args: argparse.Namespace) -> int:
    task, model = load_task(args.checkpoint)
    for name, value in (("--beam", args.beam), ("--max-length", args.max_length)):
        if value is not None and task.name != "seq2seq":
            raise UsageError(f"{name} applies to seq2seq runs; {args.checkpoint} is a "
                             f"{task.name} run: drop it")
    text, where = _read_inputs(args.input)
    lines = [line for _, line in input_lines(text, where)]
    for shown, obj in task.predict(model, lines, max_length=args.max_length, beam=args.beam):
        print(json_line(obj) if args.json else shown)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if run_task(args.checkpoint) == "lm":
        if args.max_length is not None:
            raise UsageError("--max-length applies to seq2seq runs: drop it")
        return commands.cmd_eval(args)
    task, model = load_task(args.checkpoint)
    if args.max_length is not None and task.name != "seq2seq":
        raise UsageError(f"--max-length applies to seq2seq runs; {args.checkpoint} is a "
                         f"{task.name} run: drop it")
    enc = task.encode(TASK_TYPES[task.name].read(args.data))
    result = task.evaluate(model, enc, 64, args.max_length)
    if args.json:
        print(json_line(result))
    else:
        print("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in result.items() if not isinstance(v, dict)))
    return 0
