"""Many-to-many, aligned: word segmentation of Shakespeare written without spaces.

Each line of the bundled tinyshakespeare corpus loses its spaces; every remaining
character is tagged ``B-W`` if it begins a word, else ``I-W``::

    First Citizen:   ->   F i r s t C i t i z e n :
                          B I I I I B I I I I I I I

A left-to-right tagger must decide at "C" that a word starts without seeing what follows;
a bidirectional one sees the whole line. Metrics on held-out lines: per-character
accuracy, and word F1 (a word is right when both its ends are, counted as conlleval
counts entities, :func:`rnnlab.metrics.entity_scores`). The data is written as the tag
task's CoNLL file (one ``char tag`` per line, a blank line between lines of the play) and
read back with :func:`rnnlab.data.tasks.read_tagged`; the example prints (and its JSON line
carries as ``"cli"``) the ``rnnlab train --task tag`` command that trains the bidirectional
tagger on that file::

    python examples/tagging.py --quick        # under a minute
    python examples/tagging.py                # the full setting

The last line printed is one JSON object of metrics.
The full setting's measured result, with its command and time, is in the README ("Sequence
models", the table of examples).
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import numpy as np
from task_loop import cli_command, emit, fit, predict_tags, show_command

from rnnlab.data.padded import PaddedBatches, shuffled_split
from rnnlab.data.tasks import Labels, encode_tagged, read_tagged, task_vocab
from rnnlab.metrics import entity_scores, token_accuracy
from rnnlab.models import SequenceTagger


def conll_lines(text: str, max_lines: int) -> str:
    """The first ``max_lines`` non-blank lines as CoNLL: ``char tag`` rows, blank between."""
    out = []
    for line in [ln for ln in text.splitlines() if ln.split()][:max_lines]:
        for word in line.split():
            out += [f"{c} {'B-W' if i == 0 else 'I-W'}" for i, c in enumerate(word)]
        out.append("")
    return "\n".join(out) + "\n"


def run_variant(bidirectional: bool, data: tuple, hidden: int, epochs: int,
                seed: int) -> dict:
    """Train one tagger and score it on the held-out lines."""
    inputs, tags, train, test, vocab, labels = data
    rng = np.random.default_rng(seed)
    model = SequenceTagger(len(labels), len(vocab), cell="lstm", embed_size=32,
                           hidden_size=hidden, bidirectional=bidirectional, rng=rng)
    batches = PaddedBatches([inputs[i] for i in train], [tags[i] for i in train], 32, rng=rng)
    seconds = fit(model, batches, epochs=epochs, lr=0.005,
                  name="bi " if bidirectional else "uni ")
    pred = predict_tags(model, [inputs[i] for i in test])
    true = [tags[i] for i in test]
    flat_t, flat_p = np.concatenate(true), np.concatenate(pred)
    words = entity_scores([labels.decode(t) for t in true], [labels.decode(p) for p in pred])
    return {"char_accuracy": round(token_accuracy(flat_t, flat_p, np.ones_like(flat_t, bool)), 4),
            "word_f1": round(words["f1"], 4), "train_seconds": round(seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small run, under a minute")
    ap.add_argument("--data-only", action="store_true",
                    help="write the data file, print the rnnlab train command, stop")
    ap.add_argument("--out", default="segment.conll", help="where the CoNLL file is written")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    lines, hidden, epochs = (1500, 48, 4) if a.quick else (6000, 64, 6)
    corpus = resources.files("rnnlab").joinpath("corpora/tinyshakespeare.txt").read_text("utf-8")
    path = Path(a.out)
    path.write_text(conll_lines(corpus, lines), encoding="utf-8")

    cli = cli_command("tag", path, level="word", cell="lstm", layers=1, embed=32, hidden=hidden,
                      bidirectional=True, dropout=0, batch_size=32, lr=0.005, epochs=epochs,
                      time_budget=3600, val_fraction=0.2, seed=a.seed, out="runs/segment")
    show_command(cli)
    if a.data_only:
        return
    ex = read_tagged(path)
    labels = Labels.build(t for s in ex.tags for t in s)
    train, test = shuffled_split(len(ex), 0.2, np.random.default_rng(a.seed))
    vocab = task_vocab([" ".join(ex.tokens[i]) for i in train], "word")  # chars as tokens
    inputs, tags = encode_tagged(ex, vocab, labels)
    data = (inputs, tags, train, test, vocab, labels)

    metrics: dict = {"task": "tagging", "setting": "quick" if a.quick else "full",
                     "lines": len(ex), "test_lines": len(test),
                     "test_chars": int(sum(len(tags[i]) for i in test)),
                     "majority_baseline": round(float(np.mean(np.concatenate(
                         [tags[i] for i in test]) == labels.names.index("I-W"))), 4)}
    metrics["unidirectional"] = run_variant(False, data, hidden, epochs, a.seed + 1)
    metrics["bidirectional"] = run_variant(True, data, hidden, epochs, a.seed + 1)
    emit({**metrics, "cli": cli})


if __name__ == "__main__":
    main()
