"""A run folder, and the one place where training writes into it.

::

    config.json      the full configuration, seed, rnnlab version, sha256 of each data file
    metrics.jsonl    one JSON object per evaluation (losses, metrics, gradient health, sample)
    steps.jsonl      every --log-every steps: the mean training loss and gradient norm
    loss.png         the curves of both, redrawn at each evaluation
    last.npz/.json   the latest checkpoint: everything an exact resume needs
    best.npz/.json   the checkpoint of the best evaluation
    report.html      written by ``rnnlab report RUN``
    .lock            held (fcntl) by the process training in the folder (rnnlab.training.lock)

Every write goes through :meth:`RunFolder.writing`: a failed one (no space, no permission,
a read-only folder, a path that is a file) is a one-line :class:`RunFolderError` naming the
file and what is intact ("the last checkpoint, step 10, is intact"), never a traceback.
Checkpoints and config.json are replaced atomically and the logs are appended a whole line
at a time (:mod:`rnnlab.atomic`), so no file is left half-written; ``--resume`` drops the
rows logged after its checkpoint (:meth:`RunFolder.trim`).

In a run on several processes only rank 0 writes: the others hold a ``RunFolder(...,
writer=False)``, whose writes, lock and checks do nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.atomic import append_line, atomic_write_text
from rnnlab.data import sha256_file
from rnnlab.errors import RunFolderError
from rnnlab.metrics import json_line
from rnnlab.training import checkpoint
from rnnlab.training.lock import RunLock, check_free
from rnnlab.training.plot import plot_losses

RUN_FILES = ("metrics.jsonl", "steps.jsonl", "loss.png", "last.npz", "last.json", "best.npz",
             "best.json", "report.html")
LOGS = ("metrics.jsonl", "steps.jsonl")


class RunFolder:
    """The files of one run; ``saved_step`` is the step of its intact ``last`` checkpoint."""

    def __init__(self, directory: str | Path, *, writer: bool = True) -> None:
        self.directory, self.writer = Path(directory), writer
        self.lock = RunLock(self.directory)
        self.saved_step: int | None = None

    # ------------------------------------------------------------- writing
    @contextmanager
    def writing(self, path: Path | None = None) -> Iterator[None]:
        """Turn an OSError inside the block into a one-line RunFolderError naming the file
        (``path``, or the one the error names) and what is intact."""
        try:
            yield
        except OSError as e:
            name = e.filename if e.filename is not None else (path or self.directory)
            reason = e.strerror or type(e).__name__
            if self.saved_step is None:
                kept = "no checkpoint was written yet"
                todo = "then start the run again"
            else:
                kept = f"the last checkpoint, step {self.saved_step}, is intact"
                todo = f"then continue with rnnlab train --resume {self.directory}"
            raise RunFolderError(f"cannot write {name}: {reason}; {kept}: free space or fix "
                                 f"the folder's permissions, {todo}") from None

    def check_free(self) -> None:
        """A RunFolderError naming the process that trains in this folder, if one does;
        nothing in the folder changes."""
        if self.writer:
            check_free(self.directory)

    def take(self, *, fresh: bool) -> None:
        """Create the folder if need be and lock it (a RunFolderError naming the process
        that holds it otherwise); ``fresh`` (``--force``): then delete a former run's files."""
        if not self.writer:
            return
        with self.writing():
            self.directory.mkdir(parents=True, exist_ok=True)
            if not self.lock.held:
                self.lock.acquire()
            if fresh:
                for name in RUN_FILES:
                    (self.directory / name).unlink(missing_ok=True)

    def release(self) -> None:
        if self.writer:
            self.lock.release()

    def write_record(self, record: Mapping[str, Any]) -> None:
        path = self.directory / "config.json"
        if not self.writer:
            return
        with self.writing(path):
            atomic_write_text(path, json.dumps(record, indent=2) + "\n")

    def save_checkpoint(self, name: str, arrays: Mapping[str, np.ndarray],
                        meta: Mapping[str, Any], step: int) -> None:
        if not self.writer:
            return
        with self.writing(self.directory / f"{name}.npz"):
            checkpoint.save(self.directory, name, arrays, meta)
        if name == "last":
            self.saved_step = step

    def log_metrics(self, row: Mapping[str, Any]) -> None:
        """Append an evaluation's row to metrics.jsonl and redraw loss.png."""
        path = self.directory / "metrics.jsonl"
        if not self.writer:
            return
        with self.writing(path):
            append_line(path, json_line(dict(row)))
        with self.writing(self.directory / "loss.png"):
            plot_losses(self.directory)

    def log_steps(self, row: Mapping[str, Any]) -> None:
        """Append a row to steps.jsonl (not synced: a crash loses at most a few rows, which
        the resume would drop anyway)."""
        path = self.directory / "steps.jsonl"
        if not self.writer:
            return
        with self.writing(path):
            append_line(path, json_line(dict(row)), sync=False)

    def trim(self, step: int) -> None:
        """After a resume: drop the rows logged after the checkpoint's ``step`` (the tail of
        a killed or interrupted run)."""
        if not self.writer:
            return
        metrics_steps = _checked_steps(self.directory / "metrics.jsonl", load_metrics(
            self.directory))
        for name in LOGS:
            path = self.directory / name
            if not path.exists():
                continue
            rows = [r for r in path.read_text(errors="replace").splitlines() if r.strip()]
            steps = metrics_steps if name == "metrics.jsonl" else [_step(r) for r in rows]
            kept = [r for r, s in zip(rows, steps, strict=True)
                    if isinstance(s, int) and s <= step]
            if len(kept) < len(rows):
                with self.writing(path):
                    atomic_write_text(path, "".join(r + "\n" for r in kept))


