"""Evaluation metrics for sequence tasks, in plain NumPy.

Classification, with y the true and p the predicted class of each of M examples::

    accuracy      = (1/M) sum_i [y_i = p_i]
    confusion     C[a, b] = #{i : y_i = a, p_i = b}            rows true, columns predicted
    F1 of class c = 2 TP_c / (2 TP_c + FP_c + FN_c)              (0 when the class is absent)
    macro-F1      = mean of F1_c over the classes that occur in y or p (scikit-learn's)

Tagging, with a mask of the real (unpadded) steps::

    token accuracy = sum_{t,n} mask [y = p] / sum mask
    entity P / R / F1 over chunks (type, start, end), counted as conlleval counts them:
        P = |true & pred| / |pred|,   R = |true & pred| / |true|,   F1 = 2PR / (P + R)
    exact match   = fraction of sequences whose prediction equals the truth at every step

Language models: a loss is finite or it is not; its perplexity ``exp(loss)`` overflows a
float for any loss above about 709.78 nats. Neither case may raise, and neither may reach a
JSON file as ``Infinity`` or ``NaN`` (not JSON: strict readers reject them)::

    >>> perplexity(2.0)
    7.38905609893065
    >>> perplexity(1000.0)
    inf
    >>> describe_perplexity(1000.0)
    'infinite (exp of the loss overflows)'
    >>> json_line({"loss": 1000.0, "ppl": perplexity(1000.0)})
    '{"loss": 1000.0, "ppl": null, "ppl_note": "infinite (too large for a float)"}'
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

Chunk = tuple[str, int, int]  # (type, first step, last step + 1)


def _labels(y_true: Iterable[int], y_pred: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same size, got {y.size} and {p.size}")
    if y.size == 0:
        raise ValueError("metrics need at least one example")
    return y, p


def accuracy(y_true: Iterable[int], y_pred: Iterable[int]) -> float:
    """Fraction of predictions equal to the truth.

    >>> accuracy([0, 1, 1, 2], [0, 1, 2, 2])
    0.75
    """
    y, p = _labels(y_true, y_pred)
    return float(np.mean(y == p))


def confusion_matrix(y_true: Iterable[int], y_pred: Iterable[int],
                     num_classes: int | None = None) -> np.ndarray:
    """``C (K, K)`` int64 with ``C[a, b]`` the examples of class a predicted as b; K is
    ``num_classes`` or one more than the largest id seen.

    >>> confusion_matrix([0, 1, 1], [0, 0, 1]).tolist()
    [[1, 0], [1, 1]]
    """
    y, p = _labels(y_true, y_pred)
    if y.dtype.kind not in "iu" or p.dtype.kind not in "iu" or min(y.min(), p.min()) < 0:
        raise ValueError("class ids must be non-negative integers")
    K = int(max(y.max(), p.max())) + 1 if num_classes is None else int(num_classes)
    if max(y.max(), p.max()) >= K:
        raise ValueError(f"class ids must be below num_classes={K}, "
                         f"got {max(y.max(), p.max())}")
    return np.bincount(y * K + p, minlength=K * K).reshape(K, K).astype(np.int64)


def f1_per_class(y_true: Iterable[int], y_pred: Iterable[int],
                 num_classes: int | None = None) -> np.ndarray:
    """``(K,)`` F1 of each class, ``2 TP / (2 TP + FP + FN)``; 0 where the class is absent.

    >>> f1_per_class([0, 0, 1], [0, 1, 1]).tolist()
    [0.6666666666666666, 0.6666666666666666]
    """
    C = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(C).astype(np.float64)
    denom = C.sum(axis=0) + C.sum(axis=1)  # (TP + FP) + (TP + FN)
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def macro_f1(y_true: Iterable[int], y_pred: Iterable[int]) -> float:
    """Mean F1 over the classes occurring in ``y_true`` or ``y_pred`` (scikit-learn's
    ``f1_score(average="macro")``).

    >>> round(macro_f1([0, 0, 1, 2], [0, 1, 1, 1]), 4)
    0.3889
    """
    y, p = _labels(y_true, y_pred)
    present = np.union1d(y, p)
    return float(np.mean(f1_per_class(y, p)[present]))


def token_accuracy(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray) -> float:
    """Accuracy over the steps where ``mask`` is True (padding excluded); any equal shapes.

    >>> token_accuracy(np.array([[1, 2], [3, 0]]), np.array([[1, 0], [3, 5]]),
    ...                np.array([[True, True], [True, False]]))
    0.6666666666666666
    """
    y, p, m = np.asarray(y_true), np.asarray(y_pred), np.asarray(mask)
    if not y.shape == p.shape == m.shape or m.dtype != np.bool_:
        raise ValueError(f"y_true, y_pred and a boolean mask must have one shape, got "
                         f"{y.shape}, {p.shape}, {m.shape} {m.dtype}")
    if not m.any():
        raise ValueError("the mask selects no step")
    return float((y == p)[m].mean())


def exact_match(true_seqs: Sequence[Sequence[object]],
                pred_seqs: Sequence[Sequence[object]]) -> float:
    """Fraction of sequences predicted entirely right (same length, same items).

    >>> exact_match([[1, 2], [3]], [[1, 2], [4]])
    0.5
    """
    if len(true_seqs) != len(pred_seqs) or not true_seqs:
        raise ValueError(f"need as many predicted as true sequences (at least one), got "
                         f"{len(pred_seqs)} and {len(true_seqs)}")
    return sum(list(t) == list(p) for t, p in zip(true_seqs, pred_seqs, strict=True)) / len(
        true_seqs)


# --- entities (conlleval) --------------------------------------------------------------------


def _split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER" -> ("B", "PER")``, ``"O" -> ("O", "")`` (conlleval's split at the first -)."""
    prefix, _, kind = tag.partition("-")
    return prefix, kind


