"""``--task seq2seq``: ``source<TAB>target`` lines; a Seq2Seq; exact match, token accuracy.

The target vocabulary is the targets' tokens, then BOS = its size and EOS = its size + 1.
Metrics decode greedily (no teacher) up to ``max_length`` tokens (default: twice the
longest training target, plus one for EOS); per-token accuracy compares the decoded ids
with the target's ids and its EOS, position by position. The main metric (the ``best``
checkpoint's) is exact match.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.data.padded import Batch, PaddedBatches, pad
from rnnlab.data.tasks import Seq2SeqExamples, encode_texts, read_seq2seq, task_vocab
from rnnlab.data.vocab import Vocab
from rnnlab.errors import DataError
from rnnlab.metrics import exact_match
from rnnlab.models import Seq2Seq
from rnnlab.tasks.base import Encoded, LossSum, check_nonempty, in_order, json_fields, model_kwargs
from rnnlab.tasks.sequence import SequenceTask
from rnnlab.training.config import TrainConfig

MAX_LENGTH = 100_000  # the most tokens a checkpoint's decoding bound may ask for


class Seq2SeqTask(SequenceTask):
    """Source and target vocabularies of a seq2seq run, and its decoding bound."""

    name, main_metric = "seq2seq", "exact_match"

    def __init__(self, source: Vocab, target: Vocab, max_length: int) -> None:
        self.source, self.target, self.max_length = source, target, int(max_length)
        self.bos, self.eos = len(target), len(target) + 1

    @classmethod
    def build(cls, examples: Seq2SeqExamples, cfg: TrainConfig) -> Seq2SeqTask:
        kw: dict[str, Any] = {"max_size": cfg.max_vocab, "min_freq": cfg.min_freq}
        source = task_vocab(examples.sources, cfg.level, **kw)
        target = task_vocab(examples.targets, cfg.level, **kw)
        longest = max(len(ids) for ids in encode_texts(examples.targets, target))
        return cls(source, target, 2 * longest + 1)

    read = staticmethod(read_seq2seq)

    def encode(self, examples: Seq2SeqExamples) -> Encoded:
        enc = Encoded(examples.path, encode_texts(examples.sources, self.source),
                      encode_texts(examples.targets, self.target), examples.lines)
        check_nonempty(enc)
        check_nonempty(Encoded(enc.path, enc.targets, None, enc.lines))
        return enc

    def vocabularies(self) -> list[Vocab]:
        """The input vocabulary first."""
        return [self.source, self.target]

    def outputs(self) -> int:
        return len(self.target) + 2

    def new_model(self, cfg: TrainConfig, rng: np.random.Generator) -> Seq2Seq:
        return Seq2Seq(len(self.source), self.outputs(), reverse_source=cfg.reverse_source,
                       peeky=cfg.peeky,
                       attention=None if cfg.attention == "none" else cfg.attention,
                       **model_kwargs(cfg), rng=rng)

    def batches(self, enc: Encoded, batch_size: int,
                rng: np.random.Generator | None = None) -> PaddedBatches:
        """Padded sources; each batch's ``y`` is its examples' indices into the targets."""
        return PaddedBatches(enc.inputs, np.arange(len(enc)), batch_size, rng=rng)

    def teacher(self, targets: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``tgt_in = [BOS, y]``, ``tgt_out = [y, EOS]`` (T, N) and the lengths (N,)."""
        tgt_in, lengths = pad([np.concatenate([[self.bos], t]) for t in targets])
        tgt_out, _ = pad([np.concatenate([t, [self.eos]]) for t in targets])
        return tgt_in, tgt_out, lengths

    def loss(self, model: Any, batch: Batch, enc: Encoded) -> float:
        tgt_in, tgt_out, lengths = self.teacher([enc.targets[i] for i in batch.y])
        return float(model.loss(batch.x, batch.lengths, tgt_in, tgt_out, lengths))

    def decode(self, model: Any, batch: Batch, max_length: int | None,
               beam: int | None = None) -> Any:
        kw = {"bos_id": self.bos, "eos_id": self.eos,
              "max_length": max_length or self.max_length}
        if beam:
            return model.beam_search(batch.x, batch.lengths, beam_size=beam, **kw)
        return model.greedy(batch.x, batch.lengths, **kw)

    def infer(self, model: Any, enc: Encoded, batch_size: int,
              max_length: int | None = None) -> tuple[list[Any], LossSum]:
        """Each example's greedy decoding (ids), and the summed loss (teacher forcing)."""
        loss = LossSum()
        pred: list[Any] = [[] for _ in range(len(enc))]
        for b in self.batches(enc, batch_size):
            self.loss(model, b, enc)
            loss.add(model.criterion)
            decoded = self.decode(model, b, max_length).tokens
            for n, i in enumerate(b.index):
                pred[i] = decoded[n].tolist()
        return pred, loss

    def score(self, enc: Encoded, pred: list[Any], loss: LossSum) -> dict[str, Any]:
        """Loss (teacher forcing), exact match and per-token accuracy (greedy decoding)."""
        gold = [[*t.tolist(), self.eos] for t in enc.targets]
        right = sum(g == w for got, want in zip(pred, gold, strict=True)
                    for g, w in zip(got, want, strict=False))
        steps = sum(len(want) for want in gold)
        return {"loss": loss.mean, "exact_match": exact_match(gold, pred),
                "token_accuracy": right / steps, "examples": len(enc)}

    def text(self, ids: Any) -> str:
        """The target text of decoded ids (BOS and EOS dropped)."""
        kept = [int(i) for i in ids if int(i) < len(self.target)]
        sep = " " if self.target.level == "word" else ""
        return sep.join(self.target.decode([i]) for i in kept)

    def predict(self, model: Any, texts: list[str], *, batch_size: int = 64,
                max_length: int | None = None, beam: int | None = None) -> list[tuple[str, dict]]:
        """One ``(target, {"target", "log_prob", "attention"})`` per source; attention:
        (output tokens, source tokens) weights, or None without attention."""
        inputs = encode_texts(texts, self.source)
        out: list[tuple[str, dict]] = [("", {})] * len(texts)
        for b in in_order(inputs, batch_size):
            found = self.decode(model, b, max_length, beam)
            for n, i in enumerate(b.index):
                target = self.text(found.tokens[n])
                weights = None if found.attention is None else \
                    found.attention[n][:, : len(inputs[i])].tolist()
                out[i] = (target, {"target": target, "log_prob": float(found.log_probs[n]),
                                   "attention": weights})
        return out

    def to_json(self) -> dict[str, Any]:
        return {"task": self.name, "source": self.source.to_json(),
                "target": self.target.to_json(), "max_length": self.max_length}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Seq2SeqTask:
        source, target, max_length = json_fields(d, "source", "target", "max_length")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not (
                1 <= max_length <= MAX_LENGTH):
            raise DataError(f"max_length: expected an integer in [1, {MAX_LENGTH}], got "
                            f"{max_length!r:.60}: pass the vocabularies training wrote")
        return cls(Vocab.from_json(source), Vocab.from_json(target), max_length)
