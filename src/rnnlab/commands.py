"""What ``rnnlab train``, ``sample``, ``eval`` and ``gradcheck`` do (the parser is in cli.py).

Each ``cmd_<name>(args)`` takes the parsed flags and returns the exit status. A problem the
user can fix is raised as an :class:`rnnlab.errors.RnnlabError` (a subclass of it), which
the command line prints as one line with exit status 2. This module never imports cli.py.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab import validate
from rnnlab.config import RESUMABLE, TrainConfig, flag
from rnnlab.data import Vocab, encode_file, read_text
from rnnlab.errors import CheckpointError, DataError, RunFolderError, UsageError
from rnnlab.evaluation import evaluate_loss
from rnnlab.generate import decoded_pieces, default_prime_ids, sample
from rnnlab.gradcheck_suite import cases
from rnnlab.metrics import describe_perplexity, json_line, perplexity
from rnnlab.models import LanguageModel
from rnnlab.run import Run
from rnnlab.train import train


def threads(n: int | None) -> Any:
    """A context limiting BLAS to ``n`` threads (None: as it is)."""
    if n is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n)


def resume_run(open_run: Callable[[str], Any], directory: str, given: dict[str, Any]) -> Any:
    """The run in ``directory`` opened by ``open_run`` (Run.resume, TaskRun.resume), with the
    flags that may change on resume (RESUMABLE) applied; any other given flag is an error."""
    fixed = sorted(set(given) - set(RESUMABLE))
    if fixed:
        raise UsageError(f"{flag(fixed[0])} cannot change when resuming (only "
                         f"{', '.join(map(flag, RESUMABLE))} can): "
                         "drop it, or start a new run with --out")
    run = open_run(directory)
    for k in RESUMABLE:
        if k in given:
            setattr(run.config, k, given[k])
    run.trim_metrics()
    print(f"resuming {run.directory} at epoch {run.progress.epoch + 1}, "
          f"step {run.progress.step}", file=sys.stderr)
    return run


def cmd_train(args: argparse.Namespace) -> int:
    given = {k: getattr(args, k) for k in TrainConfig.flags() if getattr(args, k) is not None}
    if args.resume:
        run = resume_run(Run.resume, args.resume, given)
    else:
        cfg = TrainConfig(**given)
        cfg.check()
        run = Run.create(cfg, force=args.force)
        corpus = cfg.data or "the bundled tiny-shakespeare"
        print(f"training {cfg.layers}x{cfg.hidden} {cfg.cell.upper()} on {corpus} "
              f"({len(run.vocab)} tokens in the vocabulary, "
              f"{len(run.train_ids):,} training tokens) into {run.directory}", file=sys.stderr)
    with threads(run.config.threads):
        prog = train(run, progress_bar=not args.no_progress)
    best = run.progress.best_val
    extra = f", {best / math.log(2):.4f} bits/char" if run.level == "char" else ""
    print(f"done: {prog.step} steps, {prog.epoch} epochs, {prog.elapsed_s:.0f} s; best "
          f"validation loss {best:.4f} nats/token (perplexity {describe_perplexity(best)}"
          f"{extra})")
    if not args.no_sample:
        print("sample:")
        _stream(run.model, run.vocab, None, 400, {}, np.random.default_rng(0))
    return 0


def load_trained(path: str) -> tuple[LanguageModel, Vocab, dict[str, Any]]:
    """The model and vocabulary of a run folder's best checkpoint (else its last), checked by
    :func:`rnnlab.validate.read_checkpoint`; the meta's config completed with defaults."""
    directory = Path(path)
    if not directory.is_dir():
        raise RunFolderError(f"no run folder at {directory}: train one with "
                             "rnnlab train, or pass --checkpoint RUN")
    name = "best" if (directory / "best.json").exists() else "last"
    ckpt = validate.read_checkpoint(directory, name)  # the checks every command shares
    ckpt.model.eval()
    return ckpt.model, ckpt.vocab, {**ckpt.meta, "config": ckpt.config.to_json()}


def _stream(model: LanguageModel, vocab: Vocab, prime: str | None, length: int,
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
    model, vocab, _ = load_trained(args.checkpoint)

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
    _stream(model, vocab, args.prime, args.length, options, np.random.default_rng(args.seed))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    model, vocab, meta = load_trained(args.checkpoint)
    read_text(args.data)  # the clear errors for a missing, empty or binary file
    ids = encode_file(args.data, vocab)
    # One stream: every token but the first is scored.
    try:
        loss, count = evaluate_loss(model, ids, batch_size=1, bptt=meta["config"]["bptt"])
    except DataError as e:  # e.g. too short: one token
        raise DataError(f"data file {args.data!r}: {e}") from None
    if math.isnan(loss):  # finite parameters (checked) whose products overflow
        raise CheckpointError(f"the loss on {args.data} is NaN: the checkpoint's parameters are "
                              "finite but overflow when multiplied; retrain, or resume from an "
                              "earlier checkpoint")
    result: dict[str, Any] = {"loss": loss, "perplexity": perplexity(loss), "tokens": count}
    if vocab.level in ("char", "byte"):
        result["bits_per_char"] = loss / math.log(2)
    if args.json:
        print(json_line(result))
    else:
        shown = {**result, "perplexity": describe_perplexity(loss)}
        print("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in shown.items()))
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    all_cases = cases()
    chosen = [n for n in all_cases if not args.only or args.only.lower() in n.lower()]
    if not chosen:
        raise UsageError(f"no gradient-check case matches {args.only!r}; run without --only")
    width = max(len(n) for n in chosen)
    # the array column fits the longest parameter name, "weight_ih_l1_reverse" (20)
    print(f"{'case':<{width}}  {'max rel. error':>14}  {'worst array':<20}  ok")
    failed = 0
    for name in chosen:
        errors = all_cases[name]()
        worst = max(errors, key=errors.__getitem__)
        ok = errors[worst] <= args.tol
        failed += not ok
        print(f"{name:<{width}}  {errors[worst]:>14.2e}  {worst:<20}  {'yes' if ok else 'NO'}")
    print(f"{len(chosen) - failed} of {len(chosen)} cases within {args.tol:g}")
    return 1 if failed else 0