def _step(line: str) -> Any:
    """The ``step`` of a steps.jsonl row (None for a damaged row: it is dropped)."""
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return row.get("step") if isinstance(row, dict) else None


def _checked_steps(path: Path, metrics: list[Any]) -> list[Any]:
    """The steps of metrics.jsonl's rows, each checked to hold what the plot reads."""
    for n, row in enumerate(metrics, 1):
        if not (isinstance(row, dict) and isinstance(row.get("step"), int)
                and all(isinstance(row.get(k), (int, float)) and row.get(k) is not True
                        and row.get(k) is not False for k in ("train_loss", "val_loss"))):
            raise RunFolderError(f"{path} row {n}: expected an object with an integer "
                                 "\"step\" and numbers \"train_loss\", \"val_loss\": "
                                 "delete that row, or retrain with --force")
    return [row["step"] for row in metrics]


def load_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run folder's ``metrics.jsonl`` (none if it has none yet)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    try:
        text = path.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except (ValueError, RecursionError) as e:  # JSONDecodeError, or a 5000-digit integer
        raise RunFolderError(f"{path} is not valid JSON lines ({e}): "
                             "delete the damaged line or retrain with --force") from e


def check_data_files(directory: Path, hashes: dict[str, str], started_on: set[str]) -> None:
    """The data files config.json names (``started_on``) are those the run started on
    (``hashes``: file -> sha256), each unchanged."""
    if set(hashes) != started_on:
        raise RunFolderError(f"{directory / 'config.json'} field config.data/val_data "
                             f"names {sorted(started_on)}, but the run started on "
                             f"{sorted(hashes)}: restore config.json, or start a new run")
    for f, sha in hashes.items():
        if not Path(f).is_file() or sha256_file(f) != sha:
            raise RunFolderError(f"data file {f} is missing or changed since the run "
                                 "started: restore it, or start a new run")


def data_hashes(files: list[str]) -> dict[str, str]:
    """``{file: sha256}`` for config.json."""
    return {str(f): sha256_file(str(f)) for f in files}
