"""Seq2Seq learns addition from examples: "16+75" -> "91" (DLFS2 ch. 7 and 8).

50,000 distinct generated pairs, operands 0..999; 10% held out (quick: 5,000 pairs with
operands 0..99). Four variants, as in the book: a plain LSTM encoder-decoder, the source
reversed, reversed + peeky decoder, and reversed + (dot) attention. Each is trained with
Adam (full: lr 4e-3, multiplied by 0.7 after every epoch from the 15th on, gradient norm
clipped at 5; the variants run in parallel processes, ``--jobs``) and scored by held-out
exact match (greedy decoding, the whole answer
right) beside the baseline of always giving the commonest training answer. The pairs are
written as the seq2seq task's TSV (``--out``), and each variant prints (and its metrics carry
as ``"cli"``) the ``rnnlab train --task seq2seq`` command that trains it on that file. Ends
with one JSON line of metrics.

    python examples/addition.py --quick          # under a minute: fewer pairs and epochs
    python examples/addition.py                  # the full setting (all four variants)
    python examples/addition.py --variant peeky  # one variant
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from seq2seq_common import Codec, exact_match, fit, report, write_pairs
from task_loop import cli_command, show_command
from threadpoolctl import threadpool_limits

from rnnlab.models import Seq2Seq

VARIANTS = {
    "plain": {},
    "reversed": {"reverse_source": True},
    "peeky": {"reverse_source": True, "peeky": True},
    "attention": {"reverse_source": True, "attention": "dot"},
}
FULL = {"pairs": 50_000, "digits": 3, "epochs": 25, "hidden": 128, "batch": 128, "lr": 4e-3,
        "decay_after": 15, "lr_decay": 0.7}
# quick: operands up to 2 digits (5,000 of the 10,000 sums), so that a minute shows learning
QUICK = {"pairs": 5_000, "digits": 2, "epochs": 6, "hidden": 64, "batch": 32, "lr": 1e-2,
         "decay_after": None, "lr_decay": 0.5}


def make_pairs(n: int, digits: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """n distinct questions "a+b" (a, b uniform in 0..10^digits - 1) with their answers."""
    seen: dict[str, str] = {}
    while len(seen) < n:
        a, b = (int(v) for v in rng.integers(0, 10**digits, 2))
        seen.setdefault(f"{a}+{b}", str(a + b))
    return list(seen.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small setting, under a minute")
    parser.add_argument("--variant", choices=[*VARIANTS, "all"], default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="addition.tsv", help="where the TSV data file is written")
    parser.add_argument("--jobs", type=int, default=2,
                        help="variants trained at once, one process each (the results do not "
                             "depend on it: each variant has its own seeded generator)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads per process (1: fastest for these small matrices)")
    args = parser.parse_args()
    started = time.perf_counter()
    s = QUICK if args.quick else FULL
    pairs = make_pairs(s["pairs"], s["digits"], np.random.default_rng(args.seed))
    write_pairs(args.out, pairs)
    n_test = len(pairs) // 10
    test, train = pairs[:n_test], pairs[n_test:]
    answers = [a for _, a in train]
    common = max(set(answers), key=answers.count)  # baseline: always the commonest answer
    metrics: dict = {"setting": "quick" if args.quick else "full", "train": len(train),
                     "test": len(test), "digits": s["digits"],
                     "baseline": round(float(np.mean([a == common for _, a in test])), 4)}
    names = list(VARIANTS) if args.variant == "all" else [args.variant]
    jobs = [(name, s, args, train, test) for name in names]
    if args.jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(args.jobs, len(jobs))) as pool:
            results = list(pool.map(train_variant, *zip(*jobs, strict=True)))
    else:
        results = [train_variant(*job) for job in jobs]
    report({**metrics, **dict(zip(names, results, strict=True))}, started)


def train_variant(name: str, s: dict, args: argparse.Namespace, train: list[tuple[str, str]],
                  test: list[tuple[str, str]]) -> dict:
    """Train one variant (its generator seeded by (seed, variant)) and score it."""
    cli = cli_command("seq2seq", args.out, level="char", cell="lstm", layers=1, embed=16,
                      hidden=s["hidden"], **VARIANTS[name], batch_size=s["batch"], lr=s["lr"],
                      schedule=s["decay_after"] and "zaremba", decay_after=s["decay_after"],
                      lr_decay=s["decay_after"] and s["lr_decay"], epochs=s["epochs"],
                      time_budget=3600, seed=args.seed, out=f"runs/addition-{name}")
    show_command(cli)
    rng = np.random.default_rng([args.seed, list(VARIANTS).index(name)])
    codec = Codec("0123456789+", "0123456789")
    cpu = time.process_time()
    with threadpool_limits(args.threads):
        model = Seq2Seq(codec.src_vocab, codec.tgt_vocab, cell="lstm", embed_size=16,
                        hidden_size=s["hidden"], **VARIANTS[name], rng=rng)
        losses = fit(model, codec, [codec.source(q) for q, _ in train],
                     [codec.target(a) for _, a in train], epochs=s["epochs"],
                     batch_size=s["batch"], lr=s["lr"], rng=rng,
                     decay_after=s["decay_after"], lr_decay=s["lr_decay"])
        acc, _ = exact_match(model, codec, [codec.source(q) for q, _ in test],
                             [a for _, a in test], max_length=s["digits"] + 3)
    return {"exact_match": round(acc, 4), "final_loss": round(losses[-1], 4),
            "cpu_s": round(time.process_time() - cpu, 1), "cli": cli}


if __name__ == "__main__":
    main()
