"""A training run: its folder, configuration, task, model, optimizer and checkpoints.

One type for every task. :meth:`Run.create` starts a run in a folder (locked while it
trains), :meth:`Run.resume` continues the one in a folder from its ``last`` checkpoint,
exactly: a checkpoint holds, besides the weights, everything the next step depends on::

    model/...      the parameters                 meta.progress   where training stands
    optim/...      the optimizer's buffers        meta.optimizer  its step and settings
    <task>/...     the feed's arrays (state/,     meta.rng        initialisation, dropout
                   order/)                        meta.schedule   the lr schedule's state
                                                  meta.<task>     vocabularies, generators

On several processes (``world``, :mod:`rnnlab.training.ranks`) every rank builds the same
run (the same seed, so the same weights and generators) and hands its feed the world
(``Feed.shard``); rank 0 alone checks, locks and writes the folder. A checkpoint holds the
whole state (the feed gathers what the ranks hold), so it is the same whatever K wrote it.

The model is built on the host from the seed, then moved to ``config.device`` (``--device``),
before the optimizer makes its state there; a checkpoint holds host arrays, whatever the
device, so a run may resume on another device (exactly only on the same one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab import __version__
from rnnlab.device import DeviceError
from rnnlab.errors import RunFolderError, UsageError
from rnnlab.nn.dropout import ShareGenerator
from rnnlab.optim import OPTIMIZERS
from rnnlab.training import checkpoint, validate
from rnnlab.training.config import TrainConfig
from rnnlab.training.folder import RunFolder, check_data_files, data_hashes
from rnnlab.training.ranks import SINGLE, World
from rnnlab.training.task import Feed, Task

__all__ = ["Run"]


class Run:
    """Everything a training run holds; build with :meth:`create` or :meth:`resume`."""

    def __init__(self, folder: RunFolder, config: TrainConfig, task: Task, feed: Feed,
                 world: World = SINGLE) -> None:
        self.folder, self.directory = folder, folder.directory
        self.config, self.task, self.feed, self.world = config, task, feed, world
        # the one generator: initialisation, then dropout (default_rng(seed)'s stream)
        self.rng = ShareGenerator(np.random.PCG64(config.seed))
        self.split = feed.shard(world, self.rng) if world.size > 1 else None  # batch split
        self.device = world.device(config.device)  # on K ranks, cuda: each its own GPU
        if self.split and self.device.startswith("cuda"):
            self.split += ("; each rank on the GPU of its local rank (cuda:<local rank>), "
                           "the gradients all-reduced through host memory")
        self.model: Any = task.model(config, self.rng, "the model", UsageError)
        try:
            self.model.to(self.device)
        except DeviceError as e:  # no CuPy, no GPU: one line, before the folder is touched
            raise UsageError(str(e)) from None
        self.optimizer = OPTIMIZERS[config.optimizer](self.model.named_params(), lr=config.lr)
        self.progress = task.progress_type()
        self.schedule_state: dict[str, Any] | None = None

    # ------------------------------------------------------------ creation
    @classmethod
    def create(cls, config: TrainConfig, task_type: type[Task], *, force: bool = False,
               world: World = SINGLE) -> Run:
        """A new run in ``config.out``; nothing there changes unless the data and model are
        good and no other process trains there (the folder is then locked)."""
        folder = RunFolder(config.out, writer=world.root)
        if folder.writer and folder.directory.exists():
            folder.check_free()  # a folder in training names its process
            with folder.writing():
                taken = any(p.name != ".lock" for p in folder.directory.iterdir())
            if taken and not force:
                raise RunFolderError(f"run folder {folder.directory} already exists: pass "
                                     f"--resume {folder.directory} to continue it, --force "
                                     "to start it anew, or another --out")
        task, feed = task_type.prepare(config)
        run = cls(folder, config, task, feed, world)
        folder.take(fresh=True)
        try:
            folder.write_record({"config": config.to_json(), "seed": config.seed,
                                 "rnnlab": __version__, **feed.record(),
                                 "data_sha256": data_hashes(task_type.data_files(config))})
        except BaseException:
            folder.release()
            raise
        return run

    @classmethod
    def resume(cls, directory: str | Path, tasks: Mapping[str, type[Task]],
               world: World = SINGLE, device: str | None = None) -> Run:
        """The run in ``directory``, at its ``last`` checkpoint, every file checked before
        the folder is locked (a refused resume changes nothing); on ``device`` if given,
        else on the run's own."""
        folder = RunFolder(directory, writer=world.root)
        config, hashes = validate.read_run_record(folder.directory)
        if device is not None:
            config.device = device
        folder.check_free()
        task_type = tasks[config.task]
        check_data_files(folder.directory, hashes, set(task_type.data_files(config)))
        ckpt = validate.read_checkpoint(folder.directory, "last", tasks)
        ckpt.task.check_resume(config, f"{folder.directory / 'config.json'} field config")
        task, feed = task_type.prepare(config, ckpt.task)
        run = cls(folder, config, task, feed, world)
        n_batches = feed.check(ckpt, run.model)
        validate.check_resume_state(ckpt, ckpt.model, run.model, run.optimizer, n_batches,
                                    task_type.progress_rules)
        folder.take(fresh=False)
        run.restore(ckpt.arrays, ckpt.meta)
        folder.saved_step = run.progress.step
        return run

    # --------------------------------------------------------- checkpoints
    def save_checkpoint(self, name: str) -> None:
        arrays = {f"model/{k}": v for k, v in checkpoint.model_state(self.model).items()}
        opt_arrays, opt_meta = self.optimizer.state_dict()
        arrays.update({f"optim/{k}": v for k, v in opt_arrays.items()})
        feed_arrays, feed_meta = self.feed.save()
        arrays.update(feed_arrays)
        meta = {
            "task": self.task.name, **self.task.to_meta(),
            "progress": dataclasses.asdict(self.progress), "optimizer": opt_meta,
            "rng": self.rng.bit_generator.state, "schedule": self.schedule_state, **feed_meta,
            "model": self.model.config(), "config": self.config.to_json(), "rnnlab": __version__,
        }
        self.folder.save_checkpoint(name, arrays, meta, self.progress.step)

    def restore(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        checkpoint.load_model_state(self.model, checkpoint.part(arrays, "model/"))
        self.optimizer.load_state_dict(checkpoint.part(arrays, "optim/"), meta["optimizer"])
        self.rng.bit_generator.state = meta["rng"]
        self.progress = self.task.progress_type(**meta["progress"])
        self.schedule_state = meta["schedule"]
        self.feed.restore(arrays, meta)

    def close(self) -> None:
        """Unlock the folder (the process's exit does too)."""
        self.folder.release()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
