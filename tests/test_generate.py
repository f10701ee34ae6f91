"""rnnlab.models.generate: sampling options, determinism, streaming, argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.data import Vocab
from rnnlab.models import LanguageModel
from rnnlab.models.generate import decoded_pieces, default_prime_ids, draw, next_probs, sample

V = 12
PRIME = [3, 1, 4, 1, 5]


@pytest.fixture(scope="module")
def model():
    """Weights of order one, so the next-token distributions are uneven but not one-hot."""
    return LanguageModel(V, cell="lstm", embed_size=8, hidden_size=8, num_layers=2,
                         init_range=1.0, dtype=np.float64, rng=np.random.default_rng(0))


def run(model, length=40, seed=0, prime=PRIME, **kw):
    return list(sample(model, prime, length, rng=np.random.default_rng(seed), **kw))


def manual_greedy(model, prime, length):
    """Greedy decoding the slow way: a full forward over everything so far, every step."""
    model.eval()
    ids = list(prime)
    for _ in range(length):
        logits, _ = model.forward(np.array(ids)[:, None])
        ids.append(int(np.argmax(logits[-1, 0])))
    model.train()
    return ids[len(prime):]


# ------------------------------------------------------------------- sequences


def test_same_seed_same_sequence(model):
    a, b = run(model, seed=7), run(model, seed=7)
    assert a == b and len(a) == 40 and all(0 <= v < V for v in a)
    assert run(model, seed=8) != a


def test_greedy_is_argmax_of_a_manual_forward(model):
    assert run(model, 15, greedy=True) == manual_greedy(model, PRIME, 15)


def test_top_k_1_and_tiny_top_p_are_greedy(model):
    greedy = run(model, 25, greedy=True)
    assert run(model, 25, seed=1, top_k=1) == greedy
    assert run(model, 25, seed=2, top_p=1e-9) == greedy


def test_low_temperature_approaches_greedy(model):
    assert run(model, 25, seed=3, temperature=1e-3) == run(model, 25, greedy=True)


def test_temperature_concentrates_or_spreads(model):
    """Share of tokens that are the argmax of their own step's distribution, by temperature."""
    def argmax_share(temperature):
        hits = 0
        for seed in range(4):
            ids = run(model, 50, seed=seed, temperature=temperature)
            greedy_next = manual_greedy_each(model, PRIME, ids)
            hits += sum(a == b for a, b in zip(ids, greedy_next, strict=True))
        return hits / 200

    cold, warm, hot = argmax_share(0.2), argmax_share(1.0), argmax_share(5.0)
    assert cold > warm > hot  # measured: 0.92, 0.29, 0.12 (1 / V = 0.08 is uniform)
    assert cold > 0.8 and hot < 0.2


def manual_greedy_each(model, prime, ids):
    """For each generated position, the argmax given the actual history."""
    model.eval()
    logits, _ = model.forward(np.array(list(prime) + ids)[:, None])
    model.train()
    return [int(v) for v in np.argmax(logits[len(prime) - 1:-1, 0], axis=-1)]


def test_skip_ids_never_emitted(model):
    common = np.bincount(run(model, 200, seed=4), minlength=V).argsort()[-3:]
    skip = [int(v) for v in common]
    for kw in ({}, {"greedy": True}, {"top_k": 2}, {"top_p": 0.5}, {"temperature": 3.0}):
        ids = run(model, 200, seed=5, skip_ids=skip, **kw)
        assert len(ids) == 200 and not set(ids) & set(skip), kw


def test_skip_everything_but_one(model):
    assert run(model, 10, skip_ids=[v for v in range(V) if v != 6]) == [6] * 10


def test_stop_id_ends_without_being_yielded(model):
    full = run(model, 60, seed=6)
    stop = full[10]
    first = full.index(stop)
    assert run(model, 60, seed=6, stop_id=stop) == full[:first]


def test_streams_lazily_and_restores_the_mode(model):
    dropout_model = LanguageModel(V, embed_size=8, hidden_size=8, dropout=0.5, init_range=1.0,
                                  dtype=np.float64, rng=np.random.default_rng(1))
    it = sample(dropout_model, PRIME, 5, greedy=True, rng=np.random.default_rng(0))
    assert dropout_model.training  # nothing has run yet
    first = next(it)
    assert not dropout_model.training  # eval: no dropout while generating
    rest = list(it)
    assert dropout_model.training
    assert [first, *rest] == manual_greedy(dropout_model, PRIME, 5)


def test_length_zero_and_one(model):
    assert run(model, 0) == []
    assert run(model, 1, greedy=True) == run(model, 9, greedy=True)[:1]


# ----------------------------------------------------------- the distribution


def test_next_probs_top_k_and_top_p():
    logits = np.log(np.array([0.05, 0.4, 0.1, 0.3, 0.15]))
    p = next_probs(logits)
    np.testing.assert_allclose(p, [0.05, 0.4, 0.1, 0.3, 0.15])
    np.testing.assert_allclose(next_probs(logits, top_k=2), [0, 0.4 / 0.7, 0, 0.3 / 0.7, 0])
    # smallest set with mass >= p: 0.4 + 0.3 = 0.7 covers 0.7 exactly, 0.71 needs 0.15 too
    assert np.count_nonzero(next_probs(logits, top_p=0.7)) == 2
    assert np.count_nonzero(next_probs(logits, top_p=0.71)) == 3
    assert np.count_nonzero(next_probs(logits, top_p=1.0)) == 5
    q = next_probs(logits, skip=np.array([1]))
    assert q[1] == 0 and np.isclose(q.sum(), 1)


