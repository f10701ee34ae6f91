"""A sequence-task run: its folder, data, model, optimizer, and checkpoints.

The folder is a language model's (:mod:`rnnlab.run`): ``config.json`` (with ``"task"``),
``metrics.jsonl``, ``loss.png``, ``last`` and ``best`` checkpoints. A task checkpoint's
JSON holds ``"task"`` (a checkpoint without it is a language model's), ``"vocabularies"``
(the input vocabulary and labels, or the source and target vocabularies), the model's
configuration, and what exact resume needs: the progress, the optimizer, both generators
(``rng``: initialisation and dropout; ``order_rng``: the data order) and the current
epoch's batch order (arrays ``order/index``, ``order/bounds``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab import __version__, checkpoint, validate
from rnnlab.atomic import atomic_write_text
from rnnlab.config import TrainConfig
from rnnlab.data import sha256_file, shuffled_split
from rnnlab.errors import DataError, RunFolderError, UsageError
from rnnlab.optim import OPTIMIZERS
from rnnlab.run import Progress, Run, check_data_files
from rnnlab.tasks.base import Encoded
from rnnlab.tasks.checks import (
    TASK_TYPES,
    Task,
    build_model,
    check_task_size,
    check_task_training_state,
    read_task_checkpoint,
)

__all__ = ["TASK_TYPES", "Task", "TaskProgress", "TaskRun", "load_task_data"]
RUN_FILES = ("metrics.jsonl", "loss.png", "last.npz", "last.json", "best.npz", "best.json")


@dataclass
class TaskProgress(Progress):
    """A language model's progress, plus the best checkpoint's main metric."""

    best_metric: float = float("-inf")


def load_task_data(cfg: TrainConfig, task: Task | None = None) -> tuple[Task, Encoded, Encoded]:
    """The task (its vocabularies from the training file unless given), training and
    validation examples: ``--val-data``, else a seeded shuffled split of ``--data``."""
    if not cfg.data:
        raise UsageError(f"--task {cfg.task} needs --data FILE (your training examples)")
    kind = TASK_TYPES[cfg.task]
    examples = kind.read(cfg.data)
    task = task if task is not None else kind.build(examples, cfg)
    enc = task.encode(examples)
    if cfg.val_data:
        return task, enc, task.encode(kind.read(cfg.val_data))
    try:
        train, valid = shuffled_split(len(enc), cfg.val_fraction,
                                      np.random.default_rng(cfg.seed))
    except DataError as e:  # one example: nothing left to train on
        raise DataError(f"data file {cfg.data!r}: {e}, or --val-data FILE") from None
    return task, enc.subset(train), enc.subset(valid)


class TaskRun(Run):
    """Everything a task run holds; build with :meth:`create` or :meth:`resume`."""

    def __init__(self, directory: Path, config: TrainConfig, task: Task, train: Encoded,
                 val: Encoded) -> None:
        self.directory, self.config, self.task = directory, config, task
        self.level = config.level
        self.train, self.val = train, val
        self.rng = np.random.default_rng(config.seed)  # initialisation, then dropout
        self.order_rng = np.random.default_rng([config.seed, 1])  # the data order
        self.model: Any = build_model(task, config, self.rng, "the model", UsageError)
        self.optimizer = OPTIMIZERS[config.optimizer](self.model.named_params(), lr=config.lr)
        self.train_batches: Any = task.batches(train, config.batch_size, self.order_rng)
        self.order: list[np.ndarray] | None = None  # the current epoch's batches
        self.progress: TaskProgress = TaskProgress()
        self.schedule_state: dict[str, Any] | None = None
        self.state = None

    @classmethod
    def create(cls, config: TrainConfig, *, force: bool = False) -> TaskRun:
        """A new run; nothing in ``config.out`` changes unless the data and model are good."""
        directory = Path(config.out)
        if directory.exists() and any(directory.iterdir()) and not force:
            raise RunFolderError(f"run folder {directory} already exists: pass --resume "
                                 f"{directory} to continue it, --force to start it anew, "
                                 "or another --out")
        task, train, val = load_task_data(config)
        run = cls(directory, config, task, train, val)
        directory.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:
            (directory / name).unlink(missing_ok=True)  # --force: start anew
        files = [config.data] + ([config.val_data] if config.val_data else [])
        record = {"config": config.to_json(), "task": config.task, "seed": config.seed,
                  "rnnlab": __version__,
                  "data_sha256": {str(f): sha256_file(str(f)) for f in files},
                  "examples": {"train": len(train), "val": len(val)},
                  "outputs": task.outputs()}
        atomic_write_text(directory / "config.json", json.dumps(record, indent=2) + "\n")
        return run

    @classmethod
    def resume(cls, directory: str | Path) -> TaskRun:
        directory = Path(directory)
        config, hashes = validate.read_run_record(directory)
        check_data_files(directory, hashes, {f for f in (config.data, config.val_data) if f})
        ckpt = read_task_checkpoint(directory, "last")
        if ckpt.task.name != config.task:
            raise RunFolderError(f"checkpoint {ckpt.json_path} holds a {ckpt.task.name} model "
                                 f"but config.json says task {config.task!r}: "
                                 "resume from another checkpoint or retrain")
        check_task_size(config, ckpt.task, f"{directory / 'config.json'} field config",
                        RunFolderError)
        _, train, val = load_task_data(config, ckpt.task)
        run = cls(directory, config, ckpt.task, train, val)
        check_task_training_state(ckpt, run.model, run.optimizer, len(train))
        run.restore(ckpt.arrays, ckpt.meta)
        return run

    def save_checkpoint(self, name: str) -> None:
        arrays = {f"model/{k}": v for k, v in checkpoint.model_state(self.model).items()}
        opt_arrays, opt_meta = self.optimizer.state_dict()
        arrays.update({f"optim/{k}": v for k, v in opt_arrays.items()})
        if self.order is not None:
            arrays["order/index"] = np.concatenate(self.order)
            arrays["order/bounds"] = np.cumsum([0] + [len(b) for b in self.order])
        meta = {
            "task": self.task.name, "vocabularies": self.task.to_json(),
            "progress": dataclasses.asdict(self.progress), "optimizer": opt_meta,
            "rng": self.rng.bit_generator.state, "order_rng": self.order_rng.bit_generator.state,
            "schedule": self.schedule_state, "model": self.model.config(),
            "config": self.config.to_json(), "rnnlab": __version__,
        }
        checkpoint.save(self.directory, name, arrays, meta)

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        checkpoint.load_model_state(self.model, checkpoint.part(arrays, "model/"))
        self.optimizer.load_state_dict(checkpoint.part(arrays, "optim/"), meta["optimizer"])
        self.rng.bit_generator.state = meta["rng"]
        self.order_rng.bit_generator.state = meta["order_rng"]
        self.progress = TaskProgress(**meta["progress"])
        self.schedule_state = meta["schedule"]
        if "order/index" in arrays:
            index, bounds = arrays["order/index"], arrays["order/bounds"]
            self.order = [index[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
