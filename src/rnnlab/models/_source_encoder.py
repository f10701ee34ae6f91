"""Seq2Seq's encoder: embedding and recurrent stack over a padded, variable-length source batch.

Shapes, with S source steps, N sequences, E the embedding size, H the hidden size, L layers::

    src : (S, N) ids, lengths : (N,) in [1, S]     sequence n is src[:lengths[n], n]
    x   = W_emb[rev(src)]             (S, N, E)    rev: each source reversed within its own
                                                   length (reverse_source), else identity
    y, s = rnn(x, 0, lengths)         (S, N, H)    y zero past each length; s (L, N, H) (and
                                                   c for an LSTM): the state at each
                                                   sequence's own last step

Bidirectional (``bidirectional=True``, PyTorch's layout: y (S, N, 2H), s (2L, N, H) with
row 2k the forward and 2k+1 the backward direction of layer k): the two directions are
summed, so the decoder keeps size H and its layer k starts from both readings::

    keys = y[..., :H] + y[..., H:]                (S, N, H)
    s'_k = s_2k + s_2k+1                          (L, N, H)   h and c alike
    backward: dy = [dkeys, dkeys],  ds_2k = ds_2k+1 = ds'_k

The sum has no parameters and, unlike concatenating, needs no projection to the decoder's
size; each direction's gradient is the merged one.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from rnnlab._array import Array, check_ids
from rnnlab.device import array_module, to_host
from rnnlab.models._cells import CELLS, cell_options
from rnnlab.models._looked_up import backward_looked_up, forward_looked_up, fuses_embedding
from rnnlab.nn import Embedding, Module
from rnnlab.nn.attention import source_mask

State = Any  # h (L, N, H), or (h, c) for an LSTM


def reverse_within(src: Array, lengths: Array) -> Array:
    """Each column's first lengths[n] ids in reverse order, its padding left in place."""
    S = src.shape[0]
    t = np.arange(S)[:, None]  # (S, 1)
    idx = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (S, N)
    return np.take_along_axis(src, idx, axis=0)


def _merge(s: Any) -> Any:
    """(2L, N, H) -> (L, N, H): the two directions of each layer summed (h and c alike)."""
    if isinstance(s, tuple):
        return tuple(_merge(p) for p in s)
    return s.reshape(-1, 2, *s.shape[1:]).sum(axis=1)


def _unmerge(ds: Any) -> Any:
    """The merge's backward: each direction receives the merged gradient, (2L, N, H)."""
    if isinstance(ds, tuple):
        return tuple(_unmerge(p) for p in ds)
    return array_module(ds).repeat(ds, 2, axis=0)


class Encoder(Module):
    """Embedding -> RNN/LSTM/GRU stack over a padded source batch (see the module doc).

    ``keys (S, N, H), state = encoder.forward(src (S, N), lengths (N,))``;
    ``encoder.backward(dkeys or None, dstate)``. Sub-modules ``embedding``, ``rnn``.
    """

    def __init__(self, vocab_size: int, *, cell: str, embed_size: int, hidden_size: int,
                 num_layers: int, reverse_source: bool, bidirectional: bool, dtype: Any,
                 rng: np.random.Generator, peephole: bool = False) -> None:
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(map(repr, CELLS))}, got {cell!r}")
        extra: dict[str, Any] = {"bidirectional": True} if bidirectional else {}
        if peephole:  # cell_options refuses it for another cell than the LSTM
            extra.update(cell_options(cell, peephole=True))
        if bidirectional and "bidirectional" not in inspect.signature(CELLS[cell]).parameters:
            raise ValueError(f"bidirectional=True needs a bidirectional {CELLS[cell].__name__} "
                             f"layer, which this rnnlab does not have yet: use "
                             f"bidirectional=False")
        self.reverse_source, self.bidirectional = bool(reverse_source), bool(bidirectional)
        self.hidden_size = int(hidden_size)
        self.training = True
        self.embedding = Embedding(vocab_size, embed_size, dtype=dtype, rng=rng)
        self.rnn = CELLS[cell](embed_size, hidden_size, num_layers, dtype=dtype, rng=rng,
                               **extra)

    def check(self, src: Any, lengths: Any) -> Array:
        """Raise a ValueError unless src is (S, N) ids and lengths N ints in [1, S]."""
        if getattr(src, "ndim", None) != 2:
            raise ValueError(f"source ids must be an (S, N) integer array, got shape "
                             f"{getattr(src, 'shape', type(src).__name__)}")
        check_ids(src, self.embedding.num_embeddings, "the source vocabulary size")
        source_mask(lengths, *src.shape)  # the lengths' checks
        return to_host(lengths)

    def forward(self, src: Array, lengths: Any) -> tuple[Array, State]:
        lengths = self.check(src, lengths)
        ids = reverse_within(src, lengths) if self.reverse_source else src
        if self.looks_up_inputs():  # the embedding fused into layer 0 (_looked_up.py)
            y, state = forward_looked_up(self.rnn, self.embedding, ids, None, lengths)
        else:
            x = self.embedding.forward(ids)  # (S, N, E)
            y, state = self.rnn.forward(x, None, lengths)  # (S, N, H or 2H)
        if self.bidirectional:
            H = self.hidden_size
            return y[..., :H] + y[..., H:], _merge(state)  # (S, N, H), (L, N, H)
        return y, state

    def backward(self, dkeys: Array | None, dstate: State) -> None:
        """Adds every parameter's gradient; the ids themselves have none."""
        if self.bidirectional:
            dkeys = None if dkeys is None else self.xp.concatenate([dkeys, dkeys], axis=-1)
            dstate = _unmerge(dstate)
        if self.looks_up_inputs():
            backward_looked_up(self.rnn, self.embedding, dkeys, dstate)
            return
        dx, _ = self.rnn.backward(dkeys, dstate)  # (S, N, E)
        self.embedding.backward(dx)

    def looks_up_inputs(self) -> bool:
        """Whether layer 0's input projection is looked up (one-way, small vocabulary)."""
        return not self.bidirectional and fuses_embedding(self.embedding.num_embeddings,
                                                          self.embedding.embedding_dim)
