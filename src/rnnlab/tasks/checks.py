"""The checks of a sequence-task run folder, before anything uses it: what
:mod:`rnnlab.validate` does for a language model's, for ``train --resume``, ``predict`` and
``eval`` of a task run::

    read_task_checkpoint(dir, name)   checkpoint.load (format, integrity hash), then its
                                      "task", "config" (validate.check_config) and
                                      "vocabularies" fields, the model they build (its size
                                      first) against its "model", and every model/ array
    check_task_training_state(...)    what only training uses: validate.check_resume_state
                                      (progress with best_metric, schedule, rng, optimizer),
                                      order_rng and the saved epoch order (order/ arrays)

Each problem is a :class:`CheckpointError` naming the file, the field or array, what was
expected and what was found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab import checkpoint, validate
from rnnlab.config import TrainConfig
from rnnlab.errors import CheckpointError, DataError, RnnlabError
from rnnlab.tasks.classify import ClassifyTask
from rnnlab.tasks.seq2seq import Seq2SeqTask
from rnnlab.tasks.tag import TagTask
from rnnlab.validate import ADVICE, show

__all__ = ["TASK_TYPES", "Task", "TaskCheckpoint", "check_task_size",
           "check_task_training_state", "read_task_checkpoint"]

Task = ClassifyTask | TagTask | Seq2SeqTask
TASK_TYPES: dict[str, Any] = {"classify": ClassifyTask, "tag": TagTask, "seq2seq": Seq2SeqTask}
PARTS = ("model/", "optim/", "order/")


@dataclass
class TaskCheckpoint(validate.CheckpointFiles):
    """A task checkpoint whose model part is checked: ``model`` holds its parameters."""

    config: TrainConfig
    task: Task
    model: Any


def check_task_size(config: TrainConfig, task: Task, where: str,
                    error: type[RnnlabError]) -> None:
    """Refuse (``error``, naming ``where``) a task model too big for this machine, before it
    is allocated: counted as a language model with every recurrent stack (both directions;
    encoder and decoder) as layers and every vocabulary (inputs and outputs) as tokens."""
    stacks = (2 if config.bidirectional else 1) * (2 if task.name == "seq2seq" else 1)
    inputs = task.source if isinstance(task, Seq2SeqTask) else task.vocab
    kw = {"cell": config.cell, "embed_size": config.embed, "hidden_size": config.hidden,
          "num_layers": config.layers * stacks, "tie_weights": False, "dtype": config.dtype}
    validate.check_size(kw, len(inputs) + task.outputs(), config.batch_size, 1, where, error)


def build_model(task: Task, config: TrainConfig, rng: np.random.Generator, where: str,
                error: type[RnnlabError]) -> Any:
    """``task.model(config, rng)`` after :func:`check_task_size`; a model its layers refuse
    (e.g. bidirectional before they have it) is ``error`` naming ``where``."""
    check_task_size(config, task, where, error)
    try:
        return task.model(config, rng)
    except RnnlabError:
        raise
    except ValueError as e:
        raise error(f"{where}: cannot build the {task.name} model: {e}") from None


def read_task_checkpoint(directory: str | os.PathLike[str], name: str) -> TaskCheckpoint:
    """Load ``<directory>/<name>`` of a task run and check what every command uses (see the
    module doc); the model it describes is built and filled."""
    arrays, meta = checkpoint.load(directory, name)
    js, npz = Path(directory) / f"{name}.json", Path(directory) / f"{name}.npz"
    kind = meta.get("task", "lm")
    if not isinstance(kind, str) or kind not in TASK_TYPES:
        raise CheckpointError(f"checkpoint {js} field meta.task is {kind!r}, not one of "
                              f"{', '.join(TASK_TYPES)}: a language model has no predictions "
                              "(use rnnlab sample or rnnlab eval); else retrain")
    where = f"checkpoint {js} field meta"
    for key in ("config", "vocabularies", "model"):
        if key not in meta:
            raise CheckpointError(f"{where}.{key} is missing: {ADVICE}")
    config = validate.check_config(meta["config"], f"{where}.config")
    if config.task != kind:
        raise CheckpointError(f"{where}.config.task: expected {kind!r} (meta.task), got "
                              f"{config.task!r}: {ADVICE}")
    task = _task(kind, meta["vocabularies"], config.level, f"{where}.vocabularies")
    model = build_model(task, config, np.random.default_rng(0), f"{where}.config",
                        CheckpointError)
    if model.config() != meta["model"]:
        raise CheckpointError(f"{where}.model: expected {show(model.config())} (what "
                              f"meta.config and meta.vocabularies build), got "
                              f"{show(meta['model'])}: {ADVICE}")
    unknown = sorted(k for k in arrays if not k.startswith(PARTS))
    if unknown:
        raise CheckpointError(f"checkpoint {npz} holds unknown array {unknown[0]!r} (expected "
                              f"names starting {', '.join(PARTS)}): {ADVICE}")
    ckpt = TaskCheckpoint(js, npz, arrays, meta, config, task, model)
    validate.check_arrays(ckpt, "model/", ckpt.part("model/"), checkpoint.model_state(model))
    checkpoint.load_model_state(model, ckpt.part("model/"))
    return ckpt


def _task(kind: str, d: Any, level: str, where: str) -> Task:
    """The task of a checkpoint's vocabularies ``d``, its vocabularies at ``level``."""
    try:
        task = TASK_TYPES[kind].from_json(d)
    except DataError as e:
        raise CheckpointError(f"{where}: {e}") from None
    vocabs = [task.source, task.target] if isinstance(task, Seq2SeqTask) else [task.vocab]
    for vocab in vocabs:
        if vocab.level != level:
            raise CheckpointError(f"{where}: a {vocab.level} vocabulary, but meta.config says "
                                  f"level {level!r}: {ADVICE}")
    return task


