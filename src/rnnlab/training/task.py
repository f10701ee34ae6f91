"""The task contract: all that the one training loop and the run folder know of a task.

Every task (the language model, ``classify``, ``tag``, ``seq2seq``: :mod:`rnnlab.tasks`)
comes in two parts::

    Task   what lasts: its vocabularies, the model it builds, its prediction
           (``sample`` for the language model, ``predict`` for the others); saved in
           every checkpoint (``to_meta``), so that ``sample``, ``eval`` and ``predict``
           rebuild it from the checkpoint alone
    Feed   one run's data: the training batches of an epoch and what a step carries to
           the next (the language model's hidden state), the validation set and its
           metrics, and what exact resume needs (generators, the epoch's order)

One training step, whatever the task (:mod:`rnnlab.training.loop`)::

    loss, tokens = feed.step(model, i)     forward pass and loss of batch i of the epoch
    model.backward_loss()                  the gradients of that loss
    clip, optimizer.step()

The loop asks nothing else: it never looks at a batch, a vocabulary or a model's type.

On K processes (``mpiexec -n K``: :mod:`rnnlab.training.ranks`) the run first calls
``feed.shard(world)``: from then on ``step`` runs this rank's contiguous share of every
global batch (a share may be empty: then it returns ``(0.0, 0)`` without a forward pass),
``loss_sum`` gives the summed loss and count the loop all-reduces, ``evaluate`` returns the
metrics of the whole validation set on every rank (reducing what it sharded), and ``save``
returns the whole state on every rank (gathering what the ranks hold; ``restore`` takes
the whole state and keeps this rank's share), so a checkpoint is the same whatever K.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rnnlab.errors import RnnlabError, UsageError
from rnnlab.nn.module import Module
from rnnlab.training.config import TrainConfig
from rnnlab.training.progress import Progress


class Feed(ABC):
    """One run's training and validation data for a task, and its state between steps."""

    @abstractmethod
    def __len__(self) -> int:
        """Batches in one epoch."""

    @abstractmethod
    def begin_epoch(self) -> None:
        """Called before an epoch's first batch (never when a run resumes mid-epoch): reset
        what a step carries, draw the epoch's order."""

    @abstractmethod
    def step(self, model: Module, i: int) -> tuple[Any, int]:
        """The forward pass and mean loss of batch ``i`` of the epoch (``model.backward_loss``
        follows); returns ``(loss, tokens in the batch)``, the loss a float or, on a GPU, a
        0-d device array that the loop reads together with the gradient norm."""

    @abstractmethod
    def evaluate(self, model: Module) -> dict[str, Any]:
        """Validation metrics of ``model`` (in eval mode): ``"loss"`` and the task's own;
        every float but the loss becomes a ``val_<name>`` field of the metrics row."""

    def shard(self, world: Any, rng: Any) -> str:
        """Train on this rank's share of every batch from now on (see the module doc), the
        dropout masks drawn by ``rng`` (the run's :class:`rnnlab.nn.dropout.ShareGenerator`)
        as the whole batch's and sliced to the share; returns one line saying how the batch
        is split. A UsageError (``every_rank``) when
        the batch cannot be split so. By default a task cannot."""
        error = UsageError(f"this task's feed ({type(self).__name__}) cannot train on several "
                           "processes yet: run it as one process (without mpiexec)")
        error.every_rank = True
        raise error

    def loss_sum(self, model: Module) -> tuple[float, int]:
        """The summed loss and the positions counted by the last :meth:`step` (its mean
        loss is their ratio): what the ranks add up. By default the model's criterion's."""
        criterion: Any = getattr(model, "criterion")  # noqa: B009
        return float(criterion.last_loss_sum), int(criterion.last_count)

    def extras(self, model: Module) -> dict[str, Any]:
        """Fields the metrics row ends with (the language model's sample); none by default."""
        return {}

    @abstractmethod
    def save(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """``(arrays, meta)`` to resume exactly: arrays under the task's ``array_parts``,
        meta fields beside the run's."""

    @abstractmethod
    def check(self, ckpt: Any, model: Module) -> int:
        """Check what :meth:`restore` would read of ``ckpt`` (a CheckpointError naming the
        field otherwise); returns the batches of the saved epoch. Nothing is changed."""

    @abstractmethod
    def restore(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        """Restore what :meth:`save` wrote (checked first by :meth:`check`)."""

    @abstractmethod
    def describe(self, directory: Path) -> str:
        """The first line ``rnnlab train`` prints for a new run."""

    @abstractmethod
    def record(self) -> dict[str, Any]:
        """The task's fields of ``config.json`` (sizes of the vocabulary and data)."""


class Task(ABC):
    """What lasts of a task: vocabularies, the model, prediction (see the module doc)."""

    name: ClassVar[str]  # the --task value
    main_metric: str = "loss"  # chooses the best checkpoint; "loss": the lowest
    progress_type: ClassVar[type[Progress]] = Progress
    meta_keys: ClassVar[tuple[str, ...]]  # what to_meta writes into a checkpoint's meta
    array_parts: ClassVar[tuple[str, ...]]  # the Feed's array name prefixes, e.g. "state/"
    progress_rules: ClassVar[dict[str, Any]] = {}  # checks of its progress fields

    @classmethod
    @abstractmethod
    def data_files(cls, config: TrainConfig) -> list[str]:
        """The files a run reads (their sha256 go into config.json)."""

    @classmethod
    @abstractmethod
    def prepare(cls, config: TrainConfig, task: Task | None = None) -> tuple[Task, Feed]:
        """Read the data: the task (its vocabularies from the training data unless ``task``
        is given, as on resume) and the run's feed."""

    @classmethod
    @abstractmethod
    def from_checkpoint(cls, meta: Mapping[str, Any], config: TrainConfig,
                        where: str) -> tuple[Task, Module]:
        """The task and an (unfilled) model of a checkpoint's meta, checked: a
        CheckpointError naming ``where`` and the field otherwise."""

    @abstractmethod
    def model(self, config: TrainConfig, rng: np.random.Generator, where: str,
              error: type[RnnlabError]) -> Module:
        """A new model for ``config``, initialised from ``rng``; one too big for this
        machine (or one the layers refuse) is ``error`` naming ``where``."""

    @abstractmethod
    def outputs(self) -> int:
        """Output classes (tokens); the divergence limit is a multiple of their log."""

    @abstractmethod
    def to_meta(self) -> dict[str, Any]:
        """The task's fields of a checkpoint's meta (``meta_keys``)."""

    @abstractmethod
    def check_resume(self, config: TrainConfig, where: str) -> None:
        """A checkpoint's task agrees with config.json's ``config`` (a RunFolderError
        naming ``where`` otherwise)."""

    @abstractmethod
    def summary(self, progress: Progress) -> str:
        """What ``done:`` says of the best evaluation."""
