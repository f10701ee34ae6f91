"""A training run: its folder, configuration, data, model, optimizer and checkpoints.

A run folder holds::

    config.json      the full configuration, seed, rnnlab version, sha256 of each data file
    metrics.jsonl    one JSON object per evaluation (with a sample of the model's text)
    loss.png         training and validation loss curves, gradient norms and clipping
    report.html      written by ``rnnlab report RUN`` (rnnlab.report)
    last.npz/.json   the latest checkpoint (weights; optimizer, RNG, data position, vocab)
    best.npz/.json   the checkpoint with the lowest validation loss
"""

from __future__ import annotations

import codecs
import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab import __version__, checkpoint, validate
from rnnlab.atomic import atomic_write_text
from rnnlab.config import TrainConfig
from rnnlab.data import (
    BPTTBatches,
    Vocab,
    encode_file,
    read_bytes,
    read_text,
    sha256_file,
    split_ids,
)
from rnnlab.errors import DataError, RunFolderError
from rnnlab.metrics import json_line
from rnnlab.models import LanguageModel
from rnnlab.optim import OPTIMIZERS
from rnnlab.plot import plot_losses

__all__ = ["OPTIMIZERS", "Progress", "Run", "TrainConfig", "bundled_corpus", "check_data_files",
           "load_data", "load_metrics"]


