"""A layer's public view of its last passes (states, gate_values, state_grads), against the
reference cells of ``nn/reference.py`` run in a plain loop; and the LSTM's forget bias."""

import numpy as np
import pytest

from rnnlab import GRU, LSTM, RNN
from rnnlab.nn import reference as ref

T, N, D, H = 5, 3, 4, 6
CELLS = {
    "rnn_tanh": lambda L, rng: RNN(D, H, L, dtype=np.float64, rng=rng),
    "rnn_relu": lambda L, rng: RNN(D, H, L, nonlinearity="relu", dtype=np.float64, rng=rng),
    "lstm": lambda L, rng: LSTM(D, H, L, dtype=np.float64, rng=rng),
    "lstm_peephole": lambda L, rng: LSTM(D, H, L, peephole=True, dtype=np.float64, rng=rng),
    "gru": lambda L, rng: GRU(D, H, L, dtype=np.float64, rng=rng),
}


def ref_step(layer, x, state, p):
    if isinstance(layer, LSTM):
        h, c, cache = ref.lstm_step(x, *state, p)
        i, f, g, o = cache[3:7]
        return (h, c), cache, {"i": i, "f": f, "g": g, "o": o}
    if isinstance(layer, GRU):
        h, cache = ref.gru_step(x, state[0], p)
        return (h,), cache, dict(zip("rzn", cache[2:5], strict=True))
    h, cache = ref.rnn_step(x, state[0], p, layer.nonlinearity)
    return (h,), cache, {}


def ref_step_back(layer, ds, cache, p):
    if isinstance(layer, LSTM):
        dx, dh, dc, _ = ref.lstm_step_backward(*ds, cache, p)
        return dx, (dh, dc)
    back = ref.gru_step_backward if isinstance(layer, GRU) else ref.rnn_step_backward
    dx, dh, _ = back(ds[0], cache, p)
    return dx, (dh,)


