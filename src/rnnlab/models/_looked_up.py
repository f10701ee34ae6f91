"""The embedding fused into layer 0 for small vocabularies: when, and the two calls that do it.

``rnnlab.nn._input_table`` is the layer's side (``input_table``, ``forward_rows``,
``backward_rows``); this is a model's. An embedding feeding a one-way recurrent layer,
x_t = W_emb[id_t], is followed by a linear projection, so both fit in one table::

    table = W_emb W_ih^T + b                 (V, gates*H)    one (V, E) product
    G0    = table[ids]                       (T, N, gates*H) instead of x W_ih^T
    dtable[v] = sum over ids = v of dG0      (V, gates*H)    add_rows_at
    dW_ih += dtable^T W_emb,  dW_emb += dtable W_ih

That replaces three (T*N, E) products and the embedding's scatter-add with (V, E) ones:
worth it while V <= 2E and V <= 256 (``fuses_embedding``). Every model with such an input
uses these: ``LanguageModel`` (characters), ``Seq2Seq``'s encoder and decoder (small
vocabularies of symbols).
"""

from __future__ import annotations

from typing import Any

from rnnlab._array import Array
from rnnlab.nn import Embedding
from rnnlab.nn.embedding import ONE_HOT_MAX, add_rows_at
from rnnlab.nn.recurrent import Recurrent


def fuses_embedding(vocab_size: int, embed_size: int) -> bool:
    """Whether the embedding fuses into layer 0 (the module doc's table): V <= 2E, V <= 256."""
    return vocab_size <= min(2 * embed_size, ONE_HOT_MAX)


def forward_looked_up(rnn: Recurrent, embedding: Embedding, ids: Array, state: Any = None,
                      lengths: Any = None, table: Array | None = None) -> tuple[Any, Any]:
    """``rnn.forward(embedding.forward(ids), state, lengths)`` with layer 0's input
    projection looked up; ``table``: ``rnn.input_table(W_emb)`` if already made."""
    if table is None:
        table = rnn.input_table(embedding.weight.value)  # (V, gates*H)
    return rnn.forward_rows(table, ids, state, lengths)


def backward_looked_up(rnn: Recurrent, embedding: Embedding, dy: Any, dstate: Any = None,
                       ids: Array | None = None, **kw: Any) -> Any:
    """The backward of ``forward_looked_up`` (``kw``: ``truncate``, ``keep``): adds the
    layer's and the embedding's gradients; returns the initial state's gradient. ``ids``:
    the looked-up ids, as uploaded (default: the last ``forward_rows``' own)."""
    ids = rnn.looked_up_ids() if ids is None else ids
    drows, dstate0 = rnn._backward_rows(dy, dstate, **kw)  # (T, N, gates*H), read at once
    dtable = rnn.xp.zeros((embedding.num_embeddings, drows.shape[-1]), drows.dtype)
    add_rows_at(dtable, ids, drows)  # per token: the sum of its rows' gradients
    W_emb = embedding.weight
    W_emb.grad += rnn.input_table_backward(W_emb.value, dtable)  # (V, E)
    return dstate0