# conlleval's endOfChunk / startOfChunk tables: (previous prefix, prefix) pairs
_END_PAIRS = {("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"), ("E", "E"), ("E", "I"), ("E", "O")}
_START_PAIRS = {("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"), ("E", "E"), ("E", "I"),
                ("O", "E")}


def _ends(prev: str, prev_type: str, tag: str, kind: str) -> bool:
    """Whether a chunk ended at the previous step (conlleval's endOfChunk)."""
    return ((prev, tag) in _END_PAIRS or (prev not in ("O", ".") and prev_type != kind)
            or prev in ("[", "]"))


def _starts(prev: str, prev_type: str, tag: str, kind: str) -> bool:
    """Whether a chunk starts at this step (conlleval's startOfChunk)."""
    return ((prev, tag) in _START_PAIRS or (tag not in ("O", ".") and prev_type != kind)
            or tag in ("[", "]"))


def entities(tags: Sequence[str]) -> set[Chunk]:
    """The chunks ``(type, start, end)`` of one tag sequence (BIO/IOB2 or IOB1).

    As conlleval: an ``I-`` after ``O`` or after another type starts a new chunk; ``E-``
    follows conlleval's rules too (an ``E-`` ends a chunk; IOBES's ``S-`` is not special).

    >>> sorted(entities(["B-PER", "I-PER", "O", "I-LOC", "I-ORG"]))
    [('LOC', 3, 4), ('ORG', 4, 5), ('PER', 0, 2)]
    """
    chunks: set[Chunk] = set()
    prev, prev_type, start = "O", "", 0
    for t, tag in enumerate([*tags, "O"]):  # a final O closes the last chunk
        kind_tag, kind = _split_tag(tag)
        if prev != "O" and _ends(prev, prev_type, kind_tag, kind):
            chunks.add((prev_type, start, t))
        if _starts(prev, prev_type, kind_tag, kind):
            start = t
        prev, prev_type = kind_tag, kind
    return chunks


def entity_scores(true_seqs: Sequence[Sequence[str]],
                  pred_seqs: Sequence[Sequence[str]]) -> dict[str, float]:
    """Entity-level precision, recall and F1 over sentences (conlleval's totals), and the
    counts: ``true`` chunks, ``pred`` chunks, ``correct`` (same type, start and end).

    >>> entity_scores([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])["f1"]
    0.0
    """
    if len(true_seqs) != len(pred_seqs):
        raise ValueError(f"{len(true_seqs)} true but {len(pred_seqs)} predicted sequences")
    n_true = n_pred = correct = 0
    for t, p in zip(true_seqs, pred_seqs, strict=True):
        if len(t) != len(p):
            raise ValueError(f"a sequence of {len(t)} tags has {len(p)} predicted tags")
        a, b = entities(t), entities(p)
        n_true, n_pred, correct = n_true + len(a), n_pred + len(b), correct + len(a & b)
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "true": n_true, "pred": n_pred, "correct": correct}


# --- perplexity, and JSON that stays standard -----------------------------------------


def perplexity(loss: float) -> float:
    """``exp(loss)``: ``inf`` when it overflows, ``nan`` for a NaN loss; never raises."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def describe_perplexity(loss: float) -> str:
    """The perplexity of ``loss`` in words, for a person to read (two decimals when finite)."""
    if math.isnan(loss):
        return "undefined (the loss is NaN)"
    ppl = perplexity(loss)
    return f"{ppl:.2f}" if math.isfinite(ppl) else "infinite (exp of the loss overflows)"


def _note(value: float) -> str:
    return "NaN (not a number)" if math.isnan(value) else "infinite (too large for a float)"


def json_safe(row: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` with each non-finite float written as None and ``<key>_note`` beside it."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key], out[f"{key}_note"] = None, _note(value)
        else:
            out[key] = value
    return out


def json_line(row: dict[str, Any]) -> str:
    """``row`` as one line of standard JSON (``allow_nan=False``: no Infinity, no NaN)."""
    return json.dumps(json_safe(row), allow_nan=False)
