"""What the conditioned models share: target masks, decoder states, greedy and beam search.

A decoder is driven one step at a time through a function

    step(prev (B,) ids, state, rows (B,) ints) -> log_probs (B, V), state, weights (B, S) | None

where ``rows`` says which input sequence (source sentence, feature vector) each of the B
hypotheses belongs to: greedy decoding has one hypothesis per sequence (rows = 0..N-1),
beam search K per sentence (rows = n, K times). ``log_probs`` is log softmax of the logits.
The score of a sequence y_1..y_m is its model log-probability, sum_t log p(y_t | y_<t, x).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from rnnlab._array import Array, check_sizes
from rnnlab.device import array_module, device_of, to_device

State = Any  # h (L, N, H), or (h, c) for an LSTM
Step = Callable[[Array, State, Array], tuple[Array, State, Array | None]]


class Decoded(NamedTuple):
    """Decoding results, one entry per input sequence.

    tokens: int arrays, each ending with ``eos_id`` unless ``max_length`` was reached first.
    log_probs: (N,) the model log-probability of each sequence (its EOS included).
    attention: per sequence, the weights (len(tokens[n]), S) that produced each token (its
    source's padding columns are zero), or None for a model without attention.
    """

    tokens: list[Array]
    log_probs: Array
    attention: list[Array] | None


def target_mask(lengths: Any, T: int, N: int) -> Array:
    """(T, N) booleans, True at the real target steps (t < lengths[n]); lengths in [0, T]."""
    lengths = np.asarray(lengths)
    if lengths.shape != (N,) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"target lengths must be {N} integers (one per sequence), got shape "
                         f"{lengths.shape} dtype {lengths.dtype}")
    if lengths.min() < 0 or lengths.max() > T:
        raise ValueError(f"target lengths must lie in [0, T={T}], got min {lengths.min()} "
                         f"max {lengths.max()}")
    return np.arange(T)[:, None] < lengths[None, :]


def log_softmax(z: Array) -> Array:
    """log softmax over the last axis: z - max - log sum exp(z - max)."""
    xp = array_module(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def take_rows(state: State, rows: Array) -> State:
    """The state of hypotheses ``rows`` (host ints): axis 1 (the batch) of h, or of both h
    and c, on the state's device."""
    if isinstance(state, tuple):
        return tuple(take_rows(s, rows) for s in state)
    return state[:, to_device(rows, device_of(state))]


def check_decoding(bos_id: int, eos_id: int, vocab_size: int, max_length: int) -> None:
    check_sizes(max_length=max_length)
    for name, i in (("bos_id", bos_id), ("eos_id", eos_id)):
        if not isinstance(i, (int, np.integer)) or not 0 <= i < vocab_size:
            raise ValueError(f"{name} must be a token id in [0, {vocab_size}), got {i!r}")


def greedy_search(
    step: Step, state: State, N: int, bos_id: int, eos_id: int, max_length: int,
    pick: Callable[[Array], Array],
) -> Decoded:
    """Feed each sequence's own choice ``pick(log_probs (N, V)) -> (N,) ids`` back in."""
    prev, rows = np.full(N, bos_id), np.arange(N)
    done = np.zeros(N, dtype=bool)
    steps, weights, score = [], [], np.zeros(N)  # weights: (N, S) per step, with attention
    for _ in range(max_length):
        logp, state, w = step(prev, state, rows)  # (N, V)
        prev = pick(logp)  # (N,)
        score += np.where(done, 0.0, logp[rows, prev])
        steps.append(prev)
        if w is not None:
            weights.append(w)
        done |= prev == eos_id
        if done.all():
            break
    ids = np.stack(steps)  # (m, N)
    ends = [_length(ids[:, n], eos_id) for n in range(N)]
    tokens = [ids[:m, n] for n, m in enumerate(ends)]
    attention = None
    if weights:
        w_all = np.stack(weights)  # (m, N, S)
        attention = [w_all[:m, n] for n, m in enumerate(ends)]
    return Decoded(tokens, score, attention)


def _length(ids: Array, eos_id: int) -> int:
    """Tokens up to and including the first EOS (all of them without one)."""
    hits = np.flatnonzero(ids == eos_id)
    return int(hits[0]) + 1 if hits.size else len(ids)


def beam_search(
    step: Step, state: State, n: int, bos_id: int, eos_id: int, max_length: int, K: int,
) -> tuple[Array, float, Array | None]:
    """The best sequence for input ``n`` among K hypotheses kept per step; its score, weights.

    Each step extends every live hypothesis by every token and keeps the K best (score =
    the sum of log-probabilities, no length penalty); one ending in EOS is finished and
    leaves the beam. Search stops when no hypothesis is live, when the best finished score
    is at least every live one (scores only fall, so no live one can overtake it), or after
    ``max_length`` tokens (the live ones then count as finished). With K = 1 this is greedy
    search. Not guaranteed to find the most likely sequence, nor one at least as likely as
    greedy's (greedy's prefix may leave the beam).
    """
    prev, score = np.array([bos_id]), np.zeros(1)  # (B,) the live hypotheses, B <= K
    seqs: Array = np.zeros((1, 0), dtype=np.int64)  # (B, t)
    hist: Array | None = None  # (B, t, S) attention weights
    finished: list[tuple[float, Array, Array | None]] = []
    for _ in range(max_length):
        logp, state, w = step(prev, state, np.full(len(prev), n))  # (B, V)
        if w is not None:
            hist = w[:, None] if hist is None else np.concatenate([hist, w[:, None]], axis=1)
        cand = (score[:, None] + logp).reshape(-1)  # (B*V,)
        best = np.argsort(-cand, kind="stable")[:K]  # the K best extensions
        parent, token = np.divmod(best, logp.shape[1])
        seqs = np.concatenate([seqs[parent], token[:, None]], axis=1)
        hist = None if hist is None else hist[parent]
        ended = token == eos_id
        for i in np.flatnonzero(ended):
            finished.append((float(cand[best[i]]), seqs[i], None if hist is None else hist[i]))
        live = ~ended
        prev, score, seqs = token[live], cand[best][live], seqs[live]
        hist = None if hist is None else hist[live]
        state = take_rows(state, parent[live])
        if not live.any() or (finished and max(f[0] for f in finished) >= score.max()):
            break
    else:  # max_length reached: the live hypotheses end there
        for j in range(len(prev)):
            finished.append((float(score[j]), seqs[j], None if hist is None else hist[j]))
    best_score, tokens, weights = max(finished, key=lambda f: f[0])
    return tokens, best_score, weights
