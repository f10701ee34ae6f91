"""A trained run's model for ``sample``, ``eval``, ``predict`` and ``inspect``: its best
checkpoint (else its last), checked by :func:`rnnlab.training.validate.read_checkpoint`."""

from __future__ import annotations

from pathlib import Path

from rnnlab.cli.device import usable
from rnnlab.errors import CheckpointError, RunFolderError
from rnnlab.tasks import TASK_TYPES
from rnnlab.training import validate
from rnnlab.training.validate import Checkpoint


def load_run(path: str, *, want: str | None = None, device: str = "cpu") -> Checkpoint:
    """The checked checkpoint of the run folder ``path``, its model in eval mode on
    ``device`` (a checkpoint is the same whatever device wrote it). ``want``: ``"lm"`` (a
    language model's commands) or ``"prediction"`` (a task with predictions)."""
    usable(device)  # before anything is read: a one-line UsageError otherwise
    directory = Path(path)
    if not directory.is_dir():
        train = "rnnlab train --task ..." if want == "prediction" else "rnnlab train"
        raise RunFolderError(f"no run folder at {directory}: train one with {train}, "
                             "or pass --checkpoint RUN")
    name = "best" if (directory / "best.json").exists() else "last"
    ckpt = validate.read_checkpoint(directory, name, TASK_TYPES)
    kind = ckpt.task.name
    if want == "lm" and kind != "lm":
        raise CheckpointError(f"{directory} holds a {kind!r} model, not a language model: "
                              "use rnnlab predict or rnnlab eval")
    if want == "prediction" and kind == "lm":
        raise CheckpointError(f"checkpoint {ckpt.json_path} field meta.task is 'lm', not one "
                              f"of {', '.join(k for k in TASK_TYPES if k != 'lm')}: a language "
                              "model has no predictions (use rnnlab sample or rnnlab eval); "
                              "else retrain")
    ckpt.model.to(device).eval()
    return ckpt
