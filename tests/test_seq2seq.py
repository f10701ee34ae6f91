"""Seq2Seq: gradient checks of every option, padding, decoding, bad inputs, a training run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from seq_tasks import batch, digit_strings, train

from rnnlab.models import Seq2Seq
from rnnlab.models._source_encoder import reverse_within
from rnnlab.nn import gradcheck

VS, VT, E, H = 5, 6, 3, 4
BOS, EOS = 0, 1
OPTIONS = {
    "plain": {},
    "reverse": {"reverse_source": True},
    "peeky": {"peeky": True},
    "dot": {"attention": "dot"},
    "additive": {"attention": "additive"},
    "all": {"reverse_source": True, "peeky": True, "attention": "additive"},
}


def make(cell="lstm", dtype=np.float64, seed=0, num_layers=1, **options):
    """Every parameter ~ U(-1, 1): large enough that the attention weights differ clearly
    (with the default init they are near uniform and their gradients ~1e-5, near the
    central differences' noise)."""
    rng = np.random.default_rng(seed)
    model = Seq2Seq(VS, VT, cell=cell, embed_size=E, hidden_size=H, num_layers=num_layers,
                    dtype=dtype, rng=rng, **options)
    for p in model.named_params().values():
        p.value[...] = rng.uniform(-1, 1, p.shape)
    return model


def tiny_batch(seed=1):
    """Three pairs of different source and target lengths (padding in both)."""
    rng = np.random.default_rng(seed)
    sources = [rng.integers(0, VS, n) for n in (4, 2, 3)]
    targets = [rng.integers(2, VT, n) for n in (2, 0, 1)]
    return batch(sources, targets, BOS, EOS)


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradcheck(cell, option):
    """Every parameter, through the logits of a padded batch (L = <G, logits>)."""
    model = make(cell, **OPTIONS[option])
    src, sl, tin, _, _ = tiny_batch()
    errors = gradcheck.check_module(model, lambda: model.forward(src, sl, tin),
                                    lambda g: model.backward(g) or {}, {},
                                    rng=np.random.default_rng(2))
    assert len(errors) == len(model.named_params())
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("option", ["plain", "reverse", "dot"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_looked_up_inputs_are_the_embedding_then_the_projection(cell, option, monkeypatch):
    """Small vocabularies fuse each embedding into its layer 0 (models/_looked_up.py): the
    same logits and every gradient as the embedding followed by the input projection, and
    that plain path's own gradients check out (the tests above run the fused one)."""
    model = make(cell, **OPTIONS[option])
    assert model.looks_up_inputs() and model.encoder.looks_up_inputs()
    src, sl, tin, _, _ = tiny_batch()
    G = np.random.default_rng(3).standard_normal((*tin.shape, VT))

    def run():
        model.zero_grad()
        logits = model.forward(src, sl, tin)
        model.backward(G)
        return logits, {k: p.grad.copy() for k, p in model.named_params().items()}

    fused_logits, fused_grads = run()
    for m in (model, model.encoder):
        monkeypatch.setattr(m, "looks_up_inputs", lambda: False)
    logits, grads = run()
    np.testing.assert_allclose(logits, fused_logits, rtol=1e-12, atol=1e-12)
    for k, g in grads.items():
        np.testing.assert_allclose(g, fused_grads[k], rtol=1e-10, atol=1e-12, err_msg=k)
    errors = gradcheck.check_module(model, lambda: model.forward(src, sl, tin),
                                    lambda g: model.backward(g) or {}, {},
                                    rng=np.random.default_rng(2))
    assert max(errors.values()) < 1e-6, errors


def test_which_models_look_their_inputs_up():
    """V <= 2E (and <= 256) fuses; a larger vocabulary, a peeky decoder (its input holds
    the peek) or a bidirectional encoder (the table is one-way) does not."""
    rng = np.random.default_rng(0)
    assert Seq2Seq(8, 8, embed_size=4, rng=rng).looks_up_inputs()
    big = Seq2Seq(9, 9, embed_size=4, rng=rng)
    assert not big.looks_up_inputs() and not big.encoder.looks_up_inputs()
    assert not Seq2Seq(8, 8, embed_size=4, peeky=True, rng=rng).looks_up_inputs()
    assert not Seq2Seq(8, 8, embed_size=4, bidirectional=True, rng=rng).encoder.looks_up_inputs()


@pytest.mark.parametrize("options", [
    {"cell": "gru", "attention": "dot"},
    {"cell": "lstm", "num_layers": 2, "peeky": True, "attention": "dot", "reverse_source": True},
], ids=["gru-dot", "lstm-2layers-all"])
def test_gradcheck_masked_loss(options):
    """Through the loss, whose mask leaves out the padded target steps."""
    model = make(**options)
    data = tiny_batch()
    errors = gradcheck.check_module(
        model, lambda: model.loss(*data),
        lambda g: model.backward(model.criterion.backward(float(g))) or {}, {},
        rng=np.random.default_rng(2))
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("option", list(OPTIONS))
def test_padding_changes_nothing(option):
    """Each pair's logits alone equal its column of the padded batch; pad ids are ignored."""
    model = make("gru", **OPTIONS[option])
    src, sl, tin, tout, tl = tiny_batch()
    logits = model.forward(src, sl, tin)
    for n in range(src.shape[1]):
        alone = model.forward(src[:sl[n], n:n + 1], sl[n:n + 1], tin[:tl[n], n:n + 1])
        np.testing.assert_allclose(alone[:, 0], logits[:tl[n], n], rtol=0, atol=1e-12)
    src2 = src.copy()
    src2[src2.shape[0] - 1, 1] = VS - 1  # a pad position of sequence 1 (length 2 of 4)
    np.testing.assert_allclose(model.forward(src2, sl, tin), logits, rtol=0, atol=1e-12)


def test_reverse_within_own_length():
    src = np.array([[1, 5, 7], [2, 6, 8], [3, 0, 9], [4, 0, 0]])
    out = reverse_within(src, np.array([4, 2, 3]))
    np.testing.assert_array_equal(out, [[4, 6, 9], [3, 5, 8], [2, 0, 7], [1, 0, 0]])


def trained_reverser(seed=0, steps=300, **options):
    """A GRU with dot attention trained to reverse digit strings (targets: 2 + digit)."""
    model = Seq2Seq(10, 12, cell="gru", embed_size=16, hidden_size=32, dtype=np.float64,
                    rng=np.random.default_rng(seed), **options)

    def make_batch(rng):
        sources = digit_strings(rng, 32)
        return batch(sources, [[2 + d for d in s[::-1]] for s in sources], BOS, EOS)

    first, last = train(model, make_batch, steps, 1e-2, np.random.default_rng(seed + 1))
    return model, first, last


@pytest.fixture(scope="module")
def reverser():
    return trained_reverser(attention="dot")


def test_learns_to_reverse(reverser):
    """Exact match on held-out strings: chance is below 1e-1 ** 1 (one digit right)."""
    model, first, last = reverser
    assert last < first / 4
    sources = digit_strings(np.random.default_rng(99), 200)
    src, sl, *_ = batch(sources, sources, BOS, EOS)
    out = model.greedy(src, sl, bos_id=BOS, eos_id=EOS, max_length=8)
    wanted = [[2 + d for d in s[::-1]] + [EOS] for s in sources]
    exact = np.mean([list(t) == w for t, w in zip(out.tokens, wanted, strict=True)])
    assert exact > 0.5, exact


def test_greedy_equals_beam_of_one_and_scores_agree(reverser):
    model, *_ = reverser
    sources = digit_strings(np.random.default_rng(5), 20, 1, 7)
    src, sl, *_ = batch(sources, sources, BOS, EOS)
    g = model.greedy(src, sl, bos_id=BOS, eos_id=EOS, max_length=9)
    b = model.beam_search(src, sl, bos_id=BOS, eos_id=EOS, max_length=9, beam_size=1)
    for tg, tb, ag, ab in zip(g.tokens, b.tokens, g.attention, b.attention, strict=True):
        np.testing.assert_array_equal(tg, tb)
        np.testing.assert_allclose(ag, ab, rtol=0, atol=1e-12)
    np.testing.assert_allclose(g.log_probs, b.log_probs, rtol=0, atol=1e-9)
    rescored = model.sequence_log_probs(src, sl, g.tokens, bos_id=BOS)
    np.testing.assert_allclose(g.log_probs, rescored, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_beam_is_at_least_as_likely_as_greedy(reverser, seed):
    """On the trained model and on an untrained one, for every source in the batch."""
    model = reverser[0] if seed == 0 else Seq2Seq(10, 12, cell="lstm", attention="additive",
                                                  dtype=np.float64, rng=np.random.default_rng(3))
    sources = digit_strings(np.random.default_rng(7), 20, 1, 7)
    src, sl, *_ = batch(sources, sources, BOS, EOS)
    g = model.greedy(src, sl, bos_id=BOS, eos_id=EOS, max_length=9)
    b = model.beam_search(src, sl, bos_id=BOS, eos_id=EOS, max_length=9, beam_size=4)
    assert np.all(b.log_probs >= g.log_probs - 1e-9)
    rescored = model.sequence_log_probs(src, sl, b.tokens, bos_id=BOS)
    np.testing.assert_allclose(b.log_probs, rescored, rtol=0, atol=1e-9)
    for n, w in enumerate(b.attention):
        assert w.shape == (len(b.tokens[n]), src.shape[0])
        assert np.all(w[:, sl[n]:] == 0)


def test_config_round_trip():
    model = make("gru", peeky=True, attention="additive", reverse_source=True)
    cfg = json.loads(json.dumps(model.config()))
    again = Seq2Seq.from_config(cfg, np.random.default_rng(0))
    assert again.config() == cfg
    assert {n: p.shape for n, p in again.named_params().items()} == {
        n: p.shape for n, p in model.named_params().items()}
    with pytest.raises(ValueError, match="unknown model configuration key 'heads'"):
        Seq2Seq.from_config({**cfg, "heads": 2}, np.random.default_rng(0))


@pytest.mark.parametrize("call, message", [
    (lambda m, s, sl, t: m.forward(s[:, 0], sl, t), r"\(S, N\) integer array"),
    (lambda m, s, sl, t: m.forward(s, sl[:2], t), "3 integers"),
    (lambda m, s, sl, t: m.forward(s, np.array([4, 0, 3]), t), r"\[1, S=4\]"),
    (lambda m, s, sl, t: m.forward(s, np.array([5, 1, 3]), t), r"\[1, S=4\]"),
    (lambda m, s, sl, t: m.forward(s + VS, sl, t), r"ids must lie in \[0, 5\)"),
    (lambda m, s, sl, t: m.forward(s, sl, t + VT), r"ids must lie in \[0, 6\)"),
    (lambda m, s, sl, t: m.forward(s, sl, t[:, :2]), r"\(T, N=3\)"),
    (lambda m, s, sl, t: m.loss(s, sl, t, t, np.array([1, 1])), "target lengths must be 3"),
    (lambda m, s, sl, t: m.greedy(s, sl, bos_id=VT, eos_id=1, max_length=3), "bos_id"),
    (lambda m, s, sl, t: m.greedy(s, sl, bos_id=0, eos_id=1, max_length=0), "max_length"),
    (lambda m, s, sl, t: m.beam_search(s, sl, bos_id=0, eos_id=1, max_length=3, beam_size=0),
     "beam_size"),
])
def test_bad_inputs(call, message):
    model = make("lstm", attention="dot")
    src, sl, tin, _, _ = tiny_batch()
    with pytest.raises(ValueError, match=message):
        call(model, src, sl, tin)


def test_bad_construction():
    with pytest.raises(ValueError, match="attention must be"):
        make(attention="general")
    with pytest.raises(ValueError, match="cell must be one of"):
        make("transformer")
    with pytest.raises(ValueError, match="backward called before forward"):
        make().backward(np.zeros((1, 1, VT)))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("option", ["plain", "peeky", "additive"])
def test_bidirectional_encoder(cell, option):
    """The sum of the two directions (states and keys): gradients and padding."""
    model = make(cell, bidirectional=True, **OPTIONS[option])
    assert model.encoder.bidirectional
    src, sl, tin, _, _ = tiny_batch()
    errors = gradcheck.check_module(model, lambda: model.forward(src, sl, tin),
                                    lambda g: model.backward(g) or {}, {},
                                    rng=np.random.default_rng(2))
    assert max(errors.values()) < 1e-6, errors
    keys, s = model.encoder.forward(src, sl)
    y, s2 = model.encoder.rnn.forward(model.encoder.embedding.forward(src), None, sl)
    h, h2 = (s[0], s2[0]) if cell == "lstm" else (s, s2)
    np.testing.assert_allclose(keys, y[..., :H] + y[..., H:], rtol=0, atol=1e-12)
    np.testing.assert_allclose(h, h2[0::2] + h2[1::2], rtol=0, atol=1e-12)
    logits = model.forward(src, sl, tin)
    alone = model.forward(src[:sl[1], 1:2], sl[1:2], tin[:, 1:2])
    np.testing.assert_allclose(alone[:, 0], logits[:, 1], rtol=0, atol=1e-12)
