"""``rnnlab sample``: text from a trained language model, printed as it is drawn."""

from __future__ import annotations

import argparse
import itertools
import sys
from typing import Any

import numpy as np

from rnnlab.cli.load import load_run
from rnnlab.data import Vocab
from rnnlab.errors import UsageError
from rnnlab.models import LanguageModel
from rnnlab.models.generate import decoded_pieces, default_prime_ids, sample


def stream(model: LanguageModel, vocab: Vocab, prime: str | None, length: int,
            options: dict[str, Any], rng: np.random.Generator) -> None:
    """Print the prime and ``length`` sampled tokens as they come. Without a prime the sample
    starts from :func:`default_prime_ids`, decoded with the sample (a lone byte may be the
    start of a character)."""
    prime_ids = (default_prime_ids(vocab) if prime is None
                 else [int(i) for i in vocab.encode(prime)])
    sep = " " if vocab.level == "word" else ""
    out = sys.stdout
    sampled = sample(model, prime_ids, length, rng=rng, **options)
    if prime is not None:
        out.write(prime)
    pieces = sampled if prime is not None else itertools.chain(prime_ids, sampled)
    for text in decoded_pieces(vocab, pieces):
        out.write(text if vocab.level != "word" or text == "\n" else sep + text)
        out.flush()
    out.write("\n")


def cmd_sample(args: argparse.Namespace) -> int:
    ckpt = load_run(args.checkpoint, want="lm", device=args.device)
    model, vocab = ckpt.model, ckpt.task.vocab

    def ids_of(tokens: list[str]) -> list[int]:
        return [int(i) for t in tokens for i in vocab.encode(t)]

    stop = ids_of([args.stop]) if args.stop is not None else [None]
    skip = ids_of(args.skip)
    no_prime = args.prime is not None and not ids_of([args.prime])
    if len(stop) != 1 or no_prime or len(set(skip)) >= len(vocab):
        raise UsageError("--prime must hold at least one token, --stop exactly one, and "
                         "--skip must leave some token: change them")
    options = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
               "greedy": args.greedy, "skip_ids": skip, "stop_id": stop[0]}
    stream(model, vocab, args.prime, args.length, options, np.random.default_rng(args.seed))
    return 0