def test_next_probs_temperature():
    logits = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    hot, one, cold = (next_probs(logits, temperature=t) for t in (10.0, 1.0, 0.1))
    assert hot.dtype == np.float64
    assert cold.max() > one.max() > hot.max()
    np.testing.assert_allclose(one, np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())


def test_draw_matches_the_distribution():
    p = np.array([0.5, 0.0, 0.2, 0.3, 0.0])
    rng = np.random.default_rng(0)
    counts = np.bincount([draw(p, rng) for _ in range(20000)], minlength=5)
    assert counts[1] == counts[4] == 0  # zero probability: never
    np.testing.assert_allclose(counts / 20000, p, atol=0.015)


# -------------------------------------------------------------------- errors


@pytest.mark.parametrize(("kw", "word"), [
    ({"temperature": 0.0}, "temperature"),
    ({"temperature": -1.0}, "temperature"),
    ({"top_k": 0}, "top_k"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"length": -1}, "length"),
    ({"prime": []}, "prime must contain at least one token"),
    ({"prime": [V]}, "prime"),
    ({"skip_ids": list(range(V))}, "skip_ids"),
    ({"skip_ids": [-1]}, "skip_ids"),
])
def test_bad_arguments_raise_before_iterating(model, kw, word):
    args = {"prime": PRIME, "length": 5, **kw}
    with pytest.raises(ValueError, match=word):
        sample(model, args.pop("prime"), args.pop("length"), rng=np.random.default_rng(0),
               **args)


# ------------------------------------------------- small vocabulary: table lookups


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_input_table_gives_the_same_logits_and_state(cell):
    """V <= E: forward_last with input_table() equals the embedding-then-projection path."""
    rng = np.random.default_rng(5)
    m = LanguageModel(6, cell=cell, embed_size=9, hidden_size=7, num_layers=2,
                      init_range=0.8, dtype=np.float64, rng=rng)  # every bias non-zero
    m.eval()
    ids = rng.integers(0, 6, size=(4, 3))
    state = m.init_state(3)
    state = tuple(s + 0.3 for s in state) if cell == "lstm" else state + 0.3
    want, want_state = m.forward_last(ids, state)
    got, got_state = m.forward_last(ids, state, table=m.input_table())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    pairs = zip(got_state, want_state, strict=True) if cell == "lstm" else [(got_state,
                                                                             want_state)]
    for g, w in pairs:
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_sampling_with_a_small_vocabulary_uses_the_table_and_matches_greedy():
    m = LanguageModel(5, cell="lstm", embed_size=8, hidden_size=6, num_layers=2,
                      init_range=1.0, dtype=np.float64, rng=np.random.default_rng(2))
    got = list(sample(m, [1, 2], 25, greedy=True, rng=np.random.default_rng(0)))
    assert got == manual_greedy(m, [1, 2], 25)


def test_input_table_refuses_training_mode_and_bad_ids():
    m = LanguageModel(5, embed_size=8, hidden_size=6, dtype=np.float64,
                      rng=np.random.default_rng(2))
    table = m.input_table()
    with pytest.raises(ValueError, match="eval"):
        m.forward_last(np.zeros((1, 1), dtype=np.int64), table=table)
    m.eval()
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        m.forward_last(np.full((1, 1), -1), table=table)
    logits, _ = m.forward_last(np.zeros((1, 1), dtype=np.int64), table=table)
    assert logits.shape == (1, 5)


def test_sampling_builds_the_input_table_once(monkeypatch):
    """E < V <= 2E: the forward would fuse the embedding; generation must not rebuild the
    (V, gates*H) table for every token."""
    m = LanguageModel(10, cell="lstm", embed_size=6, hidden_size=5, num_layers=2,
                      init_range=1.0, dtype=np.float64, rng=np.random.default_rng(2))
    calls = []
    build = m.rnn.input_table
    monkeypatch.setattr(m.rnn, "input_table", lambda E: calls.append(1) or build(E))
    got = list(sample(m, [1, 2], 20, greedy=True, rng=np.random.default_rng(0)))
    assert len(calls) == 1
    assert got == manual_greedy(m, [1, 2], 20)


def test_byte_prime_and_pieces_need_no_whole_character():
    """A byte vocabulary of "é" only (0xc3, 0xa9; no newline): the default prime is an id, not
    text (text would be U+FFFD, whose bytes the vocabulary lacks), and a character split over
    two sampled bytes is printed whole, once."""
    vocab = Vocab.build("é" * 10, "byte")
    assert default_prime_ids(vocab) == [0]
    c3, a9 = vocab.tokens.index("\xc3"), vocab.tokens.index("\xa9")
    assert "".join(decoded_pieces(vocab, [c3, a9, c3, a9])) == "éé"
    assert list(decoded_pieces(vocab, [c3, a9])) == ["", "é", ""]
    assert "".join(decoded_pieces(vocab, [a9, c3])) == "\ufffd\ufffd"  # as Vocab.decode


@pytest.mark.parametrize("level,text,first", [("char", "ab\nab", "\n"), ("char", "ab", "a"),
                                               ("word", "a b\nb a", "\n")])
def test_default_prime_is_a_newline_or_the_first_token(level, text, first):
    vocab = Vocab.build(text, level)
    assert vocab.decode(default_prime_ids(vocab)) == first
