"""Many-to-one on variable lengths: is an arithmetic expression well formed?

The grammar, over the characters ``0-9 + - * / ( )``::

    expr := term (op term)*        op := + | - | * | /
    term := number | ( expr )      number := 1 or 2 digits

Half of the examples are generated from it; the other half are generated expressions
corrupted by one random edit (insert, delete or replace one character) that makes them
ill formed, e.g. ``(3+4`` or ``3+*4``. Telling them apart needs counting brackets over the
whole string, not just spotting a local pattern. Duplicates are dropped, then a seeded
shuffled 80/20 split; the model (char level, LSTM, last-state pooling) never sees the
held-out expressions. The data is written as the classify task's TSV (``label<TAB>text``)
and read back with :func:`rnnlab.data.tasks.read_classify`, as the CLI does; the example prints
(and its JSON line carries as ``"cli"``) the ``rnnlab train --task classify`` command that
trains the same model on that file::

    python examples/grammar_classify.py --quick        # under a minute
    python examples/grammar_classify.py                # the full setting (floor 97%)

The last line printed is one JSON object of metrics. The full setting's measured result,
with its command and time, is in the README ("Sequence models", the table of examples).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from task_loop import cli_command, emit, fit, predict_classes, show_command

from rnnlab.data.padded import PaddedBatches, shuffled_split
from rnnlab.data.tasks import Labels, encode_classify, read_classify, task_vocab
from rnnlab.metrics import accuracy, macro_f1
from rnnlab.models import SequenceClassifier

ALPHABET = "0123456789+-*/()"
OPS = "+-*/"


def expression(rng: np.random.Generator, depth: int) -> str:
    """A random well-formed expression with brackets nested at most ``depth`` deep."""
    terms = [term(rng, depth) for _ in range(rng.integers(1, 4))]
    out = terms[0]
    for t in terms[1:]:
        out += OPS[rng.integers(len(OPS))] + t
    return out


def term(rng: np.random.Generator, depth: int) -> str:
    if depth > 0 and rng.random() < 0.35:
        return "(" + expression(rng, depth - 1) + ")"
    return "".join(ALPHABET[rng.integers(10)] for _ in range(rng.integers(1, 3)))


def well_formed(s: str) -> bool:
    """Recursive-descent check of the grammar above."""
    def expr(i: int) -> int:  # the end of an expr starting at i, or -1
        i = term_(i)
        while i >= 0 and i < len(s) and s[i] in OPS:
            i = term_(i + 1)
        return i

    def term_(i: int) -> int:
        if i < len(s) and s[i] == "(":
            j = expr(i + 1)
            return j + 1 if 0 <= j < len(s) and s[j] == ")" else -1
        j = i
        while j < len(s) and j - i < 2 and s[j].isdigit():
            j += 1
        return j if j > i else -1

    return expr(0) == len(s)


def corrupt(rng: np.random.Generator, s: str) -> str:
    """One random insert, delete or replace that leaves the string ill formed (and non-empty)."""
    while True:
        i, c = int(rng.integers(len(s) + 1)), ALPHABET[rng.integers(len(ALPHABET))]
        kind = rng.integers(3)
        if kind == 0:
            t = s[:i] + c + s[i:]
        elif i == len(s):
            continue
        else:
            t = s[:i] + ("" if kind == 1 else c) + s[i + 1:]
        if t and not well_formed(t):
            return t


def make_data(n: int, depth: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """About n distinct (label, expression) pairs, half valid, half corrupted."""
    seen: dict[str, str] = {}
    while len(seen) < n:
        s = expression(rng, depth)
        assert well_formed(s)
        label, text = ("valid", s) if len(seen) % 2 == 0 else ("invalid", corrupt(rng, s))
        seen.setdefault(text, label)
    return [(label, text) for text, label in seen.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small run, under a minute")
    ap.add_argument("--data-only", action="store_true",
                    help="write the data file, print the rnnlab train command, stop")
    ap.add_argument("--out", default="grammar.tsv", help="where the TSV data file is written")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    n, hidden, epochs = (4000, 48, 6) if a.quick else (12000, 64, 10)
    rng = np.random.default_rng(a.seed)

    path = Path(a.out)
    path.write_text("".join(f"{lab}\t{txt}\n" for lab, txt in make_data(n, 3, rng)),
                    encoding="utf-8")
    cli = cli_command("classify", path, level="char", cell="lstm", layers=1, embed=16,
                      hidden=hidden, dropout=0, batch_size=32, lr=0.005, epochs=epochs,
                      time_budget=3600, val_fraction=0.2, seed=a.seed, out="runs/grammar")
    show_command(cli)
    if a.data_only:
        return
    ex = read_classify(path)
    vocab, labels = task_vocab(ex.texts, "char"), Labels.build(ex.labels)
    inputs, y = encode_classify(ex, vocab, labels)
    train, test = shuffled_split(len(inputs), 0.2, rng)

    model = SequenceClassifier(len(labels), len(vocab), cell="lstm", embed_size=16,
                               hidden_size=hidden, rng=rng)
    batches = PaddedBatches([inputs[i] for i in train], y[train], 32, rng=rng)
    seconds = fit(model, batches, epochs=epochs, lr=0.005)
    pred = predict_classes(model, [inputs[i] for i in test])
    majority = float(np.bincount(y[test]).max() / len(test))
    emit({"task": "grammar_classify", "setting": "quick" if a.quick else "full",
          "examples": len(inputs), "test_examples": len(test),
          "test_accuracy": round(accuracy(y[test], pred), 4),
          "test_macro_f1": round(macro_f1(y[test], pred), 4),
          "majority_baseline": round(majority, 4), "train_seconds": round(seconds, 1),
          "mean_length": round(float(np.mean([len(x) for x in inputs])), 1), "cli": cli})


if __name__ == "__main__":
    main()
