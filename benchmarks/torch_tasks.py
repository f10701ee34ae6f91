"""PyTorch twins of rnnlab's task models, for the benchmark (``task_worker.py``).

Each twin has rnnlab's parameter names (so ``export_params(model)`` loads into it with
``load_state_dict(strict=True)``) and computes rnnlab's equations exactly, as the parity
tests (tests/test_classifier.py, test_tagger.py, test_attention.py) check them:

    classify  e = W_emb[x]; y = packed LSTM(e) (zero past each length, both directions);
              z_n = (1/len_n) sum_{t < len_n} y_{t,n}; logits = fc(z); mean cross-entropy
    tag       the same y; logits_t = fc(y_t); cross-entropy averaged over the real steps
    seq2seq   keys, (h, c) = packed encoder LSTM(W_src[src]) (state at each own last step);
              y = decoder LSTM(W_tgt[tgt_in], (h, c)) over every target step;
              c_t = attention(y_t, keys) (dot: q.k; additive: v.tanh(W_q q + W_k k);
              softmax over the real source steps); logits = output([y, c]); cross-entropy
              over the real target steps (tgt_out is -100, ignored, past each length)

Greedy decoding feeds each row's argmax back, one decoder step at a time, from BOS, until
every row has produced EOS or ``max_length`` tokens (rnnlab's ``_decoding.greedy_search``);
its score is the sum of log-probabilities up to and including each row's first EOS.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def encode_packed(embedding: nn.Embedding, rnn: nn.LSTM, x: torch.Tensor,
                  lengths: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """y (T, N, dirs*H), zero past each length, and the state at each sequence's own end."""
    packed = pack_padded_sequence(embedding(x), lengths, enforce_sorted=False)
    out, state = rnn(packed)
    return pad_packed_sequence(out, total_length=x.shape[0])[0], state


class Encoder(nn.Module):
    """``embedding`` and a (bidirectional) ``rnn``: rnnlab's RecurrentEncoder's layout."""

    def __init__(self, vocab: int, embed: int, hidden: int, bidirectional: bool) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.rnn = nn.LSTM(embed, hidden, bidirectional=bidirectional)


class Classifier(Encoder):
    """SequenceClassifier(pooling="mean", bidirectional=True)'s twin."""

    def __init__(self, vocab: int, embed: int, hidden: int, classes: int) -> None:
        super().__init__(vocab, embed, hidden, True)
        self.fc = nn.Linear(2 * hidden, classes)

    def loss(self, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out, _ = encode_packed(self.embedding, self.rnn, x, lengths)  # (T, N, 2H)
        z = out.sum(0) / lengths.to(out.dtype)[:, None]  # mean over the real steps
        return nn.functional.cross_entropy(self.fc(z), y)


class Tagger(Encoder):
    """SequenceTagger(bidirectional=True)'s twin; padded tags are -100 (ignored)."""

    def __init__(self, vocab: int, embed: int, hidden: int, tags: int) -> None:
        super().__init__(vocab, embed, hidden, True)
        self.fc = nn.Linear(2 * hidden, tags)

    def loss(self, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out, _ = encode_packed(self.embedding, self.rnn, x, lengths)  # (T, N, 2H)
        logits = self.fc(out)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


class Attention(nn.Module):
    """rnnlab.nn.Attention's twin: dot or additive score, softmax over the real steps."""

    def __init__(self, hidden: int, score: str) -> None:
        super().__init__()
        self.score = score
        if score == "additive":
            self.weight_query = nn.Parameter(torch.empty(hidden, hidden))
            self.weight_key = nn.Parameter(torch.empty(hidden, hidden))
            self.v = nn.Parameter(torch.empty(hidden))

    def forward(self, q: torch.Tensor, k: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Context (T, N, H) of queries q (T, N, H) over keys k (S, N, H); real (N, S)."""
        if self.score == "dot":
            s = torch.einsum("tnh,snh->tns", q, k)
        else:
            u = torch.tanh((q @ self.weight_query.T)[:, :, None, :]
                           + (k @ self.weight_key.T).permute(1, 0, 2)[None])  # (T, N, S, A)
            s = u @ self.v
        a = torch.softmax(s.masked_fill(~real[None], float("-inf")), dim=-1)  # (T, N, S)
        return torch.einsum("tns,snh->tnh", a, k)


class Seq2Seq(nn.Module):
    """rnnlab.models.Seq2Seq's twin (one layer, LSTM, no peeky, no reversed source)."""

    def __init__(self, src_vocab: int, tgt_vocab: int, embed: int, hidden: int,
                 attention: str | None) -> None:
        super().__init__()
        self.encoder = Encoder(src_vocab, embed, hidden, False)
        self.embedding = nn.Embedding(tgt_vocab, embed)
        self.decoder = nn.LSTM(embed, hidden)
        self.attention = None if attention is None else Attention(hidden, attention)
        self.output = nn.Linear(2 * hidden if attention else hidden, tgt_vocab)

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[Any, Any, Any]:
        """Keys (S, N, H), the encoder's final state, and the real source steps (N, S)."""
        keys, state = encode_packed(self.encoder.embedding, self.encoder.rnn, src, lengths)
        real = torch.arange(src.shape[0])[None, :] < lengths[:, None]
        return keys, state, real

    def decode(self, ids: torch.Tensor, state: Any, keys: Any, real: Any) -> tuple[Any, Any]:
        """Logits (T, N, V) of target ids (T, N) from ``state``, and the final state."""
        y, state = self.decoder(self.embedding(ids), state)  # (T, N, H)
        if self.attention is not None:
            y = torch.cat([y, self.attention(y, keys, real)], dim=-1)  # [y_t, c_t]
        return self.output(y), state

    def loss(self, src: torch.Tensor, lengths: torch.Tensor, tgt_in: torch.Tensor,
             tgt_out: torch.Tensor) -> torch.Tensor:
        keys, state, real = self.encode(src, lengths)
        logits, _ = self.decode(tgt_in, state, keys, real)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           tgt_out.reshape(-1))

    @torch.inference_mode()
    def greedy(self, src: torch.Tensor, lengths: torch.Tensor, bos: int, eos: int,
               max_length: int) -> tuple[int, float]:
        """Decoded tokens (each row up to its first EOS) and their summed log-probability."""
        keys, state, real = self.encode(src, lengths)
        N = src.shape[1]
        prev = torch.full((1, N), bos, dtype=torch.long)
        done = torch.zeros(N, dtype=torch.bool)
        tokens, score = 0, torch.zeros(N, dtype=torch.float64)
        for _ in range(max_length):
            logits, state = self.decode(prev, state, keys, real)
            logp = torch.log_softmax(logits[0], dim=-1)  # (N, V)
            best, prev_ids = logp.max(dim=-1)
            score += torch.where(done, 0.0, best.double())
            tokens += int((~done).sum())
            done |= prev_ids == eos
            prev = prev_ids[None]
            if bool(done.all()):
                break
        return tokens, float(score.sum())


def build(cfg: dict[str, Any], params: dict[str, np.ndarray]) -> nn.Module:
    """The twin of the configuration's rnnlab model, with its weights ``params``."""
    E, H = cfg["embed"], cfg["hidden"]
    if cfg["task"] == "classify":
        net: nn.Module = Classifier(cfg["vocab"], E, H, cfg["classes"])
    elif cfg["task"] == "tag":
        net = Tagger(cfg["vocab"], E, H, cfg["classes"])
    else:
        net = Seq2Seq(cfg["vocab"], cfg["tgt_vocab"], E, H, cfg["attention"])
    net.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()}, strict=True)
    return net
