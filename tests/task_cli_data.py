"""What the sequence-task CLI tests share: generated data files, in-process CLI calls, the
one-line error check, and a run folder's hash (to show nothing saved changed)."""

import hashlib
import random
import subprocess
import sys
from pathlib import Path

from rnnlab import cli

SMALL = ["--hidden", "32", "--embed", "16", "--layers", "1", "--batch-size", "16",
         "--lr", "0.01", "--no-progress"]


def run_cli(capsys, *args):
    """``rnnlab ARGS`` in this process: (exit status, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *words):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]


def folder_hash(path):
    h = hashlib.sha256()
    for f in sorted(Path(path).rglob("*")):
        if f.is_file():
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


# --- generated data ------------------------------------------------------------------------


def classify_lines(n, rng):
    """Label A when the text holds more a's than b's: an order-free counting task."""
    out = []
    for _ in range(n):
        s = "".join(rng.choice("ab") for _ in range(rng.randint(3, 12)))
        out.append(f"{'A' if s.count('a') > s.count('b') else 'B'}\t{s}")
    return out


WORDS, NAMES = "the a cat dog sat ran on mat".split(), "Ann Bob Carl Dana".split()


def tag_sentences(n, rng):
    """Person names (one or two) among common words, BIO-tagged, in CoNLL-2003's 4 columns."""
    out = []
    for _ in range(n):
        rows = []
        for _ in range(rng.randint(3, 9)):
            if rng.random() < 0.3:
                rows += [(rng.choice(NAMES), "B-PER" if i == 0 else "I-PER")
                         for i in range(rng.randint(1, 2))]
            else:
                rows.append((rng.choice(WORDS), "O"))
        out.append("\n".join(f"{t} NN I-NP {g}" for t, g in rows))
    return out


def seq2seq_lines(n, rng):
    """Reverse a short string of a-d."""
    out = []
    for _ in range(n):
        s = "".join(rng.choice("abcd") for _ in range(rng.randint(2, 5)))
        out.append(f"{s}\t{s[::-1]}")
    return out



def write_files(d):
    """Training and validation files of each task under ``d``: name.train, name.val."""
    rng = random.Random(0)
    paths = {}
    for name, lines, n, sep in (("cls", classify_lines, 400, "\n"),
                                ("tag", tag_sentences, 300, "\n\n"),
                                ("s2s", seq2seq_lines, 400, "\n")):
        for part, count in (("train", n), ("val", n // 4)):
            p = d / f"{name}.{part}"
            head = "-DOCSTART- -X- -X- O\n\n" if name == "tag" else ""
            p.write_text(head + sep.join(lines(count, rng)) + "\n", encoding="utf-8")
            paths[f"{name}.{part}"] = p
    return paths


TRAIN = {
    "classify": ("cls", ["--max-steps", "150", "--eval-every", "50"]),
    "tag": ("tag", ["--max-steps", "150", "--eval-every", "50"]),
    "seq2seq": ("s2s", ["--max-steps", "250", "--eval-every", "125", "--hidden", "48",
                        "--attention", "dot"]),
}



def train_runs(files, root, steps=None):
    """A run folder per task under ``root`` (TRAIN's settings, or ``steps`` steps only)."""
    out = {}
    for task, (name, extra) in TRAIN.items():
        folder = root / task
        extra = extra if steps is None else ["--max-steps", str(steps), "--eval-every", "0"]
        r = subprocess.run([sys.executable, "-m", "rnnlab", "train", "--task", task, "--data",
                            str(files[f"{name}.train"]), "--out", str(folder), *SMALL, *extra],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        out[task] = folder
    return out
