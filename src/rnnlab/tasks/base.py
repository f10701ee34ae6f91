"""What the sequence tasks share: encoded examples, their subsets, the summed loss, inputs.

A task (:mod:`.classify`, :mod:`.tag`, :mod:`.seq2seq`) holds its vocabularies and knows
its file format, its model, its loss on a padded batch, its metrics and its predictions;
the training loop (:mod:`rnnlab.training.loop`, through :mod:`.sequence`) and the
commands (:mod:`rnnlab.cli`) only call those.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.data.padded import Batch, PaddedBatches
from rnnlab.errors import DataError
from rnnlab.training.config import TrainConfig


@dataclass(frozen=True)
class Encoded:
    """A task file's examples as ids: ``inputs[i] (T_i,)``; ``targets`` (N,) class ids or
    a list of id arrays; ``lines[i]`` example i's (first) line in ``path``."""

    path: str
    inputs: list[np.ndarray]
    targets: Any
    lines: list[int]

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, index: np.ndarray) -> Encoded:
        """The examples ``index``, in that order."""
        t = self.targets
        targets = t[index] if isinstance(t, np.ndarray) else [t[i] for i in index]
        return Encoded(self.path, [self.inputs[i] for i in index], targets,
                       [self.lines[i] for i in index])


def model_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """The encoder arguments a task model takes from the run's flags (PyTorch's names)."""
    return {"cell": cfg.cell, "embed_size": cfg.embed, "hidden_size": cfg.hidden,
            "num_layers": cfg.layers, "bidirectional": cfg.bidirectional, "dtype": cfg.dtype}


def check_nonempty(enc: Encoded) -> None:
    """A DataError naming the first example that encodes to no token."""
    for ids, line in zip(enc.inputs, enc.lines, strict=True):
        if len(ids) == 0:
            raise DataError(f"{enc.path!r} line {line}: the input has no token: give every "
                            "example some text")


class LossSum:
    """Sums the criterion's ``last_loss_sum`` and ``last_count`` over batches."""

    def __init__(self, total: float = 0.0, count: int = 0) -> None:
        self.total, self.count = total, count

    def add(self, criterion: Any) -> None:
        self.total += criterion.last_loss_sum
        self.count += criterion.last_count

    @property
    def mean(self) -> float:
        return self.total / max(self.count, 1)


def in_order(inputs: Sequence[np.ndarray], batch_size: int) -> PaddedBatches:
    """Batches of ``inputs`` in file order (targets: the example indices)."""
    return PaddedBatches(inputs, np.arange(len(inputs)), batch_size)


def input_lines(text: str, where: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of every input line; a blank one is a DataError."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    out = []
    for n, line in enumerate(lines, start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            raise DataError(f"{where} line {n}: empty input: give one input per line")
        out.append((n, line))
    if not out:
        raise DataError(f"{where} holds no input: give one input per line")
    return out


def steps_of(batch: Batch) -> np.ndarray:
    """(T, N) booleans: the real steps of a padded batch."""
    return np.arange(batch.x.shape[0])[:, None] < batch.lengths[None, :]


def json_fields(d: Any, *keys: str) -> list[Any]:
    """The values of ``keys`` in the JSON object ``d`` (a task's vocabularies); a DataError
    says which is missing."""
    missing = [k for k in keys if not isinstance(d, dict) or k not in d]
    if missing:
        raise DataError(f"expected an object with the fields {', '.join(keys)}, got "
                        f"{type(d).__name__} without {missing[0]!r}: pass the vocabularies "
                        "training wrote")
    return [d[k] for k in keys]
