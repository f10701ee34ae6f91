"""Many-to-one on real-valued inputs: handwritten digits read row by row.

scikit-learn's ``load_digits`` (1797 images of 8x8 pixels, intensities 0..16; install the
``examples`` extra) is read as a sequence of T = 8 steps, each the 8 pixels of one row
scaled to [0, 1]: ``x (8, N, 8)`` into ``SequenceClassifier(10, input_size=8)``, which
pools the LSTM's last hidden state into 10 class scores. A fixed seeded 80/20 split; the
test images are never trained on::

    python examples/digits_classify.py --quick        # under a minute
    python examples/digits_classify.py                # the full setting (floor 97%)

The images are also written as the classify task's TSV (``digit<TAB>`` 64 pixel values,
space-separated), and the example prints (its JSON line carries as ``"cli"``) the
``rnnlab train --task classify --level word`` command for that file. There each pixel value
is a *token* (64 steps over a vocabulary of 17 values), not a real-valued row as here: the
command line takes text, the Python API any vectors. The last line printed is one JSON
object of metrics.
The full setting's measured result, with its command and time, is in the README ("Sequence
models", the table of examples).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from task_loop import cli_command, emit, fit, predict_classes, show_command

from rnnlab.data.padded import PaddedBatches, shuffled_split
from rnnlab.metrics import accuracy, confusion_matrix, macro_f1
from rnnlab.models import SequenceClassifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small run, under a minute")
    ap.add_argument("--out", default="digits.tsv", help="where the TSV data file is written")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("this example needs scikit-learn: pip install 'rnnlab[examples]'") \
            from None
    digits = load_digits()
    images, y = digits.images, digits.target.astype(np.int64)  # (M, 8, 8) in 0..16, (M,)
    Path(a.out).write_text("".join(
        f"{label}\t{' '.join(str(int(v)) for v in img.reshape(-1))}\n"
        for label, img in zip(y, images, strict=True)), encoding="utf-8")

    cli = cli_command("classify", a.out, level="word", cell="lstm", layers=1, embed=16,
                      hidden=128, dropout=0, batch_size=32, lr=0.01, epochs=25, time_budget=3600,
                      val_fraction=0.2, seed=a.seed, out="runs/digits")
    show_command(cli)
    rows = [(img / 16.0).astype(np.float32) for img in images]  # each (T=8 rows, 8 pixels)
    train, test = shuffled_split(len(rows), 0.2, np.random.default_rng(a.seed))
    hidden, epochs = (48, 6) if a.quick else (128, 25)
    rng = np.random.default_rng(a.seed + 1)
    model = SequenceClassifier(10, input_size=8, cell="lstm", hidden_size=hidden, rng=rng)
    batches = PaddedBatches([rows[i] for i in train], y[train], 32, rng=rng, bucket=False)
    seconds = fit(model, batches, epochs=epochs, lr=0.01)
    pred = predict_classes(model, [rows[i] for i in test])
    errors = confusion_matrix(y[test], pred, 10)
    np.fill_diagonal(errors, 0)
    a_true, a_pred = np.unravel_index(int(errors.argmax()), errors.shape)
    emit({"task": "digits_classify", "setting": "quick" if a.quick else "full",
          "train_images": len(train), "test_images": len(test),
          "test_accuracy": round(accuracy(y[test], pred), 4),
          "test_macro_f1": round(macro_f1(y[test], pred), 4),
          "majority_baseline": round(float(np.bincount(y[test]).max() / len(test)), 4),
          "most_confused": f"{a_true} as {a_pred} ({int(errors.max())}x)",
          "train_seconds": round(seconds, 1), "cli": cli})


if __name__ == "__main__":
    main()
