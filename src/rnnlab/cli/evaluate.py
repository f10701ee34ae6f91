"""``rnnlab eval``: a trained run's loss and metrics on a file (any task)."""

from __future__ import annotations

import argparse
from typing import Any

from rnnlab.cli.load import load_run
from rnnlab.errors import UsageError
from rnnlab.metrics import describe_perplexity, json_line
from rnnlab.tasks import TASK_TYPES
from rnnlab.tasks.lm import LanguageModelTask


def cmd_eval(args: argparse.Namespace) -> int:
    ckpt = load_run(args.checkpoint, device=args.device)
    task, model = ckpt.task, ckpt.model
    if args.max_length is not None and task.name != "seq2seq":
        if task.name == "lm":
            raise UsageError("--max-length applies to seq2seq runs: drop it")
        raise UsageError(f"--max-length applies to seq2seq runs; {args.checkpoint} is a "
                         f"{task.name} run: drop it")
    result: dict[str, Any]
    if isinstance(task, LanguageModelTask):
        result = task.evaluate_file(model, args.data, ckpt.config)
        shown = {**result, "perplexity": describe_perplexity(result["loss"])}
    else:
        enc = task.encode(TASK_TYPES[task.name].read(args.data))  # type: ignore[attr-defined]
        result = task.evaluate(model, enc, 64, args.max_length)  # type: ignore[attr-defined]
        shown = {k: v for k, v in result.items() if not isinstance(v, dict)}
    if args.json:
        print(json_line(result))
    else:
        print("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in shown.items()))
    return 0
