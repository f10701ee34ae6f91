"""The fast layers equal a plain Python loop over the reference cells (``nn/reference.py``).

The loop below runs ``reference.*_step`` over time and layers (holding a sequence's state
past its length, as the layers do) and backpropagates with ``reference.*_step_backward``.
Truncation is done the plain way: the gradient arriving at step s (from y_s, and from the
final state when s = T-1) goes back through the whole stack over steps s, s-1, ..., s-k
only, and reaches the initial state only when s - k < 0. Outputs, final states, the input
and initial-state gradients and every parameter gradient must agree to a relative 1e-12
(float64; only the order of summation differs).
"""

import numpy as np
import pytest

from rnnlab import GRU, LSTM, RNN
from rnnlab.nn import reference as ref

T, N, D, H = 6, 3, 4, 5
CELLS = {
    "rnn_tanh": lambda L, rng: RNN(D, H, L, dtype=np.float64, rng=rng),
    "rnn_relu": lambda L, rng: RNN(D, H, L, nonlinearity="relu", dtype=np.float64, rng=rng),
    "lstm": lambda L, rng: LSTM(D, H, L, dtype=np.float64, rng=rng),
    "lstm_peephole": lambda L, rng: LSTM(D, H, L, peephole=True, dtype=np.float64, rng=rng),
    "gru": lambda L, rng: GRU(D, H, L, dtype=np.float64, rng=rng),
    "gru_nobias": lambda L, rng: GRU(D, H, L, bias=False, dtype=np.float64, rng=rng),
}


def step(layer, x, state, p):
    """One reference step: (new state tuple, cache)."""
    if isinstance(layer, LSTM):
        h, c, cache = ref.lstm_step(x, *state, p)
        return (h, c), cache
    if isinstance(layer, GRU):
        h, cache = ref.gru_step(x, state[0], p)
    else:
        h, cache = ref.rnn_step(x, state[0], p, layer.nonlinearity)
    return (h,), cache


def step_backward(layer, dstate, cache, p):
    """One reference step back: (dx, dstate_prev tuple, grads)."""
    if isinstance(layer, LSTM):
        dx, dh, dc, grads = ref.lstm_step_backward(*dstate, cache, p)
        return dx, (dh, dc), grads
    back = ref.gru_step_backward if isinstance(layer, GRU) else ref.rnn_step_backward
    dx, dh, grads = back(dstate[0], cache, p)
    return dx, (dh,), grads


def loop_forward(layer, x, s0, mask):
    """Reference forward over time and layers: top outputs, final states, caches[j][t]."""
    caches, inp, finals = [], x, []
    for j in range(layer.num_layers):
        p, state, outs, cj = ref.layer_params(layer, j), s0[j], [], []
        for t in range(T):
            new, cache = step(layer, inp[t], state, p)
            state = tuple(np.where(mask[t], a, b) for a, b in zip(new, state, strict=True))
            outs.append(state)
            cj.append(cache)
        caches.append(cj)
        finals.append(state)
        inp = [s[0] for s in outs]  # the next layer reads h_t (held past an end)
    return outs, finals, caches


def loop_backward(layer, caches, mask, dys, ds_final, hi, lo, grads):
    """Steps hi..lo of every layer: dys {t: (dh, dc or None)} enter the top layer, ds_final
    (or None) enters each layer's state at hi. Adds into grads; returns dx {t} and the
    gradient reaching each layer's state before step lo."""
    d_in, entry = dys, [None] * layer.num_layers
    for j in reversed(range(layer.num_layers)):
        p, dx_j = ref.layer_params(layer, j), {}
        ds = zero_state(layer) if ds_final is None else ds_final[j]
        for t in range(hi, lo - 1, -1):
            dh, dc = d_in.get(t, (0.0, None))
            ds = (ds[0] + dh, *((ds[1] if dc is None else ds[1] + dc,) if len(ds) == 2 else ()))
            dx, dprev, g = step_backward(layer, tuple(d * mask[t] for d in ds), caches[j][t], p)
            ds = tuple(a + d * ~mask[t] for a, d in zip(dprev, ds, strict=True))  # held part
            dx_j[t] = (dx, None)
            for name, v in g.items():
                grads[f"{name}_l{j}"] += v
        d_in, entry[j] = dx_j, ds
    return {t: d[0] for t, d in d_in.items()}, entry


def zero_state(layer):
    return tuple(np.zeros((N, H)) for _ in layer.state_names)


