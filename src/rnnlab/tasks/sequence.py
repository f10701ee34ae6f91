"""What the three example-based tasks (classify, tag, seq2seq) share of the task contract.

Their data is a file of examples (one per line, or per CoNLL sentence); a batch is padded
examples of similar length, shuffled afresh each epoch by a generator of its own
(``order_rng``), and nothing carries from one batch to the next. A checkpoint holds the
task's vocabularies (``meta.vocabularies``), ``order_rng`` and the current epoch's order
(arrays ``order/index``, ``order/bounds``). The ``best`` checkpoint has the highest main
metric (accuracy, entity F1 or token accuracy, exact match), ties broken by the lower loss.

Each task (:mod:`.classify`, :mod:`.tag`, :mod:`.seq2seq`) adds its file format
(``read``, ``build``, ``encode``), its model (``new_model``), its batches and loss, its
evaluation and its predictions.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data import shuffled_split
from rnnlab.data.padded import Batch
from rnnlab.errors import CheckpointError, DataError, RnnlabError, RunFolderError, UsageError
from rnnlab.nn.module import Module
from rnnlab.tasks.base import Encoded, LossSum
from rnnlab.tasks.order import check_order
from rnnlab.training import validate
from rnnlab.training.config import TrainConfig
from rnnlab.training.progress import Progress, TaskProgress
from rnnlab.training.ranks import SINGLE, World
from rnnlab.training.task import Feed, Task
from rnnlab.training.validate import ADVICE, show


class SequenceTask(Task):
    """The shared part of classify, tag and seq2seq (see the module doc)."""

    progress_type = TaskProgress
    meta_keys, array_parts = ("vocabularies",), ("order/",)
    progress_rules = {"best_metric": lambda v: None if validate.not_nan(v) and v <= 1 else
                      "a number <= 1, or -Infinity (before the first evaluation)"}
    read: Any  # the file reader of rnnlab.data.tasks

    @classmethod
    def data_files(cls, config: TrainConfig) -> list[str]:
        return [str(config.data)] + ([config.val_data] if config.val_data else [])

    @classmethod
    def prepare(cls, config: TrainConfig, task: Task | None = None
                ) -> tuple[SequenceTask, TaskFeed]:
        """The task (its vocabularies from the training file unless given), training and
        validation examples: ``--val-data``, else a seeded shuffled split of ``--data``."""
        if not config.data:
            raise UsageError(f"--task {config.task} needs --data FILE (your training examples)")
        examples = cls.read(config.data)
        seq = task if isinstance(task, cls) else cls.build(examples, config)
        enc = seq.encode(examples)
        if config.val_data:
            return seq, TaskFeed(seq, config, enc, seq.encode(cls.read(config.val_data)))
        try:
            train, valid = shuffled_split(len(enc), config.val_fraction,
                                          np.random.default_rng(config.seed))
        except DataError as e:  # one example: nothing left to train on
            raise DataError(f"data file {config.data!r}: {e}, or --val-data FILE") from None
        return seq, TaskFeed(seq, config, enc.subset(train), enc.subset(valid))

    @classmethod
    def from_checkpoint(cls, meta: Mapping[str, Any], config: TrainConfig,
                        where: str) -> tuple[SequenceTask, Module]:
        try:
            task = cls.from_json(meta["vocabularies"])
        except DataError as e:
            raise CheckpointError(f"{where}.vocabularies: {e}") from None
        for vocab in task.vocabularies():
            if vocab.level != config.level:
                raise CheckpointError(f"{where}.vocabularies: a {vocab.level} vocabulary, but "
                                      f"meta.config says level {config.level!r}: {ADVICE}")
        model = task.model(config, np.random.default_rng(0), f"{where}.config", CheckpointError)
        saved = meta["model"]  # older runs lack peephole: False then
        if not isinstance(saved, dict) or model.config() != {"peephole": False, **saved}:
            raise CheckpointError(f"{where}.model: expected {show(model.config())} (what "
                                  f"meta.config and meta.vocabularies build), got "
                                  f"{show(meta['model'])}: {ADVICE}")
        return task, model

    def model(self, config: TrainConfig, rng: np.random.Generator, where: str,
              error: type[RnnlabError]) -> Module:
        """The task's model after :meth:`check_size`; a model its layers refuse is
        ``error`` naming ``where``."""
        self.check_size(config, where, error)
        try:
            return self.new_model(config, rng)
        except RnnlabError:
            raise
        except ValueError as e:
            raise error(f"{where}: cannot build the {self.name} model: {e}") from None

    def check_size(self, config: TrainConfig, where: str, error: type[RnnlabError]) -> None:
        """Refuse (``error``, naming ``where``) a model too big for this machine, before it
        is allocated: counted as a language model with every recurrent stack (both
        directions; encoder and decoder) as layers and every vocabulary as tokens."""
        stacks = (2 if config.bidirectional else 1) * (2 if self.name == "seq2seq" else 1)
        kw = {"cell": config.cell, "embed_size": config.embed, "hidden_size": config.hidden,
              "num_layers": config.layers * stacks, "tie_weights": False, "dtype": config.dtype}
        inputs = self.vocabularies()[0]
        validate.check_size(kw, len(inputs) + self.outputs(), config.batch_size, 1, where,
                            error)

    def to_meta(self) -> dict[str, Any]:
        return {"vocabularies": self.to_json()}

    def check_resume(self, config: TrainConfig, where: str) -> None:
        if self.name != config.task:
            raise RunFolderError(f"the last checkpoint holds a {self.name} model but "
                                 f"config.json says task {config.task!r}: resume from another "
                                 "checkpoint or retrain")
        self.check_size(config, where, RunFolderError)

    def summary(self, progress: Progress) -> str:
        best_metric = getattr(progress, "best_metric", float("-inf"))
        return (f"best validation {self.main_metric} {best_metric:.4f} "
                f"(loss {progress.best_val:.4f})")

    # ---------------------------------------------------------- what each task defines
    @abstractmethod
    def vocabularies(self) -> list[Any]:
        """Its vocabularies, the input one first."""

    @abstractmethod
    def new_model(self, config: TrainConfig, rng: np.random.Generator) -> Module:
        """Its model for ``config``, initialised from ``rng`` (no size check)."""

    @classmethod
    @abstractmethod
    def build(cls, examples: Any, config: TrainConfig) -> Any:
        """The task with its vocabularies built from the training ``examples``."""

    @classmethod
    @abstractmethod
    def from_json(cls, d: Any) -> Any:
        """The task of a checkpoint's ``meta.vocabularies`` (a DataError if malformed)."""

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """Its vocabularies as JSON (``meta.vocabularies``)."""

    @abstractmethod
    def encode(self, examples: Any) -> Encoded:
        """The examples of a file as ids (a DataError naming the line of an empty one)."""

    @abstractmethod
    def batches(self, enc: Encoded, batch_size: int, rng: np.random.Generator | None = None
                ) -> Any:
        """Padded batches of ``enc`` (shuffled, length-bucketed with ``rng``)."""

    @abstractmethod
    def loss(self, model: Any, batch: Any, enc: Encoded) -> Any:
        """The forward pass and mean loss of ``batch`` (``model.backward_loss`` follows): a
        float, or on a GPU a 0-d device array the loop reads with the gradient norm."""

    @abstractmethod
    def infer(self, model: Any, enc: Encoded, batch_size: int,
              max_length: int | None = None) -> tuple[list[Any], LossSum]:
        """Each example's prediction (in ``enc``'s order) and the summed loss on ``enc``."""

    @abstractmethod
    def score(self, enc: Encoded, pred: list[Any], loss: LossSum) -> dict[str, Any]:
        """``"loss"`` and the task's metrics from every example's prediction."""

    def infer_share(self, model: Any, enc: Encoded, a: int, b: int, batch_size: int,
                    max_length: int | None = None) -> tuple[list[Any], LossSum]:
        """:meth:`infer` on the examples ``[a, b)`` of ``enc`` (none: nothing to run)."""
        if a == b:
            return [], LossSum()
        return self.infer(model, enc.subset(np.arange(a, b)), batch_size, max_length)

    def evaluate(self, model: Any, enc: Encoded, batch_size: int,
                 max_length: int | None = None, world: World = SINGLE) -> dict[str, Any]:
        """``"loss"`` and the task's metrics on ``enc``. On K ranks each predicts its
        contiguous share of the examples (``world.part``); the predictions are gathered and
        the loss sums summed, so every rank scores all of them, as one process would."""
        if world.size == 1:
            return self.score(enc, *self.infer(model, enc, batch_size, max_length))
        pred, loss = self.infer_share(model, enc, *world.part(len(enc)), batch_size,
                                      max_length)
        total, count = world.sum(np.array([loss.total, loss.count], dtype=np.float64))
        return self.score(enc, [p for part in world.gather(pred) for p in part],
                          LossSum(float(total), int(count)))


