"""backward(..., truncate=k) against a brute-force reference.

Definition (the WildML tutorial's bptt_truncate): the gradient arriving at step s (from
y_s, or from the final state at s = T-1) flows back through steps s, s-1, ..., s-k only.
Brute force: for every s, a fresh forward over the window [max(0, s-k), s], starting from
the (detached) state the full run had before the window, and a full backward of just that
step's gradient. The initial state receives gradient only from windows that start at 0
while s - k < 0.
"""

import numpy as np
import pytest

from rnnlab import GRU, LSTM, RNN

T, N, D, H = 6, 3, 2, 4


def make(cls, num_layers, seed=0):
    rng = np.random.default_rng(seed)
    layer = cls(D, H, num_layers, dtype=np.float64, rng=rng)
    x = rng.standard_normal((T, N, D))
    parts = 2 if layer.has_cell else 1
    s0 = tuple(rng.standard_normal((num_layers, N, H)) for _ in range(parts))
    dy = rng.standard_normal((T, N, H))
    ds = tuple(rng.standard_normal((num_layers, N, H)) for _ in range(parts))
    return layer, x, s0, dy, ds


def pack(layer, parts):
    return tuple(parts) if layer.has_cell else parts[0]


def unpack(layer, state):
    return tuple(state) if layer.has_cell else (state,)


def state_before(layer, x, s0, lengths, start):
    """The full run's state entering step ``start`` (the initial state when start == 0)."""
    if start == 0:
        return s0
    lens = None if lengths is None else np.minimum(lengths, start)
    _, s = layer.forward(x[:start], pack(layer, s0), lens)
    return unpack(layer, s)


def brute_force(layer, x, s0, dy, ds, lengths, k):
    grads = {n: np.zeros_like(p.value) for n, p in layer.named_params().items()}
    dx = np.zeros_like(x)
    ds0 = tuple(np.zeros_like(s) for s in s0)
    for s in range(T):
        start = max(0, s - k)
        init = state_before(layer, x, s0, lengths, start)
        lens = None if lengths is None else np.clip(lengths - start, 0, s + 1 - start)
        layer.zero_grad()
        layer.forward(x[start:s + 1], pack(layer, init), lens)
        g = np.zeros((s + 1 - start, N, H))
        g[-1] = dy[s]
        final = pack(layer, ds) if s == T - 1 else None
        dxw, dsw = layer.backward(g, final)
        dx[start:s + 1] += dxw
        if s - k < 0:
            ds0 = tuple(a + b for a, b in zip(ds0, unpack(layer, dsw), strict=True))
        for n, p in layer.named_params().items():
            grads[n] += p.grad
    return grads, dx, ds0


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("k", [0, 1, 2, 4])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_truncated_backward_matches_brute_force(cls, num_layers, k, with_lengths):
    layer, x, s0, dy, ds = make(cls, num_layers)
    lengths = np.array([6, 2, 4]) if with_lengths else None
    want_grads, want_dx, want_ds0 = brute_force(layer, x, s0, dy, ds, lengths, k)

    layer.zero_grad()
    layer.forward(x, pack(layer, s0), lengths)
    dx, ds0 = layer.backward(dy, pack(layer, ds), truncate=k)

    np.testing.assert_allclose(dx, want_dx, atol=1e-12)
    for got, want in zip(unpack(layer, ds0), want_ds0, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-12)
    for n, p in layer.named_params().items():
        np.testing.assert_allclose(p.grad, want_grads[n], atol=1e-12, err_msg=n)


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_truncation_as_long_as_the_sequence_is_full_bptt(cls):
    layer, x, s0, dy, ds = make(cls, 2)
    layer.forward(x, pack(layer, s0))
    layer.zero_grad()
    dx_full, ds_full = layer.backward(dy, pack(layer, ds))
    full = {n: p.grad.copy() for n, p in layer.named_params().items()}
    layer.zero_grad()
    dx_trunc, ds_trunc = layer.backward(dy, pack(layer, ds), truncate=T)
    np.testing.assert_allclose(dx_trunc, dx_full, atol=1e-12)
    for a, b in zip(unpack(layer, ds_trunc), unpack(layer, ds_full), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)
    for n, p in layer.named_params().items():
        np.testing.assert_allclose(p.grad, full[n], atol=1e-12)


def test_truncation_changes_the_gradient():
    layer, x, s0, dy, ds = make(LSTM, 1)
    layer.forward(x, pack(layer, s0))
    dx_full, _ = layer.backward(dy, None)
    dx_trunc, _ = layer.backward(dy, None, truncate=1)
    assert np.abs(dx_full - dx_trunc).max() > 1e-3


@pytest.mark.parametrize("bad", [-1, 1.5, "2"])
def test_bad_truncate_is_a_value_error(bad):
    layer, x, s0, dy, ds = make(RNN, 1)
    layer.forward(x)
    with pytest.raises(ValueError, match="truncate"):
        layer.backward(dy, truncate=bad)