def reference_run(layer, x, s0, lengths, dy, dcy, ds, truncate):
    """y, final states, dx, initial-state gradients and parameter gradients, by the loop."""
    lengths = np.full(N, T) if lengths is None else lengths
    mask = np.arange(T)[:, None, None] < lengths[None, :, None]  # (T, N, 1)
    outs, finals, caches = loop_forward(layer, x, s0, mask)
    y = tuple(np.stack([o[i] for o in outs]) * mask for i in range(len(layer.state_names)))
    grads = {n: np.zeros_like(p.value) for n, p in layer.named_params().items()}
    dx, ds0 = np.zeros_like(x), [zero_state(layer) for _ in s0]
    dys = {t: (dy[t] * mask[t], None if dcy is None else dcy[t] * mask[t]) for t in range(T)}
    k = T if truncate is None else truncate
    if truncate is None:  # one window: all of the gradient through all the steps
        windows = [(T - 1, 0, dys)]
    else:  # one window per loss step s: steps s..s-k
        windows = [(s, max(0, s - k), {s: dys[s]}) for s in range(T)]
    for hi, lo, src in windows:
        final = ds if hi == T - 1 else None
        dxw, entry = loop_backward(layer, caches, mask, src, final, hi, lo, grads)
        for t, v in dxw.items():
            dx[t] += v
        if hi - k < 0:  # reached the initial state within k steps
            ds0 = [tuple(a + b for a, b in zip(s, e, strict=True))
                   for s, e in zip(ds0, entry, strict=True)]
    return y, finals, dx, ds0, grads


def pack(layer, per_layer):
    """Per-layer state tuples -> the layer's state: h (L, N, H), or (h, c)."""
    parts = tuple(np.stack([s[i] for s in per_layer]) for i in range(len(layer.state_names)))
    return parts if layer.has_cell else parts[0]


def random_layer(cell, num_layers, rng):
    layer = CELLS[cell](num_layers, rng)
    for p in layer.named_params().values():  # non-zero biases and peepholes
        p.value[...] = rng.uniform(-0.8, 0.8, p.shape)
    return layer


def random_states(layer, rng):
    return [tuple(rng.standard_normal((N, H)) for _ in layer.state_names)
            for _ in range(layer.num_layers)]


def assert_close(got, want, what):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=what)


def assert_same(layer, got, want):
    """got: (y, final state, dx, dstate0, grads) of the fast layer; want: of the loop."""
    y, state, dx, dstate0, grads = got
    want_y, finals, want_dx, ds0, want_grads = want
    ys = y if isinstance(y, tuple) else (y,)
    for i, (a, b) in enumerate(zip(ys, want_y[:len(ys)], strict=True)):
        assert_close(a, b, f"y[{i}]")  # h_seq, and c_seq with return_cells
    assert_close(dx, want_dx, "dx")
    pairs = [("state", state, pack(layer, finals)), ("dstate0", dstate0, pack(layer, ds0))]
    for name, g, w in pairs:
        parts = zip(*[s if layer.has_cell else (s,) for s in (g, w)], strict=True)
        for i, (a, b) in enumerate(parts):
            assert_close(a, b, f"{name}[{i}]")
    assert grads.keys() == want_grads.keys()
    for name, w in want_grads.items():
        assert_close(grads[name], w, name)


@pytest.mark.parametrize("given_state", [True, False], ids=["state", "zero_state"])
@pytest.mark.parametrize("lengths", [None, (T, 2, 0)], ids=["full", "lengths"])
@pytest.mark.parametrize("truncate", [None, 0, 2])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", list(CELLS))
def test_fast_layer_equals_the_reference_loop(cell, num_layers, truncate, lengths, given_state):
    rng = np.random.default_rng(3)
    layer = random_layer(cell, num_layers, rng)
    x = rng.standard_normal((T, N, D))
    s0 = random_states(layer, rng) if given_state else [zero_state(layer)] * num_layers
    ds = random_states(layer, rng)
    dy = rng.standard_normal((T, N, H))
    lens = None if lengths is None else np.array(lengths)
    y, state = layer.forward(x, pack(layer, s0) if given_state else None, lens)
    dx, dstate0 = layer.backward(dy, pack(layer, ds), truncate=truncate)
    grads = {n: p.grad.copy() for n, p in layer.named_params().items()}
    want = reference_run(layer, x, s0, lens, dy, None, ds, truncate)
    assert_same(layer, (y, state, dx, dstate0, grads), want)