class TaskFeed(Feed):
    """An example-based task's run: shuffled length-bucketed batches (the epoch's order from
    ``order_rng``), the validation examples."""

    def __init__(self, task: SequenceTask, config: TrainConfig, train: Encoded,
                 val: Encoded) -> None:
        self.task, self.config, self.train, self.val = task, config, train, val
        self.order_rng = np.random.default_rng([config.seed, 1])  # the data order
        self.train_batches = task.batches(train, config.batch_size, self.order_rng)
        self.order: list[np.ndarray] | None = None  # the current epoch's batches
        self.world: World = SINGLE
        self.rng: Any = None  # the run's ShareGenerator, on several ranks (shard)
        self.empty = False  # this rank's share of the last batch had no example

    def __len__(self) -> int:
        return len(self.train_batches)

    def begin_epoch(self) -> None:
        self.order = self.train_batches.order()

    def shard(self, world: World, rng: Any) -> str:
        """Rank r takes the examples ``world.part(N)`` of every padded batch of N, padded
        to the whole batch's length, with the whole batch's dropout masks (so each rank's
        steps are one process's); a rank left with none contributes nothing (it runs the
        batch's forward pass only to draw its masks). Evaluation: each rank predicts
        its share of the validation examples (``SequenceTask.evaluate``)."""
        self.world, self.rng = world, rng
        return (f"data parallel on {world.describe()}: each rank takes its contiguous "
                f"share of every batch of {self.config.batch_size} examples (about "
                f"{self.config.batch_size / world.size:g}) and of the validation examples")

    def step(self, model: Module, i: int) -> tuple[Any, int]:
        batch = self.train_batches.batch((self.order or [])[i])
        if self.world.size == 1:
            return self.task.loss(model, batch, self.train), int(batch.lengths.sum())
        a, b = self.world.part(len(batch.index))
        self.empty = a == b
        if self.empty:  # the whole (small) batch's forward pass keeps the dropout masks'
            self.task.loss(model, batch, self.train)  # generator in step; it adds nothing
            return 0.0, 0
        with self.rng.batch_share(len(batch.index), a, b):  # the batch's masks, sliced
            return self.task.loss(model, share(batch, a, b), self.train), int(
                batch.lengths[a:b].sum())

    def loss_sum(self, model: Module) -> tuple[float, int]:
        return (0.0, 0) if self.empty else super().loss_sum(model)

    def evaluate(self, model: Module) -> dict[str, Any]:
        return self.task.evaluate(model, self.val, self.config.eval_batch_size,
                                  world=self.world)

    def save(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {}
        if self.order is not None:
            arrays["order/index"] = np.concatenate(self.order)
            arrays["order/bounds"] = np.cumsum([0] + [len(b) for b in self.order])
        return arrays, {"order_rng": self.order_rng.bit_generator.state}

    def check(self, ckpt: Any, model: Module) -> int:
        order = check_order(ckpt, len(self.train))
        if "order_rng" not in ckpt.meta:
            raise CheckpointError(f"checkpoint {ckpt.json_path} field meta.order_rng is "
                                  f"missing: {ADVICE}")
        validate.check_rng(ckpt.meta["order_rng"], f"checkpoint {ckpt.json_path} field "
                           "meta.order_rng")
        return max(len(order or []), 1)

    def restore(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        self.order_rng.bit_generator.state = meta["order_rng"]
        if "order/index" in arrays:
            index, bounds = arrays["order/index"], arrays["order/bounds"]
            self.order = [index[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def describe(self, directory: Path) -> str:
        cfg = self.config
        kind = f"{'bidirectional ' if cfg.bidirectional else ''}{cfg.cell.upper()}"
        return (f"training a {cfg.layers}x{cfg.hidden} {kind} {self.task.name} model on "
                f"{cfg.data} ({len(self.train)} training and {len(self.val)} validation "
                f"examples) into {directory}")

    def record(self) -> dict[str, Any]:
        return {"task": self.task.name,
                "examples": {"train": len(self.train), "val": len(self.val)},
                "outputs": self.task.outputs()}


def share(batch: Batch, a: int, b: int) -> Batch:
    """Examples ``[a, b)`` of a padded batch, still padded to its length T: ``x[:, a:b]``,
    per-step targets ``y[:, a:b]`` (T, n) or per-example ``y[a:b]`` (n,)."""
    y = batch.y[:, a:b] if batch.y.ndim == 2 else batch.y[a:b]
    return Batch(np.ascontiguousarray(batch.x[:, a:b]), batch.lengths[a:b],
                 np.ascontiguousarray(y), batch.index[a:b])
