"""``--task lm`` (the default): a language model over a text stream, truncated BPTT.

The text is one stream of token ids, cut into ``B`` parallel streams and windows of
``bptt`` steps (Zaremba's batching, :class:`rnnlab.data.BPTTBatches`); the hidden state
is carried from window to window (no gradient across the edge) and reset at each epoch.
Validation is the mean loss over the validation stream, state carried, in nats per token
(:func:`evaluate_loss`); the ``best`` checkpoint has the lowest. Its prediction is a sample
(:mod:`rnnlab.models.generate`); each evaluation's row ends with one, drawn from a
generator of its own so that sampling leaves training untouched.

>>> model = LanguageModel(5, embed_size=4, hidden_size=4, rng=np.random.default_rng(0))
>>> ids = np.random.default_rng(1).integers(0, 5, size=101)
>>> loss, count = evaluate_loss(model, ids, batch_size=1, bptt=8)
>>> count, bool(abs(loss - np.log(5)) < 0.5)  # 100 targets; an untrained model is near ln V
(100, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data import BPTTBatches, Vocab, bundled_corpus, encode_file, read_text
from rnnlab.device import to_host
from rnnlab.errors import CheckpointError, DataError, RnnlabError, RunFolderError, UsageError
from rnnlab.metrics import describe_perplexity, perplexity
from rnnlab.models import LanguageModel
from rnnlab.models.generate import sample_text
from rnnlab.nn.module import Module
from rnnlab.tasks.lm_data import load_data, naming
from rnnlab.training import validate
from rnnlab.training.config import TrainConfig
from rnnlab.training.progress import Progress
from rnnlab.training.ranks import SINGLE, World
from rnnlab.training.task import Feed, Task

__all__ = ["LanguageModelTask", "evaluate_loss"]


def evaluate_loss(model: LanguageModel, ids: np.ndarray, *, batch_size: int, bptt: int
                  ) -> tuple[float, int]:
    """Mean loss in nats per token over ``ids`` (state carried), and the number of targets::

        for x, y in BPTTBatches(ids, batch_size, bptt):     (T, B) windows, state carried
            loss, state = model.loss(x, y, state)
        mean = Σ loss sums / Σ targets                        nats per token

    ``model`` runs in eval mode (no dropout) and is returned to its previous mode.
    ``batch_size``: the parallel streams the ids are cut into (the tail beyond a multiple
    of it is dropped); ``bptt``: steps per window. Training validates with
    ``eval_batch_size`` streams; ``rnnlab eval`` with one, so every token but the first
    is scored.
    """
    total, count = loss_sums(model, BPTTBatches(ids, batch_size, bptt))
    return total / max(count, 1), count


def loss_sums(model: LanguageModel, batches: BPTTBatches) -> tuple[float, int]:
    """The summed loss (nats) and the targets over ``batches``, state carried, in eval mode
    (:func:`evaluate_loss`; a rank's share of the streams sums its part)."""
    was_training = model.training
    model.eval()
    try:
        state, total, count = None, 0.0, 0
        for x, y in batches:
            _, state = model.loss(x, y, state)
            total += model.criterion.last_loss_sum
            count += model.criterion.last_count
    finally:
        model.train(was_training)
    return total, count


class LanguageModelTask(Task):
    """The vocabulary of a language model (``meta.vocab`` in its checkpoints)."""

    name, main_metric, progress_type = "lm", "loss", Progress
    meta_keys, array_parts = ("vocab",), ("state/",)

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab

    @classmethod
    def data_files(cls, config: TrainConfig) -> list[str]:
        return [config.data or str(bundled_corpus())] + (
            [config.val_data] if config.val_data else [])

    @classmethod
    def prepare(cls, config: TrainConfig, task: Task | None = None
                ) -> tuple[LanguageModelTask, LMFeed]:
        data = Path(config.data) if config.data else bundled_corpus()
        vocab = task.vocab if isinstance(task, LanguageModelTask) else None
        vocab, train_ids, val_ids = load_data(config, data, vocab)
        lm = cls(vocab)
        return lm, LMFeed(lm, config, train_ids, val_ids)

    @classmethod
    def from_checkpoint(cls, meta: Mapping[str, Any], config: TrainConfig,
                        where: str) -> tuple[LanguageModelTask, Module]:
        kw = validate.check_model_meta(meta["model"], f"{where}.model")
        try:
            vocab = Vocab.from_json(meta["vocab"])
        except DataError as e:
            raise CheckpointError(f"{where}.vocab: {e}") from None
        if kw["vocab_size"] != len(vocab):
            raise CheckpointError(f"{where}.model.vocab_size: expected {len(vocab)} (the "
                                  f"size of meta.vocab), got {kw['vocab_size']}: "
                                  f"{validate.ADVICE}")
        if kw["tie_weights"] and kw["embed_size"] != kw["hidden_size"]:
            raise CheckpointError(f"{where}.model: tie_weights needs embed_size == "
                                  f"hidden_size: {validate.ADVICE}")
        validate.check_size(kw, kw.pop("vocab_size"), 1, 1, f"{where}.model", CheckpointError)
        return cls(vocab), LanguageModel(len(vocab), **kw, rng=np.random.default_rng(0))

    def model(self, config: TrainConfig, rng: np.random.Generator, where: str,
              error: type[RnnlabError]) -> LanguageModel:
        validate.check_size(config.model_kwargs(), len(self.vocab), max(
            config.batch_size, config.eval_batch_size), config.bptt, where, error)
        return LanguageModel(len(self.vocab), **config.model_kwargs(), rng=rng)

    def outputs(self) -> int:
        return len(self.vocab)

    def to_meta(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_json()}

    def check_resume(self, config: TrainConfig, where: str) -> None:
        if self.vocab.level != config.level:
            raise RunFolderError(f"the last checkpoint holds a {self.vocab.level} vocabulary "
                                 f"but config.json says level {config.level!r}: resume from "
                                 "another checkpoint or retrain")
        validate.check_size(config.model_kwargs(), len(self.vocab), max(
            config.batch_size, config.eval_batch_size), config.bptt, where, RunFolderError)

    def summary(self, progress: Progress) -> str:
        best = progress.best_val
        extra = f", {best / math.log(2):.4f} bits/char" if self.vocab.level == "char" else ""
        return (f"best validation loss {best:.4f} nats/token (perplexity "
                f"{describe_perplexity(best)}{extra})")

    def evaluate_file(self, model: LanguageModel, path: str, config: TrainConfig
                      ) -> dict[str, Any]:
        """``rnnlab eval``: loss, perplexity, tokens (and bits per character) of a text
        file, as one stream, so every token but the first is scored."""
        read_text(path)  # the clear errors for a missing, empty or binary file
        ids = encode_file(path, self.vocab)
        try:
            loss, count = evaluate_loss(model, ids, batch_size=1, bptt=config.bptt)
        except DataError as e:  # e.g. too short: one token
            raise DataError(f"data file {path!r}: {e}") from None
        if math.isnan(loss):  # finite parameters (checked) whose products overflow
            raise CheckpointError(f"the loss on {path} is NaN: the checkpoint's parameters "
                                  "are finite but overflow when multiplied; retrain, or resume "
                                  "from an earlier checkpoint")
        result: dict[str, Any] = {"loss": loss, "perplexity": perplexity(loss), "tokens": count}
        if self.vocab.level in ("char", "byte"):
            result["bits_per_char"] = loss / math.log(2)
        return result


class LMFeed(Feed):
    """A language model's run: the training windows, the carried state (``state/`` arrays),
    the validation stream, and the generator of each evaluation's sample (``sample_rng``)."""

    def __init__(self, task: LanguageModelTask, config: TrainConfig, train_ids: np.ndarray,
                 val_ids: np.ndarray) -> None:
        self.task, self.config = task, config
        self.train_ids, self.val_ids = train_ids, val_ids
        data = config.data or str(bundled_corpus())
        with naming(data):
            self.batches = BPTTBatches(train_ids, config.batch_size, config.bptt)
        with naming(config.val_data or data):
            BPTTBatches(val_ids, config.eval_batch_size, config.bptt)  # too short: fail now
        self.sample_rng = np.random.default_rng(np.random.SeedSequence(config.seed,
                                                                       spawn_key=(1,)))
        self.state: Any = None  # this rank's streams' state (all of it for one process)
        self.world: World = SINGLE
        self.rng: Any = None  # the run's ShareGenerator, on several ranks (shard)

    def __len__(self) -> int:
        return len(self.batches)

    def begin_epoch(self) -> None:
        self.state = None  # each epoch starts from zeros

    def step(self, model: Any, i: int) -> tuple[Any, int]:
        x, y = self.batches[i]  # (T, B) each; this rank's streams (T, B/K) on K ranks
        with self._share():  # the dropout masks of the whole batch, sliced
            loss, self.state = model.loss(x, y, self.state)
        return loss, int(x.size)  # on a GPU, loss is not read here (the loop reads it)

    def _share(self) -> Any:
        """On K ranks, the run generator's ``batch_share`` of this rank's streams; else
        nothing."""
        if self.world.size == 1 or self.rng is None:
            return nullcontext()
        return self.rng.batch_share(self.config.batch_size,
                                    *self.world.part(self.config.batch_size))

    def shard(self, world: World, rng: Any) -> str:
        """Rank r takes streams ``world.part(B)`` of the B training streams (and of the
        evaluation's): B and the evaluation batch must be multiples of K."""
        cfg, k = self.config, world.size
        for name, n in (("--batch-size", cfg.batch_size), ("--eval-batch-size",
                                                           cfg.eval_batch_size)):
            if n % k:
                error = UsageError(f"{name} {n} cannot be split across {k} processes: give a "
                                   f"multiple of {k}, or run on a number of processes that "
                                   "divides it")
                error.every_rank = True
                raise error
        self.world, self.rng = world, rng
        self.batches = self.batches.streams(*world.part(cfg.batch_size))
        return (f"data parallel on {world.describe()}: each rank takes {cfg.batch_size // k} "
                f"of the {cfg.batch_size} streams of every batch ({cfg.eval_batch_size // k} "
                f"of {cfg.eval_batch_size} when evaluating)")

    def evaluate(self, model: Any) -> dict[str, Any]:
        cfg = self.config
        batches = BPTTBatches(self.val_ids, cfg.eval_batch_size, cfg.bptt)
        if self.world.size > 1:
            batches = batches.streams(*self.world.part(cfg.eval_batch_size))
        sums = self.world.sum(np.array(loss_sums(model, batches), dtype=np.float64))
        loss = float(sums[0] / max(sums[1], 1))
        out = {"loss": loss, "ppl": perplexity(loss)}
        if self.task.vocab.level == "char":
            out["bpc"] = loss / math.log(2)
        return out

    def extras(self, model: Any) -> dict[str, Any]:
        n = self.config.sample_length
        return {"sample": sample_text(model, self.task.vocab, n, self.sample_rng)} if n else {}

    def save(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {}
        if self.state is not None:  # (L, B, H) each: every rank's streams, joined
            parts = self.state if isinstance(self.state, tuple) else (self.state,)
            arrays = {f"state/{i}": self.world.concat(to_host(s), axis=1)
                      for i, s in enumerate(parts)}
        return arrays, {"sample_rng": self.sample_rng.bit_generator.state}

    def check(self, ckpt: Any, model: Any) -> int:
        if "sample_rng" in ckpt.meta:  # absent in runs saved before samples were recorded
            validate.check_rng(ckpt.meta["sample_rng"],
                               f"checkpoint {ckpt.json_path} field meta.sample_rng")
        state = model.init_state(self.config.batch_size)
        parts = state if isinstance(state, tuple) else (state,)
        given = ckpt.part("state/")
        if given:  # absent before the first window: training starts from zeros
            validate.check_arrays(ckpt, "state/", given, {str(i): s for i, s in enumerate(parts)})
        return len(self.batches)

    def restore(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        if "sample_rng" in meta:
            self.sample_rng.bit_generator.state = meta["sample_rng"]
        a, b = self.world.part(self.config.batch_size)  # this rank's streams
        state = [v[:, a:b].copy() for k, v in sorted(arrays.items()) if k.startswith("state/")]
        self.state = None if not state else (tuple(state) if len(state) > 1 else state[0])

    def describe(self, directory: Path) -> str:
        cfg = self.config
        corpus = cfg.data or "the bundled tiny-shakespeare"
        return (f"training {cfg.layers}x{cfg.hidden} {cfg.cell.upper()} on {corpus} "
                f"({len(self.task.vocab)} tokens in the vocabulary, "
                f"{len(self.train_ids):,} training tokens) into {directory}")

    def record(self) -> dict[str, Any]:
        return {"vocab_size": len(self.task.vocab)}
