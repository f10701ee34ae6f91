"""``--task classify``: ``label<TAB>text`` lines; a SequenceClassifier; accuracy, macro-F1.

Its main metric (the ``best`` checkpoint's) is validation accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.data.labels import Labels
from rnnlab.data.padded import Batch, PaddedBatches
from rnnlab.data.tasks import (
    ClassifyExamples,
    encode_classify,
    encode_texts,
    read_classify,
    task_vocab,
)
from rnnlab.data.vocab import Vocab
from rnnlab.metrics import accuracy, confusion_matrix, macro_f1
from rnnlab.models import SequenceClassifier
from rnnlab.models.classifier import softmax
from rnnlab.tasks.base import Encoded, LossSum, check_nonempty, in_order, json_fields, model_kwargs
from rnnlab.tasks.sequence import SequenceTask
from rnnlab.training.config import TrainConfig


class ClassifyTask(SequenceTask):
    """Input vocabulary and class names of a classify run."""

    name, main_metric = "classify", "accuracy"

    def __init__(self, vocab: Vocab, labels: Labels) -> None:
        self.vocab, self.labels = vocab, labels

    @classmethod
    def build(cls, examples: ClassifyExamples, cfg: TrainConfig) -> ClassifyTask:
        vocab = task_vocab(examples.texts, cfg.level, max_size=cfg.max_vocab,
                           min_freq=cfg.min_freq)
        return cls(vocab, Labels.build(examples.labels))

    read = staticmethod(read_classify)

    def encode(self, examples: ClassifyExamples) -> Encoded:
        x, y = encode_classify(examples, self.vocab, self.labels)
        enc = Encoded(examples.path, x, y, examples.lines)
        check_nonempty(enc)
        return enc

    def vocabularies(self) -> list[Vocab]:
        """The input vocabulary first."""
        return [self.vocab]

    def outputs(self) -> int:
        return len(self.labels)

    def new_model(self, cfg: TrainConfig, rng: np.random.Generator) -> SequenceClassifier:
        return SequenceClassifier(len(self.labels), vocab_size=len(self.vocab), pooling=cfg.pooling,
                                  dropout=cfg.dropout, init_range=cfg.init_range,
                                  **model_kwargs(cfg), rng=rng)

    def batches(self, enc: Encoded, batch_size: int,
                rng: np.random.Generator | None = None) -> PaddedBatches:
        return PaddedBatches(enc.inputs, enc.targets, batch_size, rng=rng)

    def loss(self, model: Any, batch: Batch, enc: Encoded) -> float:
        return float(model.loss(batch.x, batch.y, batch.lengths))

    def infer(self, model: Any, enc: Encoded, batch_size: int,
              max_length: int | None = None) -> tuple[list[Any], LossSum]:
        """Each example's predicted class id, and the summed loss."""
        pred, loss = np.zeros(len(enc), dtype=np.int64), LossSum()
        for b in self.batches(enc, batch_size):
            logits = model.forward(b.x, b.lengths)  # (N, C)
            model.criterion.forward(logits, b.y)
            loss.add(model.criterion)
            pred[b.index] = logits.argmax(axis=-1)
        return pred.tolist(), loss

    def score(self, enc: Encoded, predicted: list[Any], loss: LossSum) -> dict[str, Any]:
        """Loss, accuracy, macro-F1 and the confusion matrix (rows: true, columns: predicted)."""
        y, pred = enc.targets, np.array(predicted, dtype=np.int64)
        matrix = confusion_matrix(y, pred, num_classes=len(self.labels))
        return {"loss": loss.mean, "accuracy": accuracy(y, pred), "macro_f1": macro_f1(y, pred),
                "confusion_matrix": {"labels": self.labels.names, "matrix": matrix.tolist()},
                "examples": len(enc)}

    def predict(self, model: Any, texts: list[str], *, batch_size: int = 64,
                max_length: int | None = None, beam: int | None = None) -> list[tuple[str, dict]]:
        """One ``(label, {"label", "probabilities"})`` per text."""
        inputs = encode_texts(texts, self.vocab)
        out: list[tuple[str, dict]] = [("", {})] * len(texts)
        for b in in_order(inputs, batch_size):
            probs = softmax(model.forward(b.x, b.lengths))  # (N, C)
            for n, i in enumerate(b.index):
                label = self.labels.names[int(probs[n].argmax())]
                out[i] = (label, {"label": label, "probabilities": dict(
                    zip(self.labels.names, map(float, probs[n]), strict=True))})
        return out

    def to_json(self) -> dict[str, Any]:
        return {"task": self.name, "vocab": self.vocab.to_json(), "labels": self.labels.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ClassifyTask:
        vocab, labels = json_fields(d, "vocab", "labels")
        return cls(Vocab.from_json(vocab), Labels.from_json(labels))
