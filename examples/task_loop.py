"""What the sequence-task examples share: a training loop, batch-wise prediction, output.

Not part of the library (training loops belong to the CLI's training code): a plain loop of
``zero_grad -> loss -> backward_loss -> clip -> step``, as a user would write it.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.padded import PaddedBatches
from rnnlab.optim import Adam, clip_grad_norm


def fit(model: Any, batches: PaddedBatches, *, epochs: int, lr: float, clip: float = 5.0,
        name: str = "") -> float:
    """Train ``epochs`` passes with Adam (gradient norm clipped to ``clip``), printing one
    line per epoch; leaves the model in eval mode. Returns the wall time in seconds."""
    opt = Adam(model.named_params(), lr=lr)
    start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        total, count = 0.0, 0
        for b in batches:
            model.zero_grad()
            total += model.loss(b.x, b.y, b.lengths) * len(b.lengths)
            count += len(b.lengths)
            model.backward_loss()
            clip_grad_norm(model.named_params(), clip)
            opt.step()
        print(f"{name}epoch {epoch + 1}/{epochs}  train loss {total / count:.4f}  "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    model.eval()
    return time.perf_counter() - start


def predict_classes(model: Any, inputs: Sequence[np.ndarray], batch_size: int = 256) -> np.ndarray:
    """The predicted class of every example, in order, (M,)."""
    out = np.empty(len(inputs), dtype=np.int64)
    for b in PaddedBatches(inputs, np.zeros(len(inputs), dtype=np.int64), batch_size):
        out[b.index] = model.predict(b.x, b.lengths)
    return out


def predict_tags(model: Any, inputs: Sequence[np.ndarray],
                 batch_size: int = 64) -> list[np.ndarray]:
    """The predicted tags of every example, in order, each (T_i,)."""
    out: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(inputs)
    for b in PaddedBatches(inputs, np.zeros(len(inputs), dtype=np.int64), batch_size):
        pred = model.predict(b.x, b.lengths)  # (T, N), -1 past each length
        for n, i in enumerate(b.index):
            out[i] = pred[: b.lengths[n], n]
    return out


def cli_command(task: str, data: str | Path, **flags: Any) -> str:
    """The ``rnnlab train --task`` command that trains this example's model on the data file it
    wrote: ``flags`` are the CLI's flags by field name (``True``: a switch; None/False: left
    out). The CLI adds validation, checkpoints, resume and ``predict``/``eval``; the example's
    own loop is the plain one above, so its numbers are close to the command's, not equal."""
    parts = ["rnnlab", "train", "--task", task, "--data", str(data)]
    for field, value in flags.items():
        name = "--" + field.replace("_", "-")
        if value is True:
            parts.append(name)
        elif value is not None and value is not False:
            parts += [name, str(value)]
    return shlex.join(parts)


def show_command(command: str) -> None:
    """Print the equivalent command line (and the JSON line carries it as ``"cli"``)."""
    print(f"the same task from the command line:\n  {command}", flush=True)


def emit(metrics: dict[str, Any]) -> None:
    """The one JSON line of results, last on stdout."""
    print(json.dumps(metrics, sort_keys=True), flush=True)