def reference(layer, x, dy):
    """States, gates and the state gradient entering each step, by the plain loop."""
    S = len(layer.state_names)
    states = np.zeros((S, layer.num_layers, T, N, H))
    gates, caches, inp = [], [], x
    for k in range(layer.num_layers):
        p, s, gk, ck = ref.layer_params(layer, k), tuple(np.zeros((N, H)) for _ in range(S)), [], []
        for t in range(T):
            s, cache, g = ref_step(layer, inp[t], s, p)
            states[:, k, t] = s
            gk.append(g)
            ck.append(cache)
        gates.append({n: np.stack([g[n] for g in gk]) for n in gk[0]})
        caches.append(ck)
        inp = states[0, k]
    grads = np.zeros_like(states)
    d_in = dy
    for k in reversed(range(layer.num_layers)):
        p, ds, dx = ref.layer_params(layer, k), tuple(np.zeros((N, H)) for _ in range(S)), []
        for t in reversed(range(T)):
            ds = (ds[0] + d_in[t], *ds[1:])
            grads[:, k, t] = ds
            dxt, ds = ref_step_back(layer, ds, caches[k][t], p)
            dx.append(dxt)
        d_in = np.stack(dx[::-1])
    return states, gates, grads


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", list(CELLS))
def test_states_gates_and_state_grads_match_the_reference_loop(cell, layers):
    rng = np.random.default_rng(5)
    layer = CELLS[cell](layers, rng)
    x, dy = rng.standard_normal((T, N, D)), rng.standard_normal((T, N, H))
    y, _ = layer(x)
    layer.backward(dy, keep_state_grads=True)
    want_states, want_gates, want_grads = reference(layer, x, dy)
    got = layer.states()
    assert list(got) == list(layer.state_names)
    for s, name in enumerate(layer.state_names):
        np.testing.assert_allclose(got[name], want_states[s], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(layer.state_grads()[name], want_grads[s], rtol=1e-10,
                                   atol=1e-13)
    if isinstance(layer, RNN):
        with pytest.raises(ValueError, match="no gates"):
            layer.gate_values()
    else:
        got_gates = layer.gate_values()
        assert len(got_gates) == layers
        for g, w in zip(got_gates, want_gates, strict=True):
            assert list(g) == list(w)  # gate order i, f, g, o / r, z, n
            for n in w:
                np.testing.assert_allclose(g[n], w[n], rtol=1e-12, atol=1e-14)


def test_views_are_copies_and_state_grads_need_asking():
    layer = LSTM(D, H, 2, dtype=np.float64, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="call it first"):
        layer.states()
    x = np.random.default_rng(1).standard_normal((T, N, D))
    y, _ = layer(x)
    states, gates = layer.states(), layer.gate_values()
    states["h"][...] = 7.0
    gates[0]["f"][...] = 7.0
    assert not np.any(layer.states()["h"] == 7.0) and not np.any(layer.gate_values()[0]["f"] == 7)
    layer.backward(np.ones_like(y))
    with pytest.raises(ValueError, match="keep_state_grads=True"):
        layer.state_grads()
    with pytest.raises(ValueError, match="truncate=None"):
        layer.backward(np.ones_like(y), truncate=2, keep_state_grads=True)
    layer(x)
    layer.backward(np.ones_like(y), keep_state_grads=True)
    kept = layer.state_grads()
    layer.backward(2 * np.ones_like(y), keep_state_grads=True)
    np.testing.assert_allclose(layer.state_grads()["h"], 2 * kept["h"], rtol=1e-12)


def test_state_grads_after_backward_rows():
    rng = np.random.default_rng(2)
    layer = GRU(D, H, 1, dtype=np.float64, rng=rng)
    E = rng.standard_normal((7, D))
    ids = rng.integers(0, 7, size=(T, N))
    y, _ = layer.forward_rows(layer.input_table(E), ids)
    dy = rng.standard_normal(y.shape)
    layer.backward_rows(dy, keep_state_grads=True)
    rows = layer.state_grads()["h"]
    layer(E[ids])
    layer.backward(dy, keep_state_grads=True)
    np.testing.assert_allclose(rows, layer.state_grads()["h"], rtol=1e-10)


def test_states_past_a_sequence_end_are_held():
    layer = RNN(D, H, dtype=np.float64, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((T, N, D))
    layer(x, lengths=np.array([T, 2, 0]))
    h = layer.states()["h"][0]  # (T, N, H)
    assert np.all(h[2:, 1] == h[1, 1]) and np.all(h[:, 2] == 0)


@pytest.mark.parametrize("layers", [1, 3])
def test_forget_bias_sets_the_f_block_of_the_bias_sum(layers):
    plain = LSTM(D, H, layers, rng=np.random.default_rng(0))
    lstm = LSTM(D, H, layers, forget_bias=1.0, rng=np.random.default_rng(0))
    for k in range(layers):
        b = {n: p.value for n, p in lstm.named_params().items() if n.endswith(f"_l{k}")}
        b0 = {n: p.value for n, p in plain.named_params().items() if n.endswith(f"_l{k}")}
        total = b[f"bias_ih_l{k}"] + b[f"bias_hh_l{k}"]
        np.testing.assert_array_equal(total[H:2 * H], 1.0)
        for name in (f"bias_ih_l{k}", f"bias_hh_l{k}"):  # the other gates: PyTorch's draw
            np.testing.assert_array_equal(np.delete(b[name], np.s_[H:2 * H]),
                                          np.delete(b0[name], np.s_[H:2 * H]))
        np.testing.assert_array_equal(b[f"weight_hh_l{k}"], b0[f"weight_hh_l{k}"])
    x = np.zeros((1, 1, D), np.float32)
    lstm(x)
    assert np.allclose(lstm.gate_values()[0]["f"], 1 / (1 + np.exp(-1.0)), atol=1e-6)
    assert "forget_bias=1.0" in repr(lstm)
    with pytest.raises(ValueError, match="bias=True"):
        LSTM(D, H, bias=False, forget_bias=1.0, rng=np.random.default_rng(0))
