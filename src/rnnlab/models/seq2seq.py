"""Sequence to sequence (many-to-many, unaligned): an encoder reads the source, a decoder writes.

Sutskever, Vinyals & Le (2014); DLFS2 ch. 7-8 (reversed source, peeky decoder, attention).
Shapes, with S source and T target steps, N sequences, E the embedding size, H the hidden
size, L the layers, V the target vocabulary::

    keys, s_enc = encoder(src, src_lengths)    (S, N, H), (L, N, H)  see _source_encoder.py
    p      = s_enc.h[L-1]                      (N, H)   the source's summary (peeky only)
    x_t    = [W_dec[tgt_in_t], p]              (T, N, E + H)   peeky; else W_dec[tgt_in_t]
    y, _   = decoder(x, s_enc)                 (T, N, H)   starts from the encoder's state
    c, a   = attention(y, keys, src_lengths)   (T, N, H), (T, N, S)   (attention only)
    z_t    = [y_t, c_t, p]                     (T, N, H_out)   c and p where enabled
    logits = z W_out^T + b_out                 (T, N, V)
    loss   = mean over real target steps of -log softmax(logits)[tgt_out]

With a small vocabulary (V <= 2E and V <= 256) and no peek, the decoder's embedding and
its layer 0's input projection are one (V, gates*H) table whose rows are looked up
(``_looked_up.py``; the encoder's likewise when one-way): the same numbers, fewer products.

Teacher forcing: tgt_in = [BOS, y_1, ..., y_{m-1}] and tgt_out = [y_1, ..., y_m] with
y_m = EOS; steps past tgt_lengths[n] are masked out of the loss.

Backward mirrors it: dz splits into dy, dc, dp; the attention returns dq (added to dy) and
dkeys; the decoder returns dx and ds_0; dp collects its share from every step of z and of
x and joins ds_0's top h; the encoder receives dkeys and ds_0.

Decoding (no teacher): ``greedy`` and ``beam_search`` feed each chosen token back, one
decoder step at a time through the same code as training (see _decoding.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab._array import Array, check_float_dtype, check_sizes
from rnnlab.device import Device, to_device, to_host
from rnnlab.models._cells import CELLS, cell_options
from rnnlab.models._config import checked_from_config
from rnnlab.models._decoding import (
    Decoded,
    beam_search,
    check_decoding,
    greedy_search,
    log_softmax,
    take_rows,
    target_mask,
)
from rnnlab.models._looked_up import backward_looked_up, forward_looked_up, fuses_embedding
from rnnlab.models._source_encoder import Encoder
from rnnlab.nn import Embedding, Linear, Module, SoftmaxCrossEntropy
from rnnlab.nn.attention import Attention

State = Any  # h (L, N, H), or (h, c) for an LSTM
CONFIG_KEYS = ("src_vocab_size", "tgt_vocab_size", "cell", "embed_size", "hidden_size",
               "num_layers", "reverse_source", "peeky", "attention", "bidirectional", "dtype",
               "peephole")


class Seq2Seq(Module):
    """Encoder-decoder with options ``reverse_source``, ``peeky``, ``attention``, ``bidirectional``.

    Sub-modules: ``encoder`` (``encoder.embedding``, ``encoder.rnn``), ``embedding`` and
    ``decoder`` (the target side), ``attention`` (None, or ``Attention(H, "dot" |
    "additive")``), ``output`` (Linear to the target vocabulary) and ``criterion``.
    Every sequence needs at least one source token (attention has nothing to read
    otherwise). A bidirectional encoder's two directions are summed (``_source_encoder.py``).
    ``peephole=True`` (``cell="lstm"`` only): encoder and decoder are LSTMs with peepholes.

    Examples::

        >>> import numpy as np
        >>> model = Seq2Seq(5, 6, cell="gru", embed_size=4, hidden_size=8,
        ...                 attention="dot", rng=np.random.default_rng(0))
        >>> src, lengths = np.array([[1, 2], [3, 4], [2, 0]]), np.array([3, 2])
        >>> tgt_in, tgt_out = np.array([[0, 0], [4, 5]]), np.array([[4, 5], [1, 1]])
        >>> loss = model.loss(src, lengths, tgt_in, tgt_out, np.array([2, 2]))
        >>> model.backward_loss()
        >>> out = model.greedy(src, lengths, bos_id=0, eos_id=1, max_length=4)
        >>> len(out.tokens), out.attention[1].shape[1]
        (2, 3)
    """

    _forward_caches = ("_enc",)

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        *,
        cell: str = "lstm",
        embed_size: int = 16,
        hidden_size: int = 64,
        num_layers: int = 1,
        reverse_source: bool = False,
        peeky: bool = False,
        attention: str | None = None,
        bidirectional: bool = False,
        dtype: DTypeLike = np.float32,
        peephole: bool = False,
        device: str | Device = "cpu",
        rng: np.random.Generator,
    ) -> None:
        peep = cell_options(cell, peephole=True) if peephole else {}  # LSTM only
        check_sizes(src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size,
                    embed_size=embed_size, hidden_size=hidden_size, num_layers=num_layers)
        if attention not in (None, "dot", "additive"):
            raise ValueError(f"attention must be None, 'dot' or 'additive', got {attention!r}")
        self.dtype = check_float_dtype(dtype)
        self.cell, self.peeky, self.training = cell, bool(peeky), True
        self.encoder = Encoder(src_vocab_size, cell=cell, embed_size=embed_size,
                               hidden_size=hidden_size, num_layers=num_layers,
                               reverse_source=reverse_source, bidirectional=bidirectional,
                               dtype=self.dtype, rng=rng, peephole=bool(peephole))
        self.peephole = bool(peephole)
        H, E, peek = hidden_size, embed_size, hidden_size if peeky else 0
        self.embedding = Embedding(tgt_vocab_size, E, dtype=self.dtype, rng=rng)
        self.decoder = CELLS[cell](E + peek, H, num_layers, dtype=self.dtype, rng=rng, **peep)
        self.attention = None if attention is None else Attention(
            H, attention, dtype=self.dtype, rng=rng)
        out_in = H + (H if attention else 0) + peek
        self.output = Linear(out_in, tgt_vocab_size, dtype=self.dtype, rng=rng)
        self.criterion = SoftmaxCrossEntropy()
        self._enc: dict[str, Any] | None = None
        self._place(device)

    # ----------------------------------------------------------------- forward
    def forward(self, src: Array, src_lengths: Any, tgt_in: Array) -> Array:
        """``logits (T, N, V) = model.forward(src (S, N), src_lengths (N,), tgt_in (T, N))``."""
        enc = self._encode(src, src_lengths)
        self._check_targets(tgt_in, src.shape[1])
        logits, _, _ = self._decode(tgt_in, enc["state"], enc["keys"], enc["lengths"],
                                    enc["summary"])
        return logits

    def _encode(self, src: Array, src_lengths: Any) -> dict[str, Any]:
        keys, state = self.encoder.forward(src, src_lengths)  # (S, N, H)
        h = state[0] if isinstance(state, tuple) else state  # (L, N, H)
        self._enc = {"keys": keys, "state": state, "lengths": to_host(src_lengths),
                     "summary": h[-1] if self.peeky else None}
        return self._enc

    def _check_targets(self, ids: Any, N: int) -> None:
        if getattr(ids, "ndim", None) != 2 or ids.shape[1] != N:
            raise ValueError(f"target ids must be a (T, N={N}) integer array (N: the source "
                             f"batch), got shape {getattr(ids, 'shape', type(ids).__name__)}")

    def _decode(self, ids: Array, state: State, keys: Array, lengths: Array,
                summary: Array | None, table: Array | None = None
                ) -> tuple[Array, State, Array | None]:
        """Logits (T, B, V), the decoder's final state and the attention weights (T, B, S).

        table: the decoder's input table (``looks_up_inputs``), made here if None."""
        xp = self.xp
        if self.looks_up_inputs():  # the embedding fused into layer 0 (_looked_up.py)
            y, state = forward_looked_up(self.decoder, self.embedding, ids, state, table=table)
            peek = None
        else:
            x = self.embedding.forward(ids)  # (T, B, E)
            peek = None if summary is None else xp.broadcast_to(summary, (len(ids), *summary.shape))
            if peek is not None:
                x = xp.concatenate([x, peek], axis=-1)  # (T, B, E + H)
            y, state = self.decoder.forward(x, state)  # (T, B, H)
        parts, weights = [y], None
        if self.attention is not None:
            context, weights = self.attention.forward(y, keys, lengths)  # (T, B, H)
            parts.append(context)
        if peek is not None:
            parts.append(peek)
        z = xp.concatenate(parts, axis=-1) if len(parts) > 1 else y  # (T, B, H_out)
        return self.output.forward(z), state, weights

    def looks_up_inputs(self) -> bool:
        """Whether the decoder's layer 0 looks its input projection up (a small target
        vocabulary, not peeky: the peek joins the input)."""
        return not self.peeky and fuses_embedding(self.embedding.num_embeddings,
                                                  self.embedding.embedding_dim)

    # ---------------------------------------------------------------- backward
    def backward(self, dlogits: Array) -> None:
        """Adds every parameter's gradient (the ids have none)."""
        if self._enc is None:
            raise ValueError("backward called before forward")
        H = self.decoder.hidden_size
        dz = self.output.backward(dlogits)  # (T, N, H_out)
        dy, dkeys, off = dz[..., :H], None, H
        if self.attention is not None:
            dq, dkeys = self.attention.backward(dz[..., H:2 * H])  # (T, N, H), (S, N, H)
            dy, off = dy + dq, 2 * H
        if self.looks_up_inputs():
            dstate0 = backward_looked_up(self.decoder, self.embedding, dy)
            self.encoder.backward(dkeys, dstate0)
            return
        dx, dstate0 = self.decoder.backward(dy, None)  # (T, N, E [+ H])
        E = self.embedding.embedding_dim
        self.embedding.backward(self.xp.ascontiguousarray(dx[..., :E]))
        if self.peeky:
            dsummary = dz[..., off:].sum(axis=0) + dx[..., E:].sum(axis=0)  # (N, H)
            dh0 = dstate0[0] if isinstance(dstate0, tuple) else dstate0  # (L, N, H)
            dh0[-1] += dsummary
        self.encoder.backward(dkeys, dstate0)

    # --------------------------------------------------------------- training
    def loss(self, src: Array, src_lengths: Any, tgt_in: Array, tgt_out: Array,
             tgt_lengths: Any) -> float:
        """Mean cross-entropy over the real target steps (t < tgt_lengths[n])."""
        logits = self.forward(src, src_lengths, tgt_in)
        return self.criterion.forward(logits, tgt_out, target_mask(tgt_lengths, *tgt_in.shape))

    def backward_loss(self) -> None:
        """Backpropagate the last :meth:`loss` (once)."""
        self.backward(self.criterion.backward())

    # --------------------------------------------------------------- decoding
    def _step_fn(self, enc: dict[str, Any]) -> Any:
        keys, lengths, summary = enc["keys"], enc["lengths"], enc["summary"]
        table = (self.decoder.input_table(self.embedding.weight.value)  # made once
                 if self.looks_up_inputs() else None)

        def step(prev: Array, state: State, rows: Array) -> tuple[Array, State, Array | None]:
            on = to_device(rows, self.device)  # host rows; log-probs and weights to the host
            logits, state, w = self._decode(prev[None], state, keys[:, on], lengths[rows],
                                            None if summary is None else summary[on], table)
            return to_host(log_softmax(logits[0])), state, None if w is None else to_host(w[0])
        return step

    def greedy(self, src: Array, src_lengths: Any, *, bos_id: int, eos_id: int,
               max_length: int) -> Decoded:
        """The most likely next token at every step, for every source sequence (``Decoded``)."""
        check_decoding(bos_id, eos_id, self.output.out_features, max_length)
        enc = self._encode(src, src_lengths)
        return greedy_search(self._step_fn(enc), enc["state"], src.shape[1], bos_id, eos_id,
                             max_length, lambda logp: logp.argmax(axis=1))

    def beam_search(self, src: Array, src_lengths: Any, *, bos_id: int, eos_id: int,
                    max_length: int, beam_size: int) -> Decoded:
        """Beam search (``_decoding.beam_search``), one source sequence at a time."""
        check_decoding(bos_id, eos_id, self.output.out_features, max_length)
        check_sizes(beam_size=beam_size)
        enc = self._encode(src, src_lengths)
        step = self._step_fn(enc)
        found = [beam_search(step, take_rows(enc["state"], np.array([n])), n, bos_id, eos_id,
                             max_length, beam_size) for n in range(src.shape[1])]
        attention = None if self.attention is None else [w for _, _, w in found if w is not None]
        return Decoded([f[0] for f in found], np.array([f[1] for f in found]), attention)

    def sequence_log_probs(self, src: Array, src_lengths: Any, sequences: list[Array], *,
                           bos_id: int) -> Array:
        """(N,) log p(sequences[n] | src_n), by teacher forcing (BOS first, no EOS added)."""
        N = src.shape[1]
        if len(sequences) != N:
            raise ValueError(f"need one sequence per source ({N}), got {len(sequences)}")
        lengths = np.array([len(s) for s in sequences])
        tgt = np.full((max(lengths.max(), 1) + 1, N), bos_id)  # (T + 1, N): BOS, y_1, ...
        for n, s in enumerate(sequences):
            tgt[1:1 + len(s), n] = s
        logp = to_host(log_softmax(self.forward(src, src_lengths, tgt[:-1])))  # (T, N, V)
        picked = np.take_along_axis(logp, tgt[1:, :, None], axis=2)[..., 0]  # (T, N)
        return np.where(target_mask(lengths, *picked.shape), picked, 0.0).sum(axis=0)

    # ---------------------------------------------------------- configuration
    def config(self) -> dict[str, Any]:
        """The constructor's arguments (bar ``rng``), JSON-serialisable."""
        enc = self.encoder
        return {
            "src_vocab_size": enc.embedding.num_embeddings,
            "tgt_vocab_size": self.embedding.num_embeddings, "cell": self.cell,
            "embed_size": self.embedding.embedding_dim, "hidden_size": self.decoder.hidden_size,
            "num_layers": self.decoder.num_layers, "reverse_source": enc.reverse_source,
            "peeky": self.peeky, "attention": None if self.attention is None
            else self.attention.score, "bidirectional": enc.bidirectional,
            "dtype": self.dtype.name, "peephole": self.peephole,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], rng: np.random.Generator) -> Seq2Seq:
        """A freshly initialised model of the configuration ``cfg`` (from :meth:`config`)."""
        return checked_from_config(cls, cfg, CONFIG_KEYS, ("src_vocab_size", "tgt_vocab_size"),
                                   rng)

