"""``--task tag``: CoNLL files; a SequenceTagger; per-token accuracy and entity F1.

The tokens are CoNLL's first column, so the input vocabulary is a word one (``--level
word``, the default for this task). When every tag is ``O``, ``B-X`` or ``I-X`` (BIO/IOB2)
the entity-level precision, recall and F1 are counted as conlleval counts them, and F1 is
the main metric (the ``best`` checkpoint's); otherwise per-token accuracy is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.data.labels import Labels
from rnnlab.data.padded import Batch, PaddedBatches
from rnnlab.data.tasks import TagExamples, encode_tagged, encode_tokens, read_tagged
from rnnlab.data.tasks import task_vocab as _task_vocab
from rnnlab.data.vocab import Vocab
from rnnlab.errors import UsageError
from rnnlab.metrics import entity_scores
from rnnlab.models import SequenceTagger
from rnnlab.tasks.base import Encoded, LossSum, in_order, json_fields, model_kwargs, steps_of
from rnnlab.tasks.sequence import SequenceTask
from rnnlab.training.config import TrainConfig


def is_bio(names: list[str]) -> bool:
    """Whether the tag set is BIO/IOB2: ``O``, ``B-type`` and ``I-type`` only, some B.

    >>> is_bio(["B-PER", "I-PER", "O"]), is_bio(["NN", "VB"])
    (True, False)
    """
    ok = all(n == "O" or (n[:2] in ("B-", "I-") and len(n) > 2) for n in names)
    return ok and any(n.startswith("B-") for n in names)


class TagTask(SequenceTask):
    """Word vocabulary and tag names of a tagging run."""

    name = "tag"

    def __init__(self, vocab: Vocab, labels: Labels) -> None:
        self.vocab, self.labels = vocab, labels
        self.bio = is_bio(labels.names)
        self.main_metric = "f1" if self.bio else "token_accuracy"

    @classmethod
    def build(cls, examples: TagExamples, cfg: TrainConfig) -> TagTask:
        if cfg.level != "word":
            raise UsageError(f"--task tag reads CoNLL tokens, one per line: --level word, not "
                             f"{cfg.level}")
        vocab = _task_vocab([" ".join(s) for s in examples.tokens], "word",
                            max_size=cfg.max_vocab, min_freq=cfg.min_freq)
        return cls(vocab, Labels.build(t for s in examples.tags for t in s))

    read = staticmethod(read_tagged)

    def encode(self, examples: TagExamples) -> Encoded:
        x, y = encode_tagged(examples, self.vocab, self.labels)
        return Encoded(examples.path, x, y, examples.lines)

    def vocabularies(self) -> list[Vocab]:
        """The input vocabulary first."""
        return [self.vocab]

    def outputs(self) -> int:
        return len(self.labels)

    def new_model(self, cfg: TrainConfig, rng: np.random.Generator) -> SequenceTagger:
        return SequenceTagger(len(self.labels), vocab_size=len(self.vocab), dropout=cfg.dropout,
                              init_range=cfg.init_range, **model_kwargs(cfg), rng=rng)

    def batches(self, enc: Encoded, batch_size: int,
                rng: np.random.Generator | None = None) -> PaddedBatches:
        return PaddedBatches(enc.inputs, enc.targets, batch_size, rng=rng)

    def loss(self, model: Any, batch: Batch, enc: Encoded) -> float:
        return float(model.loss(batch.x, batch.y, batch.lengths))

    def _tags(self, model: Any, inputs: list[np.ndarray], batch_size: int,
              targets: Any = None) -> tuple[list[np.ndarray], LossSum]:
        """Predicted tag ids per sentence, and the loss when ``targets`` are given."""
        out: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(inputs)
        loss = LossSum()
        batches = (self.batches(Encoded("", inputs, targets, []), batch_size)
                   if targets is not None else in_order(inputs, batch_size))
        for b in batches:
            logits = model.forward(b.x, b.lengths)  # (T, N, C)
            if targets is not None:
                model.criterion.forward(logits, b.y, steps_of(b))
                loss.add(model.criterion)
            pred = logits.argmax(axis=-1)  # (T, N)
            for n, i in enumerate(b.index):
                out[i] = pred[: b.lengths[n], n]
        return out, loss

    def infer(self, model: Any, enc: Encoded, batch_size: int,
              max_length: int | None = None) -> tuple[list[Any], LossSum]:
        """Each sentence's predicted tag ids, and the summed loss."""
        pred, loss = self._tags(model, enc.inputs, batch_size, enc.targets)
        return list(pred), loss

    def score(self, enc: Encoded, pred: list[Any], loss: LossSum) -> dict[str, Any]:
        """Loss, per-token accuracy, and entity precision/recall/F1 for BIO tags."""
        y, p = np.concatenate(enc.targets), np.concatenate(pred)
        result: dict[str, Any] = {"loss": loss.mean, "token_accuracy": float(np.mean(y == p)),
                                  "tokens": int(y.size), "sentences": len(enc)}
        if self.bio:
            scores = entity_scores([self.labels.decode(t) for t in enc.targets],
                                   [self.labels.decode(t) for t in pred])
            result.update({k: scores[k] for k in ("precision", "recall", "f1")})
        return result

    def predict(self, model: Any, texts: list[str], *, batch_size: int = 64,
                max_length: int | None = None, beam: int | None = None) -> list[tuple[str, dict]]:
        """One ``("tag tag ...", {"tokens", "tags"})`` per line of space-separated tokens."""
        sentences = [t.split() for t in texts]
        pred, _ = self._tags(model, encode_tokens(sentences, self.vocab), batch_size)
        out = []
        for tokens, ids in zip(sentences, pred, strict=True):
            tags = self.labels.decode(ids)
            out.append((" ".join(tags), {"tokens": tokens, "tags": tags}))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"task": self.name, "vocab": self.vocab.to_json(), "labels": self.labels.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TagTask:
        vocab, labels = json_fields(d, "vocab", "labels")
        return cls(Vocab.from_json(vocab), Labels.from_json(labels))
