"""What the seq2seq examples share: a character codec, padded batches, training, exact match.

Imported by ``examples/addition.py`` and ``examples/dates.py`` (run from anywhere: the
script's own folder is on Python's path).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnlab.models import Seq2Seq
from rnnlab.optim import Adam, clip_grad_norm
from rnnlab.optim.schedule import Schedule


class Codec:
    """Characters <-> ids. Source ids index ``src_chars``; target ids ``tgt_chars``, then
    BOS = len(tgt_chars) and EOS = len(tgt_chars) + 1."""

    def __init__(self, src_chars: str, tgt_chars: str) -> None:
        self.src_chars, self.tgt_chars = src_chars, tgt_chars
        self.src_index = {c: i for i, c in enumerate(src_chars)}
        self.tgt_index = {c: i for i, c in enumerate(tgt_chars)}
        self.bos, self.eos = len(tgt_chars), len(tgt_chars) + 1
        self.src_vocab, self.tgt_vocab = len(src_chars), len(tgt_chars) + 2

    def source(self, text: str) -> list[int]:
        return [self.src_index[c] for c in text]

    def target(self, text: str) -> list[int]:
        return [self.tgt_index[c] for c in text]

    def text(self, ids: Sequence[int]) -> str:
        return "".join(self.tgt_chars[i] for i in ids if i < len(self.tgt_chars))


def pad(seqs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(T, N) ids (column n: seqs[n], then zeros) and the lengths (N,)."""
    lengths = np.array([len(s) for s in seqs])
    out = np.zeros((lengths.max(), len(seqs)), dtype=np.int64)
    for n, s in enumerate(seqs):
        out[:len(s), n] = s
    return out, lengths


def train_batch(codec: Codec, sources: list[list[int]], targets: list[list[int]]) -> tuple:
    """src, src_lengths, tgt_in = [BOS, y], tgt_out = [y, EOS], tgt_lengths."""
    src, src_lengths = pad(sources)
    tgt_in, tgt_lengths = pad([[codec.bos, *t] for t in targets])
    tgt_out, _ = pad([[*t, codec.eos] for t in targets])
    return src, src_lengths, tgt_in, tgt_out, tgt_lengths


def fit(model: Seq2Seq, codec: Codec, sources: list[list[int]], targets: list[list[int]], *,
        epochs: int, batch_size: int, lr: float, rng: np.random.Generator,
        decay_after: int | None = None, lr_decay: float = 0.5) -> list[float]:
    """Adam with gradient clipping at norm 5; each epoch's mean training loss. With
    ``decay_after``, the lr is multiplied by ``lr_decay`` after every epoch from that one on
    (the CLI's ``--schedule zaremba --decay-after K --lr-decay D``)."""
    opt = Adam(model.named_params(), lr=lr)
    schedule = Schedule("constant" if decay_after is None else "zaremba", opt,
                        lr_decay=lr_decay, decay_after=decay_after or 0)
    means = []
    for epoch in range(epochs):
        order, losses = rng.permutation(len(sources)), []
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            losses.append(model.loss(*train_batch(codec, [sources[j] for j in idx],
                                                  [targets[j] for j in idx])))
            model.zero_grad()
            model.backward_loss()
            clip_grad_norm(model.named_params(), 5.0)
            opt.step()
        means.append(float(np.mean(losses)))
        schedule.epoch_end(epoch + 1, means[-1])
    return means


def write_pairs(path: str | Path, pairs: Sequence[tuple[str, str]]) -> None:
    """The seq2seq task's TSV (``source<TAB>target`` per line), for the command line."""
    Path(path).write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")


def exact_match(model: Seq2Seq, codec: Codec, sources: list[list[int]], answers: list[str],
                max_length: int, batch_size: int = 1000) -> tuple[float, list[str]]:
    """Fraction of greedy decodings equal to the answer; and the decoded strings."""
    decoded: list[str] = []
    for i in range(0, len(sources), batch_size):
        src, lengths = pad(sources[i:i + batch_size])
        out = model.greedy(src, lengths, bos_id=codec.bos, eos_id=codec.eos,
                           max_length=max_length)
        decoded += [codec.text(t) for t in out.tokens]
    return float(np.mean([d == a for d, a in zip(decoded, answers, strict=True)])), decoded


def report(metrics: dict, started: float) -> None:
    """The one JSON line of metrics every example ends with."""
    print(json.dumps({**metrics, "wall_s": round(time.perf_counter() - started, 1)}))
