"""Metrics: hand-computed cases, conlleval's chunk rules, and scikit-learn where installed."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.metrics import (
    accuracy,
    confusion_matrix,
    entities,
    entity_scores,
    exact_match,
    f1_per_class,
    macro_f1,
    token_accuracy,
)

Y = [0, 0, 1, 1, 2, 2, 2]
P = [0, 1, 1, 1, 2, 0, 1]


def test_hand_computed_classification():
    assert accuracy(Y, P) == pytest.approx(4 / 7)
    assert confusion_matrix(Y, P).tolist() == [[1, 1, 0], [0, 2, 0], [1, 1, 1]]
    # F1 = 2TP / (2TP + FP + FN): class 0: 2/(2+1+1), class 1: 4/(4+2+0), class 2: 2/(2+0+2)
    assert f1_per_class(Y, P).tolist() == pytest.approx([0.5, 2 / 3, 0.5])
    assert macro_f1(Y, P) == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)


def test_absent_class_and_num_classes():
    assert confusion_matrix([0, 1], [0, 1], num_classes=4).shape == (4, 4)
    assert f1_per_class([0, 1], [0, 1], num_classes=3).tolist() == [1.0, 1.0, 0.0]
    assert macro_f1([0, 2], [0, 2]) == 1.0  # class 1 occurs nowhere: not averaged


@pytest.mark.parametrize(("call", "match"), [
    (lambda: accuracy([0, 1], [0]), "same size"),
    (lambda: accuracy([], []), "at least one"),
    (lambda: confusion_matrix([0, -1], [0, 0]), "non-negative integers"),
    (lambda: confusion_matrix([0, 3], [0, 0], num_classes=3), "below num_classes=3"),
    (lambda: token_accuracy(np.zeros(2), np.zeros(2), np.zeros(2)), "boolean mask"),
    (lambda: exact_match([[1]], []), "as many"),
    (lambda: entity_scores([["O"]], [["O", "O"]]), "1 tags has 2"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_against_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for k in (2, 3, 7):
        y, p = rng.integers(0, k, 300), rng.integers(0, k, 300)
        p[:5] = k + 1  # a class only ever predicted
        assert accuracy(y, p) == pytest.approx(sk.accuracy_score(y, p), abs=1e-12)
        assert macro_f1(y, p) == pytest.approx(sk.f1_score(y, p, average="macro"), abs=1e-12)
        labels = np.arange(k + 2)
        np.testing.assert_array_equal(confusion_matrix(y, p, k + 2),
                                      sk.confusion_matrix(y, p, labels=labels))
        np.testing.assert_allclose(f1_per_class(y, p, k + 2),
                                   sk.f1_score(y, p, labels=labels, average=None,
                                               zero_division=0), atol=1e-12)


def test_token_accuracy_ignores_padding():
    y = np.array([[1, 1], [2, -1], [3, -1]])
    p = np.array([[1, 0], [2, 5], [0, 5]])
    assert token_accuracy(y, p, y >= 0) == pytest.approx(2 / 4)


def test_exact_match():
    assert exact_match([[1, 2], [3], [4, 4]], [[1, 2], [3, 3], [4, 4]]) == pytest.approx(2 / 3)


# -------------------------------------------------------------------- entities


@pytest.mark.parametrize(("tags", "chunks"), [
    (["B-PER", "I-PER", "O", "B-LOC"], {("PER", 0, 2), ("LOC", 3, 4)}),
    (["B-PER", "B-PER"], {("PER", 0, 1), ("PER", 1, 2)}),
    (["O", "I-PER", "I-PER"], {("PER", 1, 3)}),  # I after O starts an entity (conlleval)
    (["B-PER", "I-LOC", "I-LOC"], {("PER", 0, 1), ("LOC", 1, 3)}),  # type change: new one
    (["I-ORG"], {("ORG", 0, 1)}),
    (["O", "O"], set()),
    (["B-MISC", "I-MISC", "I-MISC"], {("MISC", 0, 3)}),
])
def test_entities_follow_conlleval(tags, chunks):
    assert entities(tags) == chunks


def test_entity_scores_hand_computed():
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["I-ORG", "O"]]
    # true: PER(0,2) LOC(3,4) ORG(0,1); pred: PER(0,2) ORG(3,4) ORG(0,1): 2 correct of 3 / 3
    s = entity_scores(true, pred)
    assert (s["true"], s["pred"], s["correct"]) == (3, 3, 2)
    assert s["precision"] == s["recall"] == s["f1"] == pytest.approx(2 / 3)


def test_entity_boundary_must_match_exactly():
    s = entity_scores([["B-PER", "I-PER", "I-PER"]], [["B-PER", "I-PER", "O"]])
    assert (s["correct"], s["precision"], s["recall"], s["f1"]) == (0, 0.0, 0.0, 0.0)


def test_entities_do_not_cross_sentences():
    s = entity_scores([["B-PER"], ["I-PER"]], [["B-PER"], ["I-PER"]])
    assert (s["true"], s["correct"]) == (2, 2)
