"""Which ``rnnlab train`` flag applies to which task: the one table (the README shows it).

A flag missing from :data:`ONLY` applies to every task. A flag given for a task it does not
apply to is a :class:`~rnnlab.errors.UsageError` (one line, exit status 2).

>>> check_flags("classify", {"hidden": 32, "pooling": "mean"})
>>> check_flags("tag", {"bptt": 35})
Traceback (most recent call last):
...
rnnlab.errors.UsageError: --bptt does not apply to --task tag (only to lm): drop it
"""

from __future__ import annotations

from collections.abc import Iterable

from rnnlab.errors import UsageError
from rnnlab.training.config import TrainConfig, flag

TASKS = ("lm", "classify", "tag", "seq2seq")
SEQUENCE_TASKS = TASKS[1:]
ATTENTIONS = ("none", "dot", "additive")

# flag field (or CLI-only flag) -> the tasks it applies to; absent: every task.
ONLY: dict[str, tuple[str, ...]] = {
    "split": ("lm",),
    "bptt": ("lm",),
    "tie_weights": ("lm",),
    "no_sample": ("lm",),
    "sample_length": ("lm",),
    "nonlinearity": ("lm",),
    "forget_bias": ("lm",),
    "dropout": ("lm", "classify", "tag"),
    "init_range": ("lm", "classify", "tag"),
    "val_fraction": SEQUENCE_TASKS,
    "bidirectional": SEQUENCE_TASKS,
    "pooling": ("classify",),
    "attention": ("seq2seq",),
    "reverse_source": ("seq2seq",),
    "peeky": ("seq2seq",),
}


def applies(field: str, task: str) -> bool:
    """Whether the flag of ``field`` applies to ``task``."""
    return task in ONLY.get(field, TASKS)


def check_flags(task: str, given: Iterable[str]) -> None:
    """Raise a UsageError naming the first given flag that does not apply to ``task``."""
    for field in sorted(given):
        if not applies(field, task):
            raise UsageError(f"{flag(field)} does not apply to --task {task} (only to "
                             f"{', '.join(ONLY[field])}): drop it")


def table() -> list[tuple[str, ...]]:
    """Rows ``(flag, "yes" | "", ...)`` per train flag, one column per task (README table)."""
    fields = [*TrainConfig.flags(), "resume", "force", "no_progress", "no_sample"]
    return [(flag(f), *("yes" if applies(f, t) else "" for t in TASKS)) for f in fields]
