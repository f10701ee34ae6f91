"""Splitting a token stream and cutting it into truncated-BPTT batches.

Truncated backpropagation through time (Zaremba et al. 2014; PyTorch's word_language_model)
reads the corpus as ``B`` long parallel streams and walks down them ``bptt`` steps at a time.
The recurrent state at the end of one window is the state at the start of the next, so each
stream must continue exactly where the previous window stopped::

    ids (L,)  ->  data (n, B),  n = L // B,  column b = ids[b*n : (b+1)*n]

    window i:  x = data[s : e]          (T, B)   s = i*bptt, e = min(s + bptt, n - 1)
               y = data[s+1 : e+1]      (T, B)   the next token of each stream

The ``L - n*B`` tokens at the end are dropped; the last row of ``data`` is only a target.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from rnnlab.errors import DataError


def split_ids(ids: np.ndarray, fractions: Sequence[float]) -> list[np.ndarray]:
    """Contiguous, in-order parts of ``ids`` (views, not copies) of the given fractions.

    ``(0.9, 0.05, 0.05)`` is char-rnn's train/val/test split, ``(0.9, 0.1)`` nanoGPT's.
    Part ``k`` ends at ``int(L * (f_0 + ... + f_k))``; when the fractions sum to 1 the
    last part takes the rounding remainder, else the tail beyond their sum is left out.
    """
    if len(fractions) == 0 or any(not 0 < f <= 1 for f in fractions):
        raise ValueError(f"fractions must be in (0, 1], got {tuple(fractions)}")
    total = math.fsum(fractions)
    if total > 1 + 1e-9:
        raise ValueError(f"fractions must sum to at most 1, got {tuple(fractions)} = {total}")
    n = len(ids)
    ends = [int(n * math.fsum(fractions[: k + 1])) for k in range(len(fractions))]
    if total > 1 - 1e-9:
        ends[-1] = n
    parts = [ids[start:end] for start, end in zip([0] + ends[:-1], ends, strict=True)]
    for k, part in enumerate(parts):
        if len(part) == 0:
            raise DataError(
                f"part {k} of a {n}-token corpus split {tuple(fractions)} is empty: "
                "use a longer file or a larger fraction"
            )
    return parts


class BPTTBatches:
    """Windows ``(x, y)`` of ``bptt`` time steps over ``batch_size`` parallel streams.

    ``data`` is a ``(n, batch_size)`` view of ``ids`` (no copy, so a memory-mapped corpus
    stays on disk); each window is copied out as int64 ``(T, batch_size)``, time-major as
    the layers expect, with ``T = bptt`` except possibly in the last window. The state of
    stream ``b`` after window ``i`` is the right start for stream ``b`` of window ``i + 1``.

    >>> batches = BPTTBatches(np.arange(10), batch_size=2, bptt=3)
    >>> batches.data.T  # stream b is ids[5*b : 5*b + 5]
    array([[0, 1, 2, 3, 4],
           [5, 6, 7, 8, 9]])
    >>> [x.T.tolist() for x, y in batches]  # windows of 3 steps, then the rest
    [[[0, 1, 2], [5, 6, 7]], [[3], [8]]]
    >>> batches[0][1].T.tolist()  # the targets: each input's next token
    [[1, 2, 3], [6, 7, 8]]
    """

    def __init__(self, ids: np.ndarray, batch_size: int, bptt: int) -> None:
        for name, value in (("batch_size", batch_size), ("bptt", bptt)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        ids = np.asarray(ids) if not isinstance(ids, np.ndarray) else ids
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise ValueError(f"ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
        n = len(ids) // batch_size
        if n < 2:  # one row would be inputs without targets
            raise DataError(
                f"corpus of {len(ids)} tokens is too short for batch size {batch_size}: "
                "use a smaller --batch-size or a longer file"
            )
        self.batch_size, self.bptt = int(batch_size), int(bptt)
        # Row-major (B, n) makes each stream a contiguous run of the corpus; .T is a view.
        self.data: np.ndarray = ids[: n * batch_size].reshape(batch_size, n).T

    def __len__(self) -> int:
        """``ceil((n - 1) / bptt)``: every row but the last is an input exactly once."""
        return -(-(len(self.data) - 1) // self.bptt)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Window ``i`` (negative counts from the end): inputs and targets, ``(T, B)`` int64."""
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"window index must be an integer, got {type(i).__name__}")
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        start = (int(i) % len(self)) * self.bptt
        end = min(start + self.bptt, len(self.data) - 1)
        x = self.data[start:end].astype(np.int64)  # astype copies: contiguous, writable
        y = self.data[start + 1 : end + 1].astype(np.int64)
        return x, y

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self.iter_from(0)

    def iter_from(self, i: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Windows ``i, i + 1, ..., len - 1``: resume an epoch after window ``i - 1``."""
        if not 0 <= i <= len(self):
            raise ValueError(f"start window must be in [0, {len(self)}], got {i}")
        return (self[j] for j in range(i, len(self)))

    def streams(self, a: int, b: int) -> BPTTBatches:
        """The same windows restricted to streams ``[a, b)`` (a view: one rank's share).

        >>> BPTTBatches(np.arange(12), batch_size=4, bptt=2).streams(2, 4)[0][0].T.tolist()
        [[6, 7], [9, 10]]
        """
        if not 0 <= a < b <= self.batch_size:
            raise ValueError(f"streams [{a}, {b}) out of range for {self.batch_size} streams")
        part = object.__new__(BPTTBatches)
        part.batch_size, part.bptt, part.data = b - a, self.bptt, self.data[:, a:b]
        return part

    @property
    def tokens_per_epoch(self) -> int:
        """Targets predicted in one epoch, ``(n - 1) * batch_size`` (perplexity's count)."""
        return (len(self.data) - 1) * self.batch_size

    def __repr__(self) -> str:
        n, b = self.data.shape
        return f"BPTTBatches(streams={b}, steps={n}, bptt={self.bptt}, windows={len(self)})"