def bundled_corpus() -> Path:
    """tiny-shakespeare, shipped with the package (public-domain text)."""
    return Path(str(resources.files("rnnlab") / "corpora" / "tinyshakespeare.txt"))


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint (JSON)."""

    epoch: int = 0
    batch: int = 0  # next window of the epoch
    step: int = 0
    tokens: int = 0
    elapsed_s: float = 0.0
    last_loss: float = float("nan")
    best_val: float = float("inf")
    train_loss_sum: float = 0.0  # since the last evaluation, for its train_loss
    train_loss_count: int = 0  # also the steps since then
    grad_norm_sum: float = 0.0  # pre-clip norms since the last evaluation, for grad_norm_mean
    clipped_count: int = 0  # steps clipped since the last evaluation, for clipped_frac


class Run:
    """Everything a training run holds; build with :meth:`create` or :meth:`resume`."""

    def __init__(self, directory: Path, config: TrainConfig, vocab: Vocab,
                 train_ids: np.ndarray, val_ids: np.ndarray) -> None:
        self.directory, self.config, self.vocab = directory, config, vocab
        self.level = config.level
        self.train_ids, self.val_ids = train_ids, val_ids
        data = config.data or str(bundled_corpus())
        with _naming(data):
            self.train_batches = BPTTBatches(train_ids, config.batch_size, config.bptt)
        with _naming(config.val_data or data):
            BPTTBatches(val_ids, config.eval_batch_size, config.bptt)  # too short: fail now
        validate.check_size(config.model_kwargs(), len(vocab), max(config.batch_size,
                            config.eval_batch_size), config.bptt, "the model")  # before allocating
        self.rng = np.random.default_rng(config.seed)  # the one generator: init, then dropout
        # the samples at each evaluation draw from a stream of their own (saved, like rng)
        self.sample_rng = np.random.default_rng(np.random.SeedSequence(config.seed,
                                                                       spawn_key=(1,)))
        self.model = LanguageModel(len(vocab), **config.model_kwargs(), rng=self.rng)
        self.optimizer = OPTIMIZERS[config.optimizer](self.model.named_params(), lr=config.lr)
        self.progress = Progress()
        self.state: Any = None
        self.schedule_state: dict[str, Any] | None = None

    # ------------------------------------------------------------ creation
    @classmethod
    def create(cls, config: TrainConfig, *, force: bool = False) -> Run:
        directory = Path(config.out)
        if directory.exists() and any(directory.iterdir()) and not force:
            raise RunFolderError(f"run folder {directory} already exists: pass --resume "
                                 f"{directory} to continue it, --force to start it anew, "
                                 "or another --out")
        data = Path(config.data) if config.data else bundled_corpus()
        vocab, train_ids, val_ids = load_data(config, data)
        run = cls(directory, config, vocab, train_ids, val_ids)
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("metrics.jsonl", "loss.png", "last.npz", "last.json", "best.npz",
                     "best.json", "report.html"):
            (directory / name).unlink(missing_ok=True)  # --force: start anew
        files = [data] + ([Path(config.val_data)] if config.val_data else [])
        record = {"config": config.to_json(), "seed": config.seed, "rnnlab": __version__,
                  "data_sha256": {str(f): sha256_file(f) for f in files},
                  "vocab_size": len(vocab)}
        atomic_write_text(directory / "config.json", json.dumps(record, indent=2) + "\n")
        return run

    @classmethod
    def resume(cls, directory: str | Path) -> Run:
        directory = Path(directory)
        config, hashes = validate.read_run_record(directory)
        started_on = {f for f in (config.data or str(bundled_corpus()), config.val_data) if f}
        check_data_files(directory, hashes, started_on)
        ckpt = validate.read_checkpoint(directory, "last")
        if ckpt.vocab.level != config.level:
            raise RunFolderError(f"checkpoint {ckpt.json_path} holds a {ckpt.vocab.level} "
                                 f"vocabulary but config.json says level {config.level!r}: "
                                 "resume from another checkpoint or retrain")
        validate.check_size(config.model_kwargs(), len(ckpt.vocab), max(
            config.batch_size, config.eval_batch_size), config.bptt,
            f"{directory / 'config.json'} field config", RunFolderError)
        _, train_ids, val_ids = load_data(config, Path(config.data) if config.data
                                          else bundled_corpus(), ckpt.vocab)
        run = cls(directory, config, ckpt.vocab, train_ids, val_ids)
        validate.check_training_state(ckpt, run.model, run.optimizer, len(run.train_batches),
                                      config.batch_size)
        run.restore(ckpt.arrays, ckpt.meta)
        return run

    # --------------------------------------------------------- checkpoints
    def save_checkpoint(self, name: str) -> None:
        arrays = {f"model/{k}": v for k, v in checkpoint.model_state(self.model).items()}
        opt_arrays, opt_meta = self.optimizer.state_dict()
        arrays.update({f"optim/{k}": v for k, v in opt_arrays.items()})
        if self.state is not None:
            parts = self.state if isinstance(self.state, tuple) else (self.state,)
            arrays.update({f"state/{i}": s for i, s in enumerate(parts)})
        meta = {
            "task": "lm", "progress": dataclasses.asdict(self.progress), "optimizer": opt_meta,
            "rng": self.rng.bit_generator.state, "schedule": self.schedule_state,
            "sample_rng": self.sample_rng.bit_generator.state,
            "model": self.model.config(), "vocab": self.vocab.to_json(),
            "config": self.config.to_json(), "rnnlab": __version__,
        }
        checkpoint.save(self.directory, name, arrays, meta)

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        checkpoint.load_model_state(self.model, checkpoint.part(arrays, "model/"))
        self.optimizer.load_state_dict(checkpoint.part(arrays, "optim/"), meta["optimizer"])
        self.rng.bit_generator.state = meta["rng"]
        if "sample_rng" in meta:  # runs saved before samples were recorded have none
            self.sample_rng.bit_generator.state = meta["sample_rng"]
        self.progress = Progress(**meta["progress"])
        self.schedule_state = meta["schedule"]
        state = [v for _, v in sorted(checkpoint.part(arrays, "state/").items())]
        self.state = None if not state else (tuple(state) if len(state) > 1 else state[0])

    # -------------------------------------------------------------- metrics
    def log_metrics(self, row: dict[str, Any]) -> None:
        path = self.directory / "metrics.jsonl"
        with path.open("a", encoding="utf-8") as f:
            f.write(json_line(row) + "\n")
        plot_losses(self.directory)

    def trim_metrics(self) -> None:
        """After a resume: drop rows logged after the checkpoint (a killed run's tail)."""
        path = self.directory / "metrics.jsonl"
        if path.exists():
            rows = [r for r in path.read_text(errors="replace").splitlines() if r.strip()]
            metrics = load_metrics(self.directory)
            for n, row in enumerate(metrics, 1):  # the plot reads these three
                if not (isinstance(row, dict) and isinstance(row.get("step"), int)
                        and all(isinstance(row.get(k), (int, float)) and row.get(k) is not True
                                and row.get(k) is not False for k in ("train_loss", "val_loss"))):
                    raise RunFolderError(f"{path} row {n}: expected an object with an integer "
                                         "\"step\" and numbers \"train_loss\", \"val_loss\": "
                                         "delete that row, or retrain with --force")
            steps = [row["step"] for row in metrics]
            kept = [r for r, s in zip(rows, steps, strict=True)
                    if isinstance(s, int) and s <= self.progress.step]
            atomic_write_text(path, "".join(r + "\n" for r in kept))


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


def load_data(config: TrainConfig, data: Path, vocab: Vocab | None = None
              ) -> tuple[Vocab, np.ndarray, np.ndarray]:
    """Vocabulary (from the training text unless given), training and validation ids."""
    with _naming(data):  # e.g. a byte file holding only a BOM: no tokens
        if vocab is None and config.level == "byte":  # any bytes: no UTF-8 needed
            vocab = Vocab.build(read_bytes(data).removeprefix(codecs.BOM_UTF8), "byte")
        elif vocab is None:
            vocab = Vocab.build(read_text(data), config.level, max_size=config.max_vocab,
                                min_freq=config.min_freq)
    ids = encode_file(data, vocab, cache_dir=config.cache_dir)
    if config.val_data:
        return vocab, ids, encode_file(Path(config.val_data), vocab, cache_dir=config.cache_dir)
    with _naming(data):
        parts = split_ids(ids, config.split)
    return vocab, parts[0], parts[1]


@contextmanager
def _naming(path: str | Path) -> Iterator[None]:
    """Put ``data file <path>:`` before a DataError that does not name the file yet."""
    try:
        yield
    except DataError as e:
        if str(path) in str(e):
            raise
        raise DataError(f"data file {str(path)!r}: {e}") from None


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