# ------------------------------------------------------------- training state
PROGRESS_RULES = {"best_metric": lambda v: None if validate.not_nan(v) and v <= 1 else
                  "a number <= 1, or -Infinity (before the first evaluation)"}


def check_task_training_state(ckpt: TaskCheckpoint, model: Any, optimizer: Any,
                              train_examples: int) -> None:
    """Check what resuming restores, against the run's ``model`` and ``optimizer`` (built from
    config.json) and its ``train_examples``. Nothing is changed."""
    order = _order(ckpt, train_examples)
    validate.check_resume_state(ckpt, ckpt.model, model, optimizer,
                                max(len(order or []), 1), PROGRESS_RULES)
    if "order_rng" not in ckpt.meta:
        raise CheckpointError(f"checkpoint {ckpt.json_path} field meta.order_rng is missing: "
                              f"{ADVICE}")
    validate.check_rng(ckpt.meta["order_rng"], f"checkpoint {ckpt.json_path} field "
                       "meta.order_rng")


def _order(ckpt: TaskCheckpoint, n: int) -> list[np.ndarray] | None:
    """The saved epoch's batches (arrays order/index, order/bounds), checked: example
    indices in [0, ``n``), cut by increasing bounds from 0 to their count; None if absent."""
    given = ckpt.part("order/")
    if not given:
        return None

    def fail(what: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {ckpt.npz_path} arrays 'order/index' and "
                               f"'order/bounds': {what}: {ADVICE}")

    if set(given) != {"index", "bounds"}:
        raise fail(f"expected exactly these two order/ arrays, got {sorted(given)}")
    index, bounds = given["index"], given["bounds"]
    if index.ndim != 1 or bounds.ndim != 1 or index.dtype.kind not in "iu" or \
            bounds.dtype.kind not in "iu":
        raise fail(f"expected 1-D integer arrays, got {index.shape} {index.dtype} and "
                   f"{bounds.shape} {bounds.dtype}")
    if index.size and (index.min() < 0 or index.max() >= n):
        raise fail(f"expected training example indices in [0, {n})")
    if bounds.size < 2 or bounds[0] != 0 or bounds[-1] != index.size or \
            (np.diff(bounds) <= 0).any():
        raise fail(f"expected bounds increasing from 0 to {index.size} (the batches)")
    return [index[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
