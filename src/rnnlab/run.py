"""A training run: its folder, configuration, data, model, optimizer and checkpoints.

A run folder holds::

    config.json      the full configuration, seed, rnnlab version, sha256 of each data file
    metrics.jsonl    one JSON object per evaluation
    loss.png         training and validation loss curves
    last.npz/.json   the latest checkpoint (weights; optimizer, RNG, data position, vocab)
    best.npz/.json   the checkpoint with the lowest validation loss
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab import __version__, checkpoint
from rnnlab.data import (
    BPTTBatches,
    DataError,
    Vocab,
    encode_file,
    read_text,
    sha256_file,
    split_ids,
)
from rnnlab.data.vocab import Level
from rnnlab.metrics import json_line
from rnnlab.models import LanguageModel
from rnnlab.optim import SGD, Adagrad, Adam, RMSprop

OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adagrad": Adagrad, "rmsprop": RMSprop}


def bundled_corpus() -> Path:
    """tiny-shakespeare, shipped with the package (public-domain text)."""
    return Path(str(resources.files("rnnlab") / "corpora" / "tinyshakespeare.txt"))


@dataclass
class TrainConfig:
    """Every setting of a run; the defaults are the bundled tiny-shakespeare job."""

    data: str | None = None  # None: the bundled tiny-shakespeare
    val_data: str | None = None  # None: the tail of ``data`` (see split)
    split: tuple[float, ...] = (0.9, 0.05, 0.05)  # train / val / test of a single file
    level: Level = "char"  # an annotation only: Vocab.build rejects any other value
    max_vocab: int | None = None
    min_freq: int = 1
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 256
    embed: int = 64
    dropout: float = 0.1
    tie_weights: bool = False
    init_range: float | None = None
    batch_size: int = 32
    eval_batch_size: int = 32
    bptt: int = 64
    epochs: int = 20
    max_steps: int | None = None
    time_budget: float | None = 240.0  # seconds of training
    optimizer: str = "adam"
    lr: float = 2e-3
    schedule: str = "constant"
    lr_decay: float = 0.5
    decay_after: int = 4
    clip: float = 5.0
    diverge_factor: float = 100.0  # stop when a loss exceeds this x ln V (0: never)
    eval_every: int = 250
    seed: int = 0
    dtype: str = "float32"
    threads: int | None = None
    out: str = "runs/shakespeare"
    cache_dir: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        d["split"] = tuple(d["split"])
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


def atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Run:
    """Everything a training run holds; build with :meth:`create` or :meth:`resume`."""

    def __init__(self, directory: Path, config: TrainConfig, vocab: Vocab,
                 train_ids: np.ndarray, val_ids: np.ndarray) -> None:
        self.directory, self.config, self.vocab = directory, config, vocab
        self.level = config.level
        self.train_ids, self.val_ids = train_ids, val_ids
        self.rng = np.random.default_rng(config.seed)  # the one generator: init, then dropout
        self.model = LanguageModel(
            len(vocab), cell=config.cell, embed_size=config.embed, hidden_size=config.hidden,
            num_layers=config.layers, dropout=config.dropout, tie_weights=config.tie_weights,
            init_range=config.init_range, dtype=np.dtype(config.dtype), rng=self.rng)
        self.optimizer = OPTIMIZERS[config.optimizer](self.model.named_params(), lr=config.lr)
        self.train_batches = BPTTBatches(train_ids, config.batch_size, config.bptt)
        BPTTBatches(val_ids, config.eval_batch_size, config.bptt)  # too short: fail now
        from rnnlab.train import Progress

        self.progress = Progress()
        self.state: Any = None
        self.schedule_state: dict[str, Any] | None = None

    # ------------------------------------------------------------ creation
    @classmethod
    def create(cls, config: TrainConfig, *, force: bool = False) -> Run:
        directory = Path(config.out)
        if directory.exists() and any(directory.iterdir()) and not force:
            raise DataError(f"run folder {directory} already exists: pass --resume {directory} "
                            "to continue it, --force to start it anew, or another --out")
        data = Path(config.data) if config.data else bundled_corpus()
        vocab, train_ids, val_ids = load_data(config, data)
        run = cls(directory, config, vocab, train_ids, val_ids)
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("metrics.jsonl", "loss.png", "last.npz", "last.json", "best.npz",
                     "best.json"):
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
        cfg_path = directory / "config.json"
        if not cfg_path.exists():
            raise DataError(f"{directory} is not a run folder (no config.json): "
                            "check the path, or start a run with rnnlab train --out")
        record = json.loads(cfg_path.read_text())
        config = TrainConfig.from_json(record["config"])
        for f, sha in record["data_sha256"].items():
            if not Path(f).exists() or sha256_file(f) != sha:
                raise DataError(f"data file {f} is missing or changed since the run started: "
                                "restore it, or start a new run")
        arrays, meta = checkpoint.load(directory, "last")
        vocab = Vocab.from_json(meta["vocab"])
        _, train_ids, val_ids = load_data(config, Path(config.data) if config.data
                                          else bundled_corpus(), vocab)
        run = cls(directory, config, vocab, train_ids, val_ids)
        run.restore(arrays, meta)
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
            "progress": dataclasses.asdict(self.progress), "optimizer": opt_meta,
            "rng": self.rng.bit_generator.state, "schedule": self.schedule_state,
            "model": self.model.config(), "vocab": self.vocab.to_json(),
            "config": self.config.to_json(), "rnnlab": __version__,
        }
        checkpoint.save(self.directory, name, arrays, meta)

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        from rnnlab.train import Progress

        def part(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

        checkpoint.load_model_state(self.model, part("model/"))
        self.optimizer.load_state_dict(part("optim/"), meta["optimizer"])
        self.rng.bit_generator.state = meta["rng"]
        self.progress = Progress(**meta["progress"])
        self.schedule_state = meta["schedule"]
        state = [v for _, v in sorted(part("state/").items())]
        self.state = None if not state else (tuple(state) if len(state) > 1 else state[0])

    # -------------------------------------------------------------- metrics
    def log_metrics(self, row: dict[str, Any]) -> None:
        path = self.directory / "metrics.jsonl"
        with path.open("a", encoding="utf-8") as f:
            f.write(json_line(row) + "\n")
        from rnnlab.plot import plot_losses

        plot_losses(self.directory)

    def trim_metrics(self) -> None:
        """After a resume: drop rows logged after the checkpoint (a killed run's tail)."""
        path = self.directory / "metrics.jsonl"
        if path.exists():
            rows = [r for r in path.read_text().splitlines() if r.strip()]
            kept = [r for r in rows if json.loads(r)["step"] <= self.progress.step]
            atomic_write_text(path, "".join(r + "\n" for r in kept))


def load_data(config: TrainConfig, data: Path, vocab: Vocab | None = None
              ) -> tuple[Vocab, np.ndarray, np.ndarray]:
    """Vocabulary (from the training text unless given), training and validation ids."""
    if vocab is None and config.level == "byte":  # any bytes: no UTF-8 needed
        vocab = Vocab.build(data.read_bytes(), "byte")
    elif vocab is None:
        vocab = Vocab.build(read_text(data), config.level, max_size=config.max_vocab,
                            min_freq=config.min_freq)
    ids = encode_file(data, vocab, cache_dir=config.cache_dir)
    if config.val_data:
        return vocab, ids, encode_file(Path(config.val_data), vocab, cache_dir=config.cache_dir)
    parts = split_ids(ids, config.split)
    return vocab, parts[0], parts[1]
