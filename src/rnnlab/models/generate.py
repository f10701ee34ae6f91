"""Sampling text from a trained language model, one token at a time.

Given the logits z (V,) of the next token, the distribution sampled from is built in
four steps (each optional), the order of common practice (Holtzman et al. 2020)::

    z_v = -inf for v in skip_ids             never emitted
    p   = softmax(z / temperature)           T < 1 sharpens, T > 1 flattens
    top-k: keep the k most probable tokens    (Fan et al. 2018)
    top-p: keep the smallest set of most probable tokens whose mass is >= p (nucleus)
    p   = p / sum(p)

and one token is drawn from p by inverting its cumulative sum with one uniform number:
``v = min {v : cumsum(p)_v > u * sum(p)}``, u ~ U[0, 1). ``greedy`` takes ``argmax p``.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from rnnlab._array import Array
from rnnlab.data import Vocab
from rnnlab.device import to_host
from rnnlab.models import LanguageModel


def sample(
    model: LanguageModel,
    prime_ids: list[int],
    length: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    skip_ids: Iterable[int] = (),
    stop_id: int | None = None,
    rng: np.random.Generator,
) -> Iterator[int]:
    """Yield up to ``length`` token ids continuing ``prime_ids``, each as soon as drawn.

    ``model`` is a :class:`rnnlab.models.LanguageModel`; it runs in eval mode (no dropout)
    at batch 1 and its previous mode is restored when the iterator finishes. The prime is
    read in one forward pass, then each token costs one step. Stops early, without
    yielding it, when ``stop_id`` is drawn. The same ``rng`` state gives the same tokens.
    The arguments are checked here, before the first token is asked for.

    >>> model = LanguageModel(6, embed_size=4, hidden_size=8, rng=np.random.default_rng(0))
    >>> ids = list(sample(model, [1, 2], 5, top_k=3, rng=np.random.default_rng(0)))
    >>> len(ids), all(0 <= i < 6 for i in ids)
    (5, True)
    >>> ids == list(sample(model, [1, 2], 5, top_k=3, rng=np.random.default_rng(0)))
    True
    """
    V = int(model.vocab_size)
    prime = np.asarray(list(prime_ids), dtype=np.int64)
    if prime.size == 0:
        raise ValueError("prime must contain at least one token")
    if prime.min() < 0 or prime.max() >= V:
        raise ValueError(f"prime ids must lie in [0, {V}) (the vocabulary size)")
    _check_options(length, temperature, top_k, top_p)
    skip = np.unique(np.asarray(list(skip_ids), dtype=np.int64))
    if skip.size and (skip[0] < 0 or skip[-1] >= V):
        raise ValueError(f"skip_ids must lie in [0, {V}) (the vocabulary size)")
    if skip.size == V:
        raise ValueError("skip_ids excludes every token of the vocabulary: nothing to sample")
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator, e.g. np.random.default_rng(0)")
    options = dict(temperature=temperature, top_k=top_k, top_p=top_p, skip=skip)
    return _generate(model, prime, length, greedy, stop_id, rng, options)


def _check_options(length: int, temperature: float, top_k: int | None,
                   top_p: float | None) -> None:
    if not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"length must be a non-negative integer, got {length!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] or None, got {top_p!r}")


def _generate(model: LanguageModel, prime: Array, length: int, greedy: bool, stop_id: int | None,
              rng: np.random.Generator, options: dict[str, Any]) -> Iterator[int]:
    was_training = model.training
    model.eval()
    try:
        if length == 0:
            return
        # Small vocabulary: look up each token's first-layer input projection (see
        # LanguageModel.input_table) rather than multiply by W_ih0 at every token.
        # Built once here whenever the forward would fuse (else it rebuilds it every token).
        table = model.input_table() if model.looks_up_inputs() else None  # (V, gates*H)
        logits, state = model.forward_last(prime.reshape(-1, 1), table=table)  # (1, V)
        token = np.empty((1, 1), dtype=np.int64)  # the fed-back id; reused every step
        probs = np.empty(logits.shape[-1], dtype=np.float64)  # (V,) reused every step
        for i in range(length):
            next_probs(to_host(logits[0]), out=probs, **options)  # one (V,) read per token
            v = int(np.argmax(probs)) if greedy else draw(probs, rng)
            if v == stop_id:
                return
            yield v
            if i + 1 < length:  # the last token needs no step of its own
                token[0, 0] = v
                logits, state = model.forward_last(token, state, table=table)
    finally:
        model.train(was_training)


def next_probs(
    logits: Array,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    skip: Array | None = None,
    out: Array | None = None,
) -> Array:
    """The next-token distribution (V,) in float64 from logits (V,): see the module doc.

    Computed in ``out`` if given (no allocation of a new (V,) array for it).
    """
    p = np.empty(logits.shape, dtype=np.float64) if out is None else out
    np.copyto(p, logits)  # casts float32 logits up: the cumulative sums below need float64
    if temperature != 1.0:
        p /= temperature
    p -= p.max() if skip is None or not skip.size else _max_except(p, skip)
    np.exp(p, out=p)  # every exponent <= 0 apart from skipped ones, zeroed next
    if skip is not None and skip.size:
        p[skip] = 0.0
    if top_k is not None and top_k < p.size:
        p[np.argpartition(p, -top_k)[:-top_k]] = 0.0  # all but the k largest
    if top_p is not None and top_p < 1.0:
        order = np.argsort(p)[::-1]  # most probable first
        mass = np.cumsum(p[order])
        keep = int(np.searchsorted(mass, top_p * mass[-1], side="left")) + 1
        p[order[keep:]] = 0.0
    p /= p.sum()
    return p


def _max_except(p: Array, skip: Array) -> float:
    """max p over the tokens not skipped (so the largest kept exponent is exactly 0)."""
    saved = p[skip]
    p[skip] = -np.inf
    m = float(np.max(p))
    p[skip] = saved
    return m


def draw(probs: Array, rng: np.random.Generator) -> int:
    """One index v ~ probs (V,), by inverse transform; a zero-probability index is never drawn.

    ``cumsum(p)_v > u * total`` with ``side="right"`` skips every v whose cumulative sum
    equals its predecessor's, i.e. every p_v = 0.
    """
    cdf = probs.cumsum()
    v = int(cdf.searchsorted(rng.random() * cdf[-1], side="right"))
    return v if v < cdf.size else int(np.argmax(cdf))  # u * total rounded up to total


def default_prime_ids(vocab: Vocab) -> list[int]:
    """The ids a sample starts from when no prime is given: a newline (word level: ``<eos>``),
    else the vocabulary's first token. Ids, not text: a byte vocabulary's token need not be a
    whole character (a file of "é" has the bytes 0xc3 and 0xa9 and no newline)."""
    if vocab.level == "word":
        return [vocab.eos_id if vocab.eos_id is not None else 0]
    return [vocab.tokens.index("\n")] if "\n" in vocab.tokens else [0]


def decoded_pieces(vocab: Vocab, ids: Iterable[int]) -> Iterator[str]:
    """The text of each id as it comes; a byte vocabulary's ids go through an incremental UTF-8
    decoder, so that a character split over several bytes is printed whole once complete
    (an invalid sequence becomes U+FFFD, as :meth:`Vocab.decode` does)."""
    if vocab.level != "byte":
        yield from (vocab.decode([i]) for i in ids)
        return
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for i in ids:
        yield utf8.decode(vocab.tokens[i].encode("latin-1"))  # byte b is the token chr(b)
    yield utf8.decode(b"", final=True)


def sample_text(model: LanguageModel, vocab: Vocab, length: int, rng: np.random.Generator,
                prime: str | None = None) -> str:
    """``length`` sampled tokens after ``prime`` (default :func:`default_prime_ids`) as text,
    word-level tokens joined by spaces (the prime is not included)."""
    prime_ids = (default_prime_ids(vocab) if prime is None
                 else [int(i) for i in vocab.encode(prime)])
    pieces = decoded_pieces(vocab, sample(model, prime_ids, length, rng=rng))
    return " ".join(pieces) if vocab.level == "word" else "".join(pieces)
