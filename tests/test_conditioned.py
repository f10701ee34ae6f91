"""ConditionedGenerator: gradient checks, masking, generation, bad inputs, a training run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from seq_tasks import batch, train

from rnnlab.models import ConditionedGenerator
from rnnlab.nn import gradcheck

V, F, E, H, N = 6, 3, 3, 4, 3
BOS, EOS = 0, 1
CELLS = pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])


def make(cell="lstm", num_layers=1, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    model = ConditionedGenerator(V, F, cell=cell, embed_size=E, hidden_size=H,
                                 num_layers=num_layers, dtype=dtype, rng=rng)
    for p in model.named_params().values():
        p.value[...] = rng.uniform(-1, 1, p.shape)
    return model


def tiny_batch(seed=1):
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((N, F))
    _, _, ids, targets, lengths = batch([[0]] * N, [rng.integers(2, V, n) for n in (3, 0, 1)],
                                        BOS, EOS)
    return features, ids, targets, lengths


@CELLS
@pytest.mark.parametrize("num_layers", [1, 2])
def test_gradcheck(cell, num_layers):
    """Every parameter and the features, through the logits."""
    model = make(cell, num_layers)
    f, ids, _, _ = tiny_batch()
    errors = gradcheck.check_module(model, lambda: model.forward(f, ids),
                                    lambda g: {"features": model.backward(g)},
                                    {"features": f}, rng=np.random.default_rng(2))
    assert len(errors) == len(model.named_params()) + 1
    assert max(errors.values()) < 1e-6, errors


@CELLS
def test_gradcheck_masked_loss(cell):
    model = make(cell)
    f, ids, targets, lengths = tiny_batch()
    errors = gradcheck.check_module(
        model, lambda: model.loss(f, ids, targets, lengths),
        lambda g: {"features": model.backward(model.criterion.backward(float(g)))},
        {"features": f}, rng=np.random.default_rng(2))
    assert max(errors.values()) < 1e-6, errors


def test_initial_state():
    """h_0 = tanh(W f + b) for every layer, c_0 = 0."""
    model = make("lstm", num_layers=2)
    f, _, _, _ = tiny_batch()
    h0, c0 = model.initial_state(f)
    a = f @ model.init.weight.value.T + model.init.bias.value  # (N, L*H)
    np.testing.assert_allclose(h0[1], np.tanh(a[:, H:]), rtol=0, atol=1e-12)
    assert np.all(c0 == 0)


def test_padded_targets_change_nothing():
    model = make("gru")
    f, ids, targets, lengths = tiny_batch()
    loss = model.loss(f, ids, targets, lengths)
    ids2, targets2 = ids.copy(), targets.copy()
    ids2[2:, 1], targets2[1:, 1] = V - 1, V - 1  # past sequence 1's single step
    assert abs(model.loss(f, ids2, targets2, lengths) - loss) < 1e-12


def test_generate_greedy_and_sampling():
    model = make("lstm")
    f, _, _, _ = tiny_batch()
    g = model.generate(f, 5, BOS, EOS)
    assert len(g.tokens) == N and g.attention is None
    for t in g.tokens:
        assert 1 <= len(t) <= 5 and (t[-1] == EOS or len(t) == 5) and EOS not in t[:-1]
    s1 = model.generate(f, 5, BOS, EOS, greedy=False, rng=np.random.default_rng(4))
    s2 = model.generate(f, 5, BOS, EOS, greedy=False, rng=np.random.default_rng(4))
    for a, b in zip(s1.tokens, s2.tokens, strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.all(s1.log_probs <= 0)


def test_learns_to_name_classes():
    """Four one-hot classes, each named by its own 3-5 token word; chance: 1/4^4 or less."""
    names = [[2, 3, 4], [5, 4, 3, 2], [3, 3, 5, 5, 2], [4, 2]]
    model = ConditionedGenerator(V, 4, cell="gru", embed_size=8, hidden_size=16,
                                 dtype=np.float64, rng=np.random.default_rng(0))

    def make_batch(rng):
        classes = rng.integers(0, 4, 16)
        _, _, ids, targets, lengths = batch([[0]] * 16, [names[c] for c in classes], BOS, EOS)
        return np.eye(4)[classes], ids, targets, lengths

    first, last = train(model, make_batch, 150, 2e-2, np.random.default_rng(1))
    assert last < first / 10
    out = model.generate(np.eye(4), 8, BOS, EOS)
    assert [list(t) for t in out.tokens] == [n + [EOS] for n in names]


def test_config_round_trip():
    model = make("gru", num_layers=2)
    cfg = json.loads(json.dumps(model.config()))
    again = ConditionedGenerator.from_config(cfg, np.random.default_rng(0))
    assert again.config() == cfg
    with pytest.raises(ValueError, match="lacks 'feature_size'"):
        ConditionedGenerator.from_config({"vocab_size": 3}, np.random.default_rng(0))


@pytest.mark.parametrize("call, message", [
    (lambda m, f, i, t: m.forward(f[:, :2], i), r"shape \(N, 3\)"),
    (lambda m, f, i, t: m.forward(f[0], i), "2 dimensions"),
    (lambda m, f, i, t: m.forward(f, i[:, :2]), r"\(T, N=3\)"),
    (lambda m, f, i, t: m.forward(f, i + V), r"ids must lie in \[0, 6\)"),
    (lambda m, f, i, t: m.loss(f, i, t, np.array([9, 1, 1])), r"\[0, T=4\]"),
    (lambda m, f, i, t: m.loss(f, i, t + V), "targets must lie"),
    (lambda m, f, i, t: m.generate(f, 3, BOS, EOS, greedy=False), "needs rng"),
    (lambda m, f, i, t: m.generate(f, 3, BOS, V), "eos_id"),
])
def test_bad_inputs(call, message):
    model = make()
    f, ids, targets, _ = tiny_batch()
    with pytest.raises(ValueError, match=message):
        call(model, f, ids, targets)
