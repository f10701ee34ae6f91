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

import dataclasses
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab import __version__, checkpoint
from rnnlab.atomic import atomic_write_text
from rnnlab.config import TrainConfig
from rnnlab.data import BPTTBatches, Vocab, encode_file, read_text, sha256_file, split_ids
from rnnlab.errors import RunFolderError
from rnnlab.metrics import json_line
from rnnlab.models import LanguageModel
from rnnlab.optim import OPTIMIZERS
from rnnlab.plot import plot_losses

__all__ = ["OPTIMIZERS", "Progress", "Run", "TrainConfig", "bundled_corpus", "load_data",
           "load_metrics"]


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
        self.rng = np.random.default_rng(config.seed)  # the one generator: init, then dropout
        # the samples at each evaluation draw from a stream of their own (saved, like rng)
        self.sample_rng = np.random.default_rng(np.random.SeedSequence(config.seed,
                                                                       spawn_key=(1,)))
        self.model = LanguageModel(len(vocab), **config.model_kwargs(), rng=self.rng)
        self.optimizer = OPTIMIZERS[config.optimizer](self.model.named_params(), lr=config.lr)
        self.train_batches = BPTTBatches(train_ids, config.batch_size, config.bptt)
        BPTTBatches(val_ids, config.eval_batch_size, config.bptt)  # too short: fail now
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
        cfg_path = directory / "config.json"
        if not cfg_path.exists():
            raise RunFolderError(f"{directory} is not a run folder (no config.json): "
                                 "check the path, or start a run with rnnlab train --out")
        record = json.loads(cfg_path.read_text())
        config = TrainConfig.from_json(record["config"])
        for f, sha in record["data_sha256"].items():
            if not Path(f).exists() or sha256_file(f) != sha:
                raise RunFolderError(f"data file {f} is missing or changed since the run "
                                     "started: restore it, or start a new run")
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
            "task": "lm", "progress": dataclasses.asdict(self.progress), "optimizer": opt_meta,
            "rng": self.rng.bit_generator.state, "schedule": self.schedule_state,
            "sample_rng": self.sample_rng.bit_generator.state,
            "model": self.model.config(), "vocab": self.vocab.to_json(),
            "config": self.config.to_json(), "rnnlab": __version__,
        }
        checkpoint.save(self.directory, name, arrays, meta)

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        def part(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

        checkpoint.load_model_state(self.model, part("model/"))
        self.optimizer.load_state_dict(part("optim/"), meta["optimizer"])
        self.rng.bit_generator.state = meta["rng"]
        if "sample_rng" in meta:  # runs saved before samples were recorded have none
            self.sample_rng.bit_generator.state = meta["sample_rng"]
        self.progress = Progress(**meta["progress"])
        self.schedule_state = meta["schedule"]
        state = [v for _, v in sorted(part("state/").items())]
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


def load_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run folder's ``metrics.jsonl`` (none if it has none yet)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{path} is not valid JSON lines ({e}): "
                             "delete the damaged line or retrain with --force") from e
