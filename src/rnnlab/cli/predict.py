"""``rnnlab predict``: a task run's prediction for each input line."""

from __future__ import annotations

import argparse
import sys

from rnnlab.cli.load import load_run
from rnnlab.data import read_text
from rnnlab.errors import DataError, UsageError
from rnnlab.metrics import json_line
from rnnlab.tasks.base import input_lines


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
    ckpt = load_run(args.checkpoint, want="prediction", device=args.device)
    task, model = ckpt.task, ckpt.model
    for name, value in (("--beam", args.beam), ("--max-length", args.max_length)):
        if value is not None and task.name != "seq2seq":
            raise UsageError(f"{name} applies to seq2seq runs; {args.checkpoint} is a "
                             f"{task.name} run: drop it")
    text, where = _read_inputs(args.input)
    lines = [line for _, line in input_lines(text, where)]
    for shown, obj in task.predict(model, lines, max_length=args.max_length, beam=args.beam):
        print(json_line(obj) if args.json else shown)
    return 0
