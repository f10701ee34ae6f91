"""A checkpoint's files, loaded and checked as far as every command needs them::

    read_checkpoint(dir, name, tasks)  checkpoint.load (format, integrity hash), then its
                                     "task", "config" and the task's fields, the model the
                                     task builds from them (after check_size) and every
                                     model/ array
    check_model_meta(d, where)       a language model's "model" field
    check_arrays(ckpt, prefix, ...)  one part's arrays: names, shapes, dtypes, finite values

What only training uses (optim/, state/, progress, RNG) is checked in
:mod:`rnnlab.training.validate.state`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.errors import CheckpointError
from rnnlab.training import checkpoint
from rnnlab.training.config import TrainConfig
from rnnlab.training.validate.rules import (
    ADVICE,
    MODEL_RULES,
    OPTIONAL_MODEL_RULES,
    check_config,
    check_fields,
    show,
)


@dataclass
class CheckpointFiles:
    """A loaded checkpoint's files: where they are, their arrays and meta."""

    json_path: Path
    npz_path: Path
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]

    def part(self, prefix: str) -> dict[str, np.ndarray]:
        return checkpoint.part(self.arrays, prefix)


@dataclass
class Checkpoint(CheckpointFiles):
    """A checkpoint whose model part is checked: ``task`` (its vocabularies) and ``model``
    (holding its parameters) rebuilt from it, ``config`` its run's settings."""

    config: TrainConfig
    task: Any
    model: Any


def read_checkpoint(directory: str | os.PathLike[str], name: str,
                    tasks: Mapping[str, Any]) -> Checkpoint:
    """Load ``<directory>/<name>`` and check everything every command uses (see the module
    doc); the task of ``meta.task`` (one of ``tasks``, name -> Task type; a checkpoint
    without the field predates tasks and is a language model's) rebuilds the model, which
    is then filled."""
    arrays, meta = checkpoint.load(directory, name)
    js, npz = Path(directory) / f"{name}.json", Path(directory) / f"{name}.npz"
    kind = meta.get("task", "lm")
    if not isinstance(kind, str) or kind not in tasks:
        raise CheckpointError(f"checkpoint {js} field meta.task is {show(kind)}, not one of "
                              f"{', '.join(tasks)}: {ADVICE}")
    task_type, where = tasks[kind], f"checkpoint {js} field meta"
    for key in ("model", *task_type.meta_keys, "config"):
        if key not in meta:
            raise CheckpointError(f"{where}.{key} is missing: {ADVICE}")
    config = check_config(meta["config"], f"{where}.config")
    if config.task != kind:
        raise CheckpointError(f"{where}.config.task: expected {kind!r} (meta.task), got "
                              f"{config.task!r}: {ADVICE}")
    task, model = task_type.from_checkpoint(meta, config, where)
    parts = ("model/", "optim/", *task_type.array_parts)
    unknown = sorted(k for k in arrays if not k.startswith(parts))
    if unknown:
        raise CheckpointError(f"checkpoint {npz} holds unknown array {unknown[0]!r} (expected "
                              f"names starting {', '.join(parts)}): {ADVICE}")
    ckpt = Checkpoint(js, npz, arrays, meta, config, task, model)
    check_arrays(ckpt, "model/", ckpt.part("model/"), checkpoint.model_state(model))
    checkpoint.load_model_state(model, ckpt.part("model/"))
    return ckpt


def check_model_meta(d: Any, where: str) -> dict[str, Any]:
    """A language model's ``meta.model`` (its constructor's arguments), checked field by
    field (``MODEL_RULES``); returns a copy."""
    check_fields(d, MODEL_RULES, where, CheckpointError, required=True)
    check_fields(d, OPTIONAL_MODEL_RULES, where, CheckpointError, required=False)
    extra = sorted(set(d) - set(MODEL_RULES) - set(OPTIONAL_MODEL_RULES))
    if extra:
        raise CheckpointError(f"{where} has unknown key {extra[0]!r} (expected only "
                              f"{', '.join(MODEL_RULES)}): {ADVICE}")
    return dict(d)


def check_arrays(ckpt: CheckpointFiles, prefix: str, given: Mapping[str, np.ndarray],
                 template: Mapping[str, np.ndarray]) -> None:
    """``given`` has exactly ``template``'s names, shapes and dtypes, and finite values."""
    def fail(name: str, what: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {ckpt.npz_path} array {prefix + name!r} {what}: "
                               f"{ADVICE}")

    for name in sorted(template.keys() - given.keys()):
        raise fail(name, "is missing (a checkpoint of another model or optimizer?)")
    for name in sorted(given.keys() - template.keys()):
        raise fail(name, "is not expected here (a checkpoint of another model or optimizer?)")
    for name, want in template.items():
        a = given[name]
        if a.shape != want.shape or a.dtype != want.dtype:
            raise fail(name, f"has shape {a.shape} {a.dtype}, expected {want.shape} "
                       f"{want.dtype}")
        if not np.isfinite(a).all():
            raise fail(name, "holds NaN or infinity (the model diverged before this save?)")