@pytest.mark.parametrize("truncate", [None, 1])
@pytest.mark.parametrize("cell", ["lstm", "lstm_peephole"])
def test_lstm_cell_outputs_equal_the_reference_loop(cell, truncate):
    """return_cells=True: a gradient also enters every c_t of the top layer."""
    rng = np.random.default_rng(4)
    layer = random_layer(cell, 2, rng)
    x = rng.standard_normal((T, N, D))
    s0, ds = random_states(layer, rng), random_states(layer, rng)
    dy, dcy = rng.standard_normal((T, N, H)), rng.standard_normal((T, N, H))
    lens = np.array([T, 3, 1])
    y, state = layer.forward(x, pack(layer, s0), lens, return_cells=True)  # y: (h_seq, c_seq)
    dx, dstate0 = layer.backward((dy, dcy), pack(layer, ds), truncate=truncate)
    grads = {n: p.grad.copy() for n, p in layer.named_params().items()}
    want = reference_run(layer, x, s0, lens, dy, dcy, ds, truncate)
    assert_same(layer, (y, state, dx, dstate0, grads), want)


def reverse_each(a, lengths):
    """a (T, N, F) with each sequence's first lengths[n] steps in reverse order."""
    out = a.copy()
    for n, length in enumerate(lengths):
        out[:length, n] = a[:length, n][::-1]
    return out


def two_way(one):
    """A bidirectional layer of one-way ``one``'s kind and options, weights: one's, then new."""
    kw = {"bias": one.bias, "dtype": np.float64, "rng": np.random.default_rng(5)}
    if isinstance(one, RNN):
        kw["nonlinearity"] = one.nonlinearity
    if isinstance(one, LSTM):
        kw["peephole"] = one.peephole
    return type(one)(D, H, 1, bidirectional=True, **kw)


@pytest.mark.parametrize("lengths", [None, (T, 2, 0)], ids=["full", "lengths"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_bidirectional_layer_is_two_one_way_layers(cell, lengths):
    """One bidirectional layer = a one-way layer on x and one on x reversed within lengths
    (outputs reversed back): y, state, dx, dstate0 and every gradient, to 1e-12."""
    rng = np.random.default_rng(6)
    fwd, rev = random_layer(cell, 1, rng), random_layer(cell, 1, rng)
    bidi = two_way(fwd)
    pairs = list(zip(bidi.named_params().items(),
                     [*fwd.named_params().values(), *rev.named_params().values()], strict=True))
    for i, ((name, p), q) in enumerate(pairs):  # PyTorch's order: the forward ones first
        assert name.endswith("_reverse") == (i >= len(pairs) // 2)
        p.value[...] = q.value
    lens = np.full(N, T) if lengths is None else np.array(lengths)
    x, dy = rng.standard_normal((T, N, D)), rng.standard_normal((T, N, 2 * H))
    s0 = [*random_states(fwd, rng), *random_states(rev, rng)]  # rows: [fwd, rev]
    ds = [*random_states(fwd, rng), *random_states(rev, rng)]
    y, state = bidi.forward(x, pack(bidi, s0), None if lengths is None else lens)
    dx, dstate0 = bidi.backward(dy, pack(bidi, ds))
    y_f, state_f = fwd.forward(x, pack(fwd, s0[:1]), lens)
    y_r, state_r = rev.forward(reverse_each(x, lens), pack(rev, s0[1:]), lens)
    dx_f, ds0_f = fwd.backward(dy[..., :H], pack(fwd, ds[:1]))
    dx_r, ds0_r = rev.backward(reverse_each(dy[..., H:], lens), pack(rev, ds[1:]))
    assert_close(y, np.concatenate([y_f, reverse_each(y_r, lens)], axis=2), "y")
    assert_close(dx, dx_f + reverse_each(dx_r, lens), "dx")
    for what, got, f, r in [("state", state, state_f, state_r),
                            ("dstate0", dstate0, ds0_f, ds0_r)]:
        parts = [s if bidi.has_cell else (s,) for s in (got, f, r)]
        for i, (a, b, c) in enumerate(zip(*parts, strict=True)):
            assert_close(a, np.concatenate([b, c]), f"{what}[{i}]")  # [fwd row, rev row]
    for (name, p), q in pairs:
        assert_close(p.grad, q.grad, name)
