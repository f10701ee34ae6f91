"""Training speed of two rnnlab source trees, interleaved: did a change to the training loop
cost tokens per second?

    python benchmarks/loop_speed.py --old /path/to/old/src --new src --rounds 5

For a language model (the default 2x256 character LSTM) and one task of each kind
(classify, tag, seq2seq on generated files, hidden 256, embed 64, batch 64), each round runs
``rnnlab train --max-steps N --eval-every 0 --no-sample --no-progress`` once with each tree,
alternating which goes first, and reads the training tokens per second from the run's
``last.json`` (``progress.tokens / progress.elapsed_s``: training steps only, no evaluation,
no start-up). Prints one JSON line per task: the median of each tree and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TASK_FLAGS = ["--hidden", "256", "--embed", "64", "--batch-size", "64", "--layers", "1"]
CASES = {
    "lm": ["--max-steps", "60"],
    "classify": ["--task", "classify", "--max-steps", "60", "--pooling", "mean",
                 "--bidirectional", *TASK_FLAGS],
    "tag": ["--task", "tag", "--max-steps", "60", "--bidirectional", *TASK_FLAGS],
    "seq2seq": ["--task", "seq2seq", "--max-steps", "100", "--attention", "dot", *TASK_FLAGS],
}


def write_data(folder: Path, rng: np.random.Generator) -> dict[str, Path]:
    """Generated task files of realistic lengths (classify ~40 tokens, tag ~25, seq2seq ~8)."""
    letters = np.array(list("abcdefghij"))
    cls, tag, s2s = folder / "cls.tsv", folder / "tag.conll", folder / "s2s.tsv"
    with cls.open("w") as f:
        for _ in range(4000):
            text = "".join(rng.choice(letters, rng.integers(30, 50)))
            f.write(f"{'yes' if text.count('a') > text.count('b') else 'no'}\t{text}\n")
    with tag.open("w") as f:
        for _ in range(3000):
            for w in rng.choice(letters, rng.integers(15, 35)):
                f.write(f"{w} {'B-X' if w in 'abc' else 'O'}\n")
            f.write("\n")
    with s2s.open("w") as f:
        for _ in range(6000):
            src = "".join(rng.choice(letters, rng.integers(5, 11)))
            f.write(f"{src}\t{src[::-1]}\n")
    return {"classify": cls, "tag": tag, "seq2seq": s2s}


def tokens_per_s(src: str, args: list[str], out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
    cmd = [sys.executable, "-m", "rnnlab", "train", *args, "--out", str(out), "--eval-every",
           "0", "--no-progress", "--time-budget", "3600", "--threads", "2"]
    if "--task" not in args:
        cmd.append("--no-sample")
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    progress = json.loads((out / "last.json").read_text())["meta"]["progress"]
    return progress["tokens"] / progress["elapsed_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="the old tree's src folder")
    p.add_argument("--new", required=True, help="the new tree's src folder")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--only", nargs="*", default=list(CASES))
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = write_data(Path(tmp), np.random.default_rng(0))
        for name in a.only:
            args = [*CASES[name]] + (["--data", str(files[name])] if name in files else [])
            speeds: dict[str, list[float]] = {"old": [], "new": []}
            for r in range(a.rounds):
                order = ("old", "new") if r % 2 == 0 else ("new", "old")
                for which in order:
                    out = Path(tmp) / f"{name}-{which}-{r}"
                    speeds[which].append(tokens_per_s(getattr(a, which), args, out))
            old, new = (statistics.median(speeds[k]) for k in ("old", "new"))
            print(json.dumps({"task": name, "old_tokens_per_s": round(old),
                              "new_tokens_per_s": round(new), "new_over_old": new / old,
                              "runs": speeds}), flush=True)


if __name__ == "__main__":
    main()
