"""The glue of rnnlab.inspect.model: gradient norms by distance against central differences
through the reference cells, windows, and reading a text in chunks."""

import numpy as np
import pytest

from rnnlab.inspect.model import read_text, softmax, state_grad_norms, windows
from rnnlab.models import LanguageModel
from rnnlab.nn import reference as ref

V, E, H, T = 7, 5, 4, 6


def last_step_loss(model, ids, target, t_hit, which, delta):
    """Loss at the last step, one window, with ``delta`` added to h_t or c_t of step t_hit
    (c: h_t recomputed as o tanh(c_t), so the path through h_t counts too)."""
    p = ref.layer_params(model.rnn, 0)
    h, c = np.zeros((1, H)), np.zeros((1, H))
    W = model.embedding.weight.value
    for t in range(T):
        h, c, cache = ref.lstm_step(W[ids[t]][None], h, c, p)
        if t == t_hit and which == "c":
            c = c + delta
            h = cache[6] * np.tanh(c)  # o_t tanh(c_t)
        elif t == t_hit:
            h = h + delta
    logits = h @ model.decoder.weight.value.T + model.decoder.bias.value
    return -np.log(softmax(logits)[0, target])


def test_lstm_h_and_c_norms_match_central_differences():
    model = LanguageModel(V, cell="lstm", embed_size=E, hidden_size=H, dtype=np.float64,
                          rng=np.random.default_rng(3), forget_bias=0.5)
    rng = np.random.default_rng(4)
    ids, target = rng.integers(0, V, size=T), int(rng.integers(0, V))
    curves = state_grad_norms(model, ids.reshape(T, 1), np.array([target]), "lstm")
    assert set(curves) == {"lstm h", "lstm c"}
    eps = 1e-6
    for which in "hc":
        for t in range(T):
            g = np.zeros(H)
            for j in range(H):
                d = np.zeros((1, H))
                d[0, j] = eps
                g[j] = (last_step_loss(model, ids, target, t, which, d)
                        - last_step_loss(model, ids, target, t, which, -d)) / (2 * eps)
            assert curves[f"lstm {which}"][T - 1 - t] == pytest.approx(np.linalg.norm(g),
                                                                       rel=1e-6, abs=1e-12)


def test_windows_are_evenly_spaced_with_the_next_token_as_target():
    ids = np.arange(100)
    x, y = windows(ids, 10, 4)
    assert x.shape == (10, 4) and y.tolist() == (x[-1] + 1).tolist()
    assert x[0, 0] == 0 and y[-1] == 99
    with pytest.raises(ValueError, match="too short"):
        windows(np.arange(10), 10, 2)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_reading_a_text_in_chunks_equals_one_pass(cell, monkeypatch):
    model = LanguageModel(V, cell=cell, embed_size=E, hidden_size=H, num_layers=2,
                          dtype=np.float64, rng=np.random.default_rng(0))
    ids = np.random.default_rng(1).integers(0, V, size=50)
    whole = read_text(model, ids, gates=True)
    monkeypatch.setattr("rnnlab.inspect.model.CHUNK", 7)
    parts = read_text(model, ids, gates=True)
    np.testing.assert_allclose(parts[0], whole[0], rtol=1e-10)
    assert parts[0].shape == (50, V)
    for name in whole[1]:
        assert parts[1][name].shape == (2, 50, H)
        np.testing.assert_allclose(parts[1][name], whole[1][name], rtol=1e-10, atol=1e-14)
    for a, b in zip(parts[2], whole[2], strict=True):
        for g in b:
            assert a[g].shape == (50, 1, H)
            np.testing.assert_allclose(a[g], b[g], rtol=1e-10, atol=1e-14)
