"""Seq2Seq with attention normalises dates: "Tuesday, September 27, 1994" -> "1994-09-27".

DLFS2 ch. 8's task, with the dates generated here (datetime, days 1900-01-01..2099-12-31)
in ten human formats. Every format names the month in words and writes the year with four
digits, so each input has exactly one reading (no 09/27 vs 27/09, no '94). Trains an LSTM
encoder-decoder with (dot) attention, scores held-out exact match and saves the attention
heatmap of one held-out date as a PNG. The training pairs are written as the seq2seq task's
TSV (``--out``) and the example prints (its JSON line carries as ``"cli"``) the
``rnnlab train --task seq2seq`` command that trains the same model on that file. Ends with
one JSON line of metrics.

    python examples/dates.py --quick         # under a minute
    python examples/dates.py                 # the full setting: 1,000 held-out dates
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import os
import time
from pathlib import Path

import numpy as np
from seq2seq_common import Codec, exact_match, fit, pad, report, write_pairs
from task_loop import cli_command, show_command
from threadpoolctl import threadpool_limits

from rnnlab.models import Seq2Seq

FORMATS = (
    "{Month} {d}, {Y}", "{Mon} {d}, {Y}", "{d} {Month} {Y}", "{d} {Mon} {Y}",
    "{Weekday}, {Month} {d}, {Y}", "{Wkd}, {d} {Mon} {Y}", "{d}{th} of {Month}, {Y}",
    "{MONTH} {d} {Y}", "{mon}. {dd}, {Y}", "{Y} {Month} {d}",
)
SRC_CHARS = " ,.0123456789" + "abcdefghijklmnopqrstuvwxyz" + "abcdefghijklmnopqrstuvwxyz".upper()
FULL = {"train": 50_000, "test": 1_000, "epochs": 4, "hidden": 128, "batch": 128, "lr": 5e-3}
QUICK = {"train": 6_000, "test": 500, "epochs": 2, "hidden": 64, "batch": 64, "lr": 1e-2}
START, DAYS = dt.date(1900, 1, 1), (dt.date(2099, 12, 31) - dt.date(1900, 1, 1)).days + 1


def ordinal(d: int) -> str:
    return "th" if 10 <= d % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")


def human(date: dt.date, fmt: str) -> str:
    month, weekday = calendar.month_name[date.month], calendar.day_name[date.weekday()]
    return fmt.format(Month=month, Mon=month[:3], MONTH=month.upper(), mon=month[:3].lower(),
                      Weekday=weekday, Wkd=weekday[:3], d=date.day, dd=f"{date.day:02d}",
                      th=ordinal(date.day), Y=date.year)


def make_data(n: int, rng: np.random.Generator, exclude: set[dt.date] = frozenset()
              ) -> list[tuple[str, str, dt.date]]:
    """n (human text, ISO text, date) triples of distinct dates not in ``exclude``."""
    out: dict[dt.date, tuple[str, str, dt.date]] = {}
    while len(out) < n:
        date = START + dt.timedelta(days=int(rng.integers(DAYS)))
        if date not in exclude and date not in out:
            fmt = FORMATS[int(rng.integers(len(FORMATS)))]
            out[date] = (human(date, fmt), date.isoformat(), date)
    return list(out.values())


def save_heatmap(model: Seq2Seq, codec: Codec, text: str, path: Path) -> None:
    """The attention weights (output characters x input characters) of one date, as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    src, lengths = pad([codec.source(text)])
    out = model.greedy(src, lengths, bos_id=codec.bos, eos_id=codec.eos, max_length=11)
    assert out.attention is not None
    weights, answer = out.attention[0], codec.text(out.tokens[0])
    fig, ax = plt.subplots(figsize=(0.3 * len(text) + 2, 4))
    ax.imshow(weights[:len(answer)], cmap="gray_r", aspect="auto")
    ax.set_xticks(range(len(text)), list(text))
    ax.set_yticks(range(len(answer)), list(answer))
    ax.set_xlabel("input")
    ax.set_ylabel("output")
    fig.tight_layout()
    tmp = path.with_name("." + path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, path)  # never a half-written picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small setting, under a minute")
    parser.add_argument("--data-only", action="store_true",
                        help="write the data file, print the rnnlab train command, stop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads (1: fastest for these small matrices)")
    parser.add_argument("--out", default="dates.tsv", help="where the TSV data file is written")
    parser.add_argument("--heatmap", type=Path, default=Path("dates_attention.png"))
    args = parser.parse_args()
    with threadpool_limits(args.threads):
        run(args)


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    s = QUICK if args.quick else FULL
    rng = np.random.default_rng(args.seed)
    codec = Codec(SRC_CHARS, "-0123456789")
    train = make_data(s["train"], rng)
    test = make_data(s["test"], rng, exclude={d for _, _, d in train})
    write_pairs(args.out, [(h, iso) for h, iso, _ in train])
    cli = cli_command("seq2seq", args.out, level="char", cell="lstm", layers=1, embed=16,
                      hidden=s["hidden"], attention="dot", batch_size=s["batch"], lr=s["lr"],
                      epochs=s["epochs"], time_budget=3600, seed=args.seed, out="runs/dates")
    show_command(cli)
    if args.data_only:
        return
    model = Seq2Seq(codec.src_vocab, codec.tgt_vocab, cell="lstm", embed_size=16,
                    hidden_size=s["hidden"], attention="dot", rng=rng)
    losses = fit(model, codec, [codec.source(h) for h, _, _ in train],
                 [codec.target(iso) for _, iso, _ in train], epochs=s["epochs"],
                 batch_size=s["batch"], lr=s["lr"], rng=rng)
    acc, decoded = exact_match(model, codec, [codec.source(h) for h, _, _ in test],
                               [iso for _, iso, _ in test], max_length=11)
    wrong = [f"{h} -> {d}" for (h, iso, _), d in zip(test, decoded, strict=True) if d != iso]
    save_heatmap(model, codec, test[0][0], args.heatmap)
    report({"setting": "quick" if args.quick else "full", "train": len(train),
            "test": len(test), "exact_match": round(acc, 4), "final_loss": round(losses[-1], 4),
            "heatmap": str(args.heatmap), "errors": wrong[:5], "cli": cli}, started)


if __name__ == "__main__":
    main()
