"""Text features per token and the ranking of cells by |Pearson r| (rnnlab.inspect.features)."""

import numpy as np
import pytest

from rnnlab.inspect.features import (
    FEATURES,
    constant_notes,
    correlations,
    rank_cells,
    token_features,
)

TEXT = 'say "hi (there)" now\nnext (line "q")\n"'


def test_features_char_level_by_hand():
    f = token_features(list('a"b(c)\n"d'), "char")
    #                         a  "  b  (  c  )  \n "  d
    assert f["in_quotes"].tolist() == [0, 1, 1, 1, 1, 1, 1, 0, 0]
    assert f["in_brackets"].tolist() == [0, 0, 0, 1, 1, 0, 0, 0, 0]
    assert f["line_position"].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1]
    assert f["after_newline"].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 0]


def test_features_word_level_eos_is_the_newline():
    f = token_features(['"a', "b", ')', "<eos>", 'c"', "(d"], "word")
    assert f["in_quotes"].tolist() == [1, 1, 1, 1, 0, 0]
    assert f["in_brackets"].tolist() == [0, 0, 0, 0, 0, 1]  # unmatched ")" is ignored
    assert f["line_position"].tolist() == [0, 1, 2, 3, 0, 1]
    assert f["after_newline"].tolist() == [0, 0, 0, 0, 1, 0]


def test_features_shapes_and_bad_level():
    f = token_features(list(TEXT), "byte")
    assert set(f) == set(FEATURES) and all(v.shape == (len(TEXT),) for v in f.values())
    with pytest.raises(ValueError, match="level must be one of"):
        token_features(["a"], "sentence")


def test_correlations_constant_cells_and_features_are_zero_not_nan():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 4))
    v[:, 1] = 0.1  # constant cell: mean of 0.1s is not exactly 0.1, must still be 0
    r = correlations(v, rng.normal(size=50))
    assert np.isfinite(r).all() and r[1] == 0.0
    assert (correlations(v, np.full(50, 3.0)) == 0).all()
    assert (correlations(v[:1], np.ones(1)) == 0).all()  # one step: nothing to correlate


def test_correlations_match_numpy_corrcoef():
    rng = np.random.default_rng(1)
    v, y = rng.normal(size=(200, 6)), rng.normal(size=200)
    want = [np.corrcoef(v[:, j], y)[0, 1] for j in range(6)]
    np.testing.assert_allclose(correlations(v, y), want, rtol=1e-10, atol=1e-12)


def test_the_quote_cell_ranks_first_for_quotes():
    tokens = list(TEXT * 5)
    f = token_features(tokens, "char")
    rng = np.random.default_rng(2)
    L, T, H = 2, len(tokens), 16
    h = np.tanh(rng.normal(size=(L, T, H)))
    c = rng.normal(size=(L, T, H)) * 4
    c[1, :, 7] = 3.0 * f["in_quotes"] - 1.0  # c of layer 1, cell 7 is the quote indicator
    h[0, :, 2] = -f["line_position"] / 40  # h of layer 0, cell 2 falls along the line
    ranked = rank_cells({"h": h, "c": c}, f, k=3)
    assert ranked["in_quotes"][0] == {"state": "c", "layer": 1, "cell": 7, "r": 1.0}
    best = ranked["line_position"][0]
    assert (best["state"], best["layer"], best["cell"]) == ("h", 0, 2) and best["r"] == -1.0
    assert all(len(v) == 3 for v in ranked.values())
    assert abs(ranked["in_quotes"][1]["r"]) < 0.5  # the rest is noise


def test_rank_cells_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"must be \(L, T, H\)"):
        rank_cells({"h": np.zeros((3, 4))}, {"x": np.zeros(3)})


def test_a_constant_feature_ranks_no_cells_and_says_why():
    tokens = list("plain text\nno marks at all\n" * 3)
    f = token_features(tokens, "char")
    h = np.random.default_rng(3).normal(size=(1, len(tokens), 4))
    ranked = rank_cells({"h": h}, f, k=3)
    assert ranked["in_quotes"] == [] and ranked["in_brackets"] == []
    assert len(ranked["line_position"]) == len(ranked["after_newline"]) == 3
    assert constant_notes(tokens, "char", f) == {"in_quotes": "no double quotes in this text",
                                                 "in_brackets": "no brackets in this text"}


def test_a_text_with_quotes_and_brackets_has_no_notes_and_ranks_cells():
    tokens = list(TEXT)
    f = token_features(tokens, "char")
    h = np.random.default_rng(4).normal(size=(2, len(tokens), 4))
    assert constant_notes(tokens, "char", f) == {}
    assert all(len(cells) == 5 for cells in rank_cells({"h": h}, f).values())


@pytest.mark.parametrize(("tokens", "want"), [
    (['"a', "b", "c"], {"in_quotes": "every token of this text is inside double quotes"}),
    (['""', "(x)", "y"], {"in_quotes": "no token of this text is inside double quotes",
                          "in_brackets": "no token of this text is inside brackets"}),
    (["<eos>", "<eos>", "<eos>"], {"line_position": "every token of this text starts a line"}),
    (["a", "b", "<eos>"], {"after_newline": "no token follows a newline in this text"}),
])
def test_constant_notes_tell_absent_marks_from_constant_features(tokens, want):
    notes = constant_notes(tokens, "word", token_features(tokens, "word"))
    assert {k: v for k, v in notes.items() if k in want} == want
    assert set(notes) >= set(want)
