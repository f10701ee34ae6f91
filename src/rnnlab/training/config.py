"""A training run's settings, and the one place they map onto the model's arguments.

Each field of :class:`TrainConfig` is also an ``rnnlab train`` flag of the same name
(``--batch-size`` sets ``batch_size``; every field but ``cache_dir``). The model's
arguments use PyTorch's names; :data:`MODEL_ARGS` maps the short field names onto them::

    --layers  layers  -> num_layers        --hidden  hidden  -> hidden_size
    --embed   embed   -> embed_size        --cell, --dropout, --tie-weights, ... unchanged

>>> cfg = TrainConfig(layers=3, hidden=128)
>>> cfg.model_kwargs()["num_layers"], cfg.model_kwargs()["hidden_size"]
(3, 128)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rnnlab.data.vocab import Level

# TrainConfig field -> LanguageModel argument (PyTorch's name).
MODEL_ARGS = {"cell": "cell", "embed": "embed_size", "hidden": "hidden_size",
              "layers": "num_layers", "dropout": "dropout", "tie_weights": "tie_weights",
              "init_range": "init_range", "dtype": "dtype", "nonlinearity": "nonlinearity",
              "forget_bias": "forget_bias", "peephole": "peephole"}
# Fields that may change when a run is resumed (the rest would make it another run).
MAX_SAMPLE_LENGTH = 100_000  # tokens sampled into metrics.jsonl at each evaluation, at most
RESUMABLE = ("epochs", "max_steps", "time_budget", "diverge_factor", "threads",
             "check_weights_every", "device")
NOT_FLAGS = ("cache_dir",)  # API only


def flag(field: str) -> str:
    """The ``rnnlab train`` flag that sets ``field``: ``"batch_size"`` -> ``"--batch-size"``."""
    return "--" + field.replace("_", "-")


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
    nonlinearity: str = "tanh"  # --cell rnn only: tanh or relu
    forget_bias: float | None = None  # --cell lstm only: initial forget-gate bias (1 is common)
    peephole: bool = False  # --cell lstm only: Gers & Schmidhuber's peephole weights
    layers: int = 2  # num_layers
    hidden: int = 256  # hidden_size
    embed: int = 64  # embed_size
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
    log_every: int = 10  # steps between rows of steps.jsonl (0: none)
    check_weights_every: int = 100  # several ranks: steps between weight checksums (0: none)
    seed: int = 0
    dtype: str = "float32"
    threads: int | None = None
    device: str = "cpu"  # cpu | cuda | cuda:N (rnnlab.device); may change on --resume
    out: str = "runs/shakespeare"
    sample_length: int = 200  # tokens sampled at each evaluation, into metrics.jsonl (0: none)
    cache_dir: str | None = None
    # Sequence tasks (rnnlab.tasks; the README's flag table says which flag applies where).
    task: str = "lm"  # lm | classify | tag | seq2seq
    val_fraction: float = 0.1  # tasks without --val-data: a seeded shuffled split
    bidirectional: bool = False
    pooling: str = "last"  # classify: last | cell | mean
    attention: str = "none"  # seq2seq: none | dot | additive
    reverse_source: bool = False
    peeky: bool = False

    def check(self) -> None:
        """Options that only some cells take: a ``UsageError`` naming the flags otherwise."""
        from rnnlab.errors import UsageError

        if self.nonlinearity != "tanh" and self.cell != "rnn":
            raise UsageError(f"--nonlinearity {self.nonlinearity} is for --cell rnn only, not "
                             f"--cell {self.cell}: drop it or pass --cell rnn")
        if self.forget_bias is not None and self.cell != "lstm":
            raise UsageError(f"--forget-bias is for --cell lstm only, not --cell {self.cell}: "
                             "drop it or pass --cell lstm")
        if self.peephole and self.cell != "lstm":
            raise UsageError(f"--peephole is for --cell lstm only, not --cell {self.cell}: "
                             "drop it or pass --cell lstm")
        if self.tie_weights and self.embed != self.hidden:
            raise UsageError(f"--tie-weights needs --embed equal to --hidden (the output layer "
                             f"reuses the embedding), got {self.embed} and {self.hidden}: "
                             f"pass --embed {self.hidden}")

    def model_kwargs(self) -> dict[str, Any]:
        """The :class:`rnnlab.models.LanguageModel` arguments (bar the vocabulary size, rng)."""
        return {arg: getattr(self, name) for name, arg in MODEL_ARGS.items()}

    @classmethod
    def flags(cls) -> tuple[str, ...]:
        """The fields set by ``rnnlab train`` flags (``--name-with-dashes``)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in NOT_FLAGS)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        if "split" in d:  # JSON has lists only
            d["split"] = tuple(d["split"])
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})
