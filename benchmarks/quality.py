"""Time to quality, rnnlab against PyTorch: one command per pair, the sides one after the other.

    python benchmarks/quality.py ptb-small --data ../shared/data/ptb --out /tmp/q
    python benchmarks/quality.py shakespeare --data ../shared/data/tinyshakespeare/input.txt \\
        --minutes 40 --out /tmp/q
    python benchmarks/quality.py ptb-small --quick ...      # seconds: a smoke test (the test)

Each side is a subprocess limited to ``--threads`` threads, run after the other has exited
(never at once). rnnlab runs the README's recipe through its CLI (``python -m rnnlab train``);
PyTorch runs the same recipe written the plain way (``quality_torch.py``).

ptb-small    Zaremba et al.'s small model, ``--decay-after 4`` (README, "Recipe: Penn
             Treebank"), then ``rnnlab eval`` of the best checkpoint on the test file as one
             stream. Target: test perplexity <= 114.5, rnnlab in less wall time than PyTorch.
shakespeare  the README's 2x512 character LSTM (embedding 512, dropout 0.2, clip 1, Adam
             2e-3 halved on a plateau, batch 64, bptt 100) with ``--time-budget`` = minutes *
             60 and the 90/10 split; PyTorch: the issue's plain recipe (the same, at constant
             lr), the same budget. Both validate after each epoch and when the budget ends. Metric:
             the best validation loss in nats/char. Target: <= 1.40, and below PyTorch's.

Wall time of training: rnnlab, the ``rnnlab train`` subprocess's (start-up, data loading
and its per-epoch validation included; ``rnnlab eval`` reported apart); PyTorch, its
training loop's with its per-epoch validation (``process_s``: the whole subprocess, test
included). tokens/s: training tokens over that wall time. Writes ``OUT/PAIR.json``, the
run folders and logs beside it, and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BUNDLED = HERE.parent / "src" / "rnnlab" / "corpora" / "tinyshakespeare.txt"
PTB_TARGET, CHAR_TARGET = 114.5, 1.40
QUICK_STEPS = 100  # ptb-small --quick: training steps on each side
QUICK_LINES = (200, 100)  # ptb-small --quick: lines of the validation and test files
QUICK_CHARS, QUICK_MINUTES = 100_000, 0.15  # shakespeare --quick: text slice, budget

PTB_FLAGS = ["--level", "word", "--layers", "2", "--hidden", "200", "--embed", "200",
             "--init-range", "0.1", "--dropout", "0", "--optimizer", "sgd", "--lr", "20",
             "--clip", "0.25", "--schedule", "zaremba", "--decay-after", "4",
             "--lr-decay", "0.5", "--epochs", "13", "--batch-size", "20", "--bptt", "20",
             "--eval-batch-size", "20", "--eval-every", "0", "--time-budget", "100000"]
CHAR_FLAGS = ["--split", "0.9,0.1", "--layers", "2", "--hidden", "512", "--embed", "512",
              "--dropout", "0.2", "--optimizer", "adam", "--lr", "2e-3", "--schedule",
              "plateau", "--lr-decay", "0.5", "--batch-size", "64", "--bptt", "100",
              "--clip", "1", "--epochs", "50", "--eval-every", "0"]


def timed(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` with its output in ``log``; its wall time. Exits 1 if it fails."""
    start = time.perf_counter()
    with open(log, "w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - start
    if code != 0:
        tail = log.read_text()[-2000:]
        sys.exit(f"{' '.join(cmd[:4])} ... failed (exit {code}); the end of {log}:\n{tail}")
    return seconds


def rnnlab_side(flags: list[str], out: Path, args: argparse.Namespace,
                test: Path | None) -> dict[str, Any]:
    """``rnnlab train`` with ``flags`` into OUT/NAME-rnnlab, then ``rnnlab eval`` of ``test``."""
    run = out / f"{args.pair}-rnnlab"
    cmd = [sys.executable, "-m", "rnnlab", "train", *flags, "--threads", str(args.threads),
           "--seed", str(args.seed), "--no-progress", "--force", "--out", str(run)]
    wall = timed(cmd, out / f"{args.pair}-rnnlab.log")
    evals = [{k: v for k, v in json.loads(line).items() if k != "sample"}
             for line in (run / "metrics.jsonl").read_text().splitlines()]
    progress = json.loads((run / "last.json").read_text())["meta"]["progress"]
    side: dict[str, Any] = {
        "side": "rnnlab", "train_wall_s": wall, "tokens": progress["tokens"],
        "steps": progress["step"], "loop_s": progress["elapsed_s"], "evals": evals,
        "best_val_loss": min(e["val_loss"] for e in evals), "command": " ".join(cmd[1:])}
    if test is not None:
        cmd = [sys.executable, "-m", "rnnlab", "eval", "--checkpoint", str(run), "--data",
               str(test), "--json"]
        side["eval_wall_s"] = timed(cmd, out / f"{args.pair}-rnnlab-eval.log")
        result = json.loads((out / f"{args.pair}-rnnlab-eval.log").read_text().splitlines()[-1])
        side["test_ppl"] = result["perplexity"]
    return side


def torch_side(flags: list[str], out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``quality_torch.py`` with ``flags``; its JSON, and the subprocess's wall time."""
    result = out / f"{args.pair}-torch.json"
    cmd = [sys.executable, str(HERE / "quality_torch.py"), *flags, "--threads",
           str(args.threads), "--seed", str(args.seed), "--json", str(result)]
    process_s = timed(cmd, out / f"{args.pair}-torch.log")
    side = json.loads(result.read_text())
    side.update(side="torch", train_wall_s=side.pop("train_s"), process_s=process_s,
                command=" ".join(cmd[1:]))
    return side


def quick_ptb_files(data: Path, out: Path) -> tuple[Path, Path]:
    """The first lines of PTB's validation and test files (the --quick slices)."""
    paths = []
    for name, lines in zip(("valid", "test"), QUICK_LINES, strict=True):
        text = (data / f"ptb.{name}.txt").read_text(encoding="utf-8").splitlines(True)
        path = out / f"quick.ptb.{name}.txt"
        path.write_text("".join(text[:lines]), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def ptb_small(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    data = Path(args.data)
    train = data / "ptb.train.txt"
    valid, test = data / "ptb.valid.txt", data / "ptb.test.txt"
    if args.quick:
        valid, test = quick_ptb_files(data, out)
    cut = ["--max-steps", str(QUICK_STEPS)] if args.quick else []
    flags = ["--data", str(train), "--val-data", str(valid), *PTB_FLAGS, *cut]
    sides = [rnnlab_side(flags, out, args, test)]
    sides.append(torch_side(["ptb", "--data", str(data), "--val-data", str(valid),
                             "--test-data", str(test), "--decay-after", "4", *cut], out, args))
    for s in sides:
        s["metric"], s["met"] = s["test_ppl"], s["test_ppl"] <= PTB_TARGET
        s["first_val_ppl"] = math.exp(s["evals"][0]["val_loss"])
    return {"metric": "test perplexity", "target": PTB_TARGET, "sides": sides}


def shakespeare(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    data, minutes = Path(args.data), args.minutes
    if args.quick:
        text = data.read_text(encoding="utf-8-sig")[:QUICK_CHARS]
        data, minutes = out / "quick.shakespeare.txt", QUICK_MINUTES
        data.write_text(text, encoding="utf-8")
    budget = ["--time-budget", f"{minutes * 60:g}"]
    sides = [rnnlab_side(["--data", str(data), *CHAR_FLAGS, *budget], out, args, None)]
    sides.append(torch_side(["shakespeare", "--data", str(data), "--minutes", f"{minutes:g}"],
                            out, args))
    for s in sides:
        s["metric"] = s["best_val_loss"]
        s["met"] = s["metric"] <= CHAR_TARGET
    return {"metric": "best validation loss (nats/char)", "target": CHAR_TARGET,
            "minutes": minutes, "sides": sides}


def table(result: dict[str, Any]) -> str:
    lines = [f"| side | training wall (s) | tokens/s | {result['metric']} | target |",
             "|---|---:|---:|---:|---|"]
    for s in result["sides"]:
        met = f"<= {result['target']:.2f}: {'met' if s['met'] else 'not met'}"
        lines.append(f"| {s['side']} | {s['train_wall_s']:,.1f} | {s['tokens_per_s']:,.0f} | "
                     f"{s['metric']:.4f} | {met} |")
    return "\n".join(lines) + "\n\n" + target_line(result)


def target_line(result: dict[str, Any]) -> str:
    rn, pt = result["sides"]
    if result["pair"] == "ptb-small":
        ratio = rn["train_wall_s"] / pt["train_wall_s"]
        both = rn["met"] and pt["met"]
        return (f"target: test perplexity <= {PTB_TARGET}: rnnlab {rn['metric']:.2f}, torch "
                f"{pt['metric']:.2f}; wall time rnnlab / torch = {ratio:.3f} (rnnlab "
                f"{'faster' if ratio < 1 else 'not faster'}); issue target "
                f"{'met' if both and ratio < 1 else 'not met'}. rnnlab eval of the test "
                f"file: {rn['eval_wall_s']:.1f} s.")
    lower = "rnnlab" if rn["metric"] < pt["metric"] else "torch"
    return (f"target: <= {CHAR_TARGET:.2f} nats/char in {result['minutes']:g} minutes: rnnlab "
            f"{rn['metric']:.4f} ({rn['steps']} steps), torch {pt['metric']:.4f} "
            f"({pt['steps']} steps); lower: {lower}; issue target "
            f"{'met' if rn['met'] and lower == 'rnnlab' else 'not met'}.")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("pair", choices=["ptb-small", "shakespeare"])
    p.add_argument("--data", help="ptb-small: the PTB folder (ptb.train/valid/test.txt); "
                   "shakespeare: the text (default: rnnlab's bundled tiny-shakespeare)")
    p.add_argument("--out", required=True, help="folder for PAIR.json, run folders and logs")
    p.add_argument("--threads", type=int, default=2, help="threads for each side")
    p.add_argument("--minutes", type=float, default=40.0, help="shakespeare: time budget")
    p.add_argument("--seed", type=int, default=0, help="both sides' seed")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny budgets")
    args = p.parse_args(argv)
    if args.data is None:
        if args.pair == "ptb-small":
            p.error("ptb-small needs --data: the folder of ptb.train.txt, ptb.valid.txt, "
                    "ptb.test.txt")
        args.data = str(BUNDLED)
    needed = [Path(args.data, f"ptb.{n}.txt") for n in ("train", "valid", "test")] if (
        args.pair == "ptb-small") else [Path(args.data)]
    if missing := [str(f) for f in needed if not f.is_file()]:
        p.error(f"no such file: {', '.join(missing)}: pass --data the "
                f"{'PTB folder' if args.pair == 'ptb-small' else 'text file'}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = (ptb_small if args.pair == "ptb-small" else shakespeare)(args, out)
    result.update(pair=args.pair, threads=args.threads, quick=args.quick, seed=args.seed)
    for side in result["sides"]:
        side["tokens_per_s"] = side["tokens"] / side["train_wall_s"]
    print(table(result))
    (out / f"{args.pair}.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
