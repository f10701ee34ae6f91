"""One-to-many: the English name of a handwritten digit, character by character, from its image.

scikit-learn's ``load_digits`` (1797 images of 8x8 pixels; install the ``examples``
extra). An image's 64 pixels scaled to [0, 1] are its feature vector; a
``ConditionedGenerator`` turns them into the decoder's initial state and spells the name
("seven") with BOS and EOS, trained with teacher forcing::

    f        : (N, 64)          the pixels / 16
    ids      : (T, N)           [BOS, s, e, v, e, n], padded      (T = longest name + 1)
    targets  : (T, N)           [s, e, v, e, n, EOS], padded
    h_0      = tanh(f W_init^T + b_init), then LSTM + Linear + softmax cross-entropy

The split is the one of ``examples/digits_classify.py``: ``shuffled_split(1797, 0.2,
default_rng(seed))``, 80/20, seeded. A held-out image counts as right only when greedy
decoding returns exactly its name's letters and then EOS (chance: 0.1, naming a digit at
random). The last line printed is one JSON object of metrics::

    python examples/digits_caption.py --quick        # under a minute
    python examples/digits_caption.py                # the full setting (floor 97%)

The full setting's measured result, with its command and time, is in the README ("Sequence
models", the table of examples).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from seq2seq_common import Codec, pad, report
from threadpoolctl import threadpool_limits

from rnnlab.data.padded import shuffled_split
from rnnlab.models import ConditionedGenerator
from rnnlab.optim import Adam, clip_grad_norm

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
LETTERS = "".join(sorted(set("".join(NAMES))))
FULL = {"hidden": 256, "epochs": 40, "batch": 32, "lr": 5e-3}
QUICK = {"hidden": 64, "epochs": 8, "batch": 32, "lr": 1e-2}


def load(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features (M, 64) float32 in [0, 1], labels (M,), and the train and test indices."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("this example needs scikit-learn: pip install 'rnnlab[examples]'") \
            from None
    digits = load_digits()
    features = (digits.images.reshape(len(digits.images), 64) / 16.0).astype(np.float32)
    train, test = shuffled_split(len(features), 0.2, np.random.default_rng(seed))
    return features, digits.target.astype(np.int64), train, test


def fit(model: ConditionedGenerator, codec: Codec, f: np.ndarray, y: np.ndarray, s: dict,
        rng: np.random.Generator) -> list[float]:
    """Adam, gradient norm clipped at 5, teacher forcing; each epoch's mean training loss."""
    opt = Adam(model.named_params(), lr=s["lr"])
    means = []
    for epoch in range(s["epochs"]):
        order, losses = rng.permutation(len(f)), []
        for i in range(0, len(order), s["batch"]):
            idx = order[i:i + s["batch"]]
            names = [codec.target(NAMES[k]) for k in y[idx]]
            ids, lengths = pad([[codec.bos, *t] for t in names])  # (T, N), (N,)
            targets, _ = pad([[*t, codec.eos] for t in names])  # (T, N)
            model.zero_grad()
            losses.append(model.loss(f[idx], ids, targets, lengths))
            model.backward_loss()
            clip_grad_norm(model.named_params(), 5.0)
            opt.step()
        means.append(float(np.mean(losses)))
        print(f"epoch {epoch + 1}/{s['epochs']}  train loss {means[-1]:.4f}", flush=True)
    return means


def caption(model: ConditionedGenerator, codec: Codec, f: np.ndarray) -> list[list[int]]:
    """Greedy decoding of every image: its token ids, EOS included when one came."""
    longest = max(len(n) for n in NAMES) + 1
    out = model.generate(f, max_length=longest, bos_id=codec.bos, eos_id=codec.eos)
    return [[int(t) for t in tokens] for tokens in out.tokens]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small setting, under a minute")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS threads (1: fastest for these small matrices)")
    a = ap.parse_args()
    started, cpu = time.perf_counter(), time.process_time()
    s = QUICK if a.quick else FULL
    features, y, train, test = load(a.seed)
    codec = Codec("", LETTERS)  # targets only: the source is the image
    rng = np.random.default_rng(a.seed + 1)
    model = ConditionedGenerator(codec.tgt_vocab, 64, cell="lstm", embed_size=16,
                                 hidden_size=s["hidden"], rng=rng)
    with threadpool_limits(a.threads):
        losses = fit(model, codec, features[train], y[train], s, rng)
        model.eval()
        decoded = caption(model, codec, features[test])
    right = [d == [*codec.target(NAMES[k]), codec.eos] for d, k in zip(decoded, y[test],
                                                                       strict=True)]
    texts = [codec.text(d) for d in decoded]
    wrong = [f"{NAMES[k]} -> {t!r}" for t, k, r in zip(texts, y[test], right, strict=True)
             if not r]
    report({"task": "digits_caption", "setting": "quick" if a.quick else "full",
            "train_images": len(train), "test_images": len(test),
            "exact_match": round(float(np.mean(right)), 4), "chance": 0.1,
            "names_valid": round(float(np.mean([t in NAMES for t in texts])), 4),
            "final_loss": round(losses[-1], 4), "errors": wrong[:5],
            "cpu_s": round(time.process_time() - cpu, 1)}, started)


if __name__ == "__main__":
    main()
