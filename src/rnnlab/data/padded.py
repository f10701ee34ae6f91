"""Batches of variable-length examples: padding, length buckets, a shuffled split.

A batch of N examples of lengths ``T_n`` is stored time-major, as the layers expect, padded
to the longest (never truncated)::

    x[t, n] = seq_n[t]   for t < T_n,   pad   for T_n <= t < T = max_n T_n     (T, N, ...)
    lengths = (T_0, ..., T_{N-1})                                              (N,)

Bucketing sorts a pool of examples by length before cutting it into batches, so each batch
wastes few padded steps; the batches are then shuffled, so the order still varies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rnnlab.data.corpus import DataError

POOL_BATCHES = 50  # bucketing sorts pools of this many batches' worth of examples


def pad(seqs: Sequence[np.ndarray], pad_value: float = 0) -> tuple[np.ndarray, np.ndarray]:
    """``x (T, N, ...)`` and ``lengths (N,)`` int64 from N arrays of shape ``(T_n, ...)``.

    >>> x, lengths = pad([np.array([1, 2, 3]), np.array([4])])
    >>> x.T.tolist(), lengths.tolist()
    ([[1, 2, 3], [4, 0, 0]], [3, 1])
    """
    if len(seqs) == 0:
        raise ValueError("pad needs at least one sequence")
    arrays = [np.asarray(s) for s in seqs]
    tail = arrays[0].shape[1:]
    if any(a.ndim < 1 or a.shape[1:] != tail for a in arrays):
        raise ValueError(f"sequences must all have shape (T_n, *{tail}), got "
                         f"{[a.shape for a in arrays][:5]}")
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    x = np.full((int(lengths.max()), len(arrays), *tail), pad_value,
                dtype=np.result_type(*arrays))
    for n, a in enumerate(arrays):
        x[: len(a), n] = a
    return x, lengths


def shuffled_split(n: int, valid_fraction: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, valid)`` of a seeded random split of ``n`` examples (not a cut).

    ``round(n * valid_fraction)`` examples (at least one) go to validation; each part is
    returned in increasing order.

    >>> train, valid = shuffled_split(10, 0.2, np.random.default_rng(0))
    >>> len(train), len(valid), sorted(np.concatenate([train, valid]).tolist()) == list(range(10))
    (8, 2, True)
    """
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction!r}")
    k = max(1, round(n * valid_fraction))
    if n - k < 1:
        raise DataError(f"{n} examples cannot be split into training and validation parts: "
                        "pass more examples")
    order = rng.permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])


@dataclass(frozen=True)
class Batch:
    """One padded batch: inputs ``x (T, N, ...)``, ``lengths (N,)``, targets ``y`` (``(N,)``
    per example, or ``(T, N)`` per step), and ``index (N,)``, the examples' positions.

    >>> b = PaddedBatches([np.array([5, 6]), np.array([7])], np.array([1, 0]), 2).batch([1, 0])
    >>> b.x.tolist(), b.lengths.tolist(), b.y.tolist()
    ([[7, 5], [0, 6]], [1, 2], [0, 1])
    """

    x: np.ndarray
    lengths: np.ndarray
    y: np.ndarray
    index: np.ndarray


class PaddedBatches:
    """Padded batches of ``inputs[i]`` with ``targets[i]`` (an int per example, or an array
    per step, padded like the inputs with ``target_pad``).

    Without ``rng``: the examples in order (evaluation). With ``rng`` (training): a fresh
    order each pass; with ``bucket=True`` the pools of ``POOL_BATCHES`` batches are sorted
    by length first, so a batch holds examples of similar length.

    >>> seqs = [np.arange(n) for n in (3, 1, 2)]
    >>> [b.lengths.tolist() for b in PaddedBatches(seqs, np.array([0, 1, 0]), 2)]
    [[3, 1], [2]]
    """

    def __init__(self, inputs: Sequence[np.ndarray], targets: Sequence[np.ndarray] | np.ndarray,
                 batch_size: int, *, rng: np.random.Generator | None = None,
                 bucket: bool = True, target_pad: int = -1) -> None:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets: one each")
        if len(inputs) == 0:
            raise DataError("no examples to batch: pass a file with examples")
        empty = [i for i, s in enumerate(inputs) if len(s) == 0]
        if empty:
            raise DataError(f"example {empty[0]} has no tokens: every example needs at "
                            "least one step")
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.rng, self.bucket = int(batch_size), rng, bool(bucket)
        self.target_pad = target_pad
        self.lengths = np.array([len(s) for s in inputs], dtype=np.int64)
        self.per_step = not all(np.ndim(t) == 0 for t in targets)  # else one per example
        if self.per_step:
            bad = [i for i, y in enumerate(targets) if len(y) != self.lengths[i]]
            if bad:
                raise ValueError(f"example {bad[0]} has {self.lengths[bad[0]]} steps but "
                                 f"{len(targets[bad[0]])} targets: per-step targets need one "
                                 "per step")

    def __len__(self) -> int:
        return -(-len(self.inputs) // self.batch_size)

    def order(self) -> list[np.ndarray]:
        """The example indices of each batch of one pass (a fresh draw each call with rng)."""
        n, B = len(self.inputs), self.batch_size
        if self.rng is None:
            idx = np.arange(n)
            return [idx[s : s + B] for s in range(0, n, B)]
        idx = self.rng.permutation(n)
        if self.bucket:
            pool = B * POOL_BATCHES
            idx = np.concatenate([
                idx[s : s + pool][np.argsort(self.lengths[idx[s : s + pool]], kind="stable")]
                for s in range(0, n, pool)])
        batches = [idx[s : s + B] for s in range(0, n, B)]
        return [batches[i] for i in self.rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[Batch]:
        for index in self.order():
            yield self.batch(index)

    def batch(self, index: np.ndarray) -> Batch:
        """The padded batch of the examples ``index``."""
        x, lengths = pad([self.inputs[i] for i in index])
        if self.per_step:
            y, _ = pad([self.targets[i] for i in index], self.target_pad)  # (T, N)
        else:
            y = np.array([self.targets[i] for i in index])  # (N,) one target per example
        return Batch(x, lengths, y, np.asarray(index))
