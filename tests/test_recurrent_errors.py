"""Bad input to the recurrent layers: a ValueError that names the problem."""

import numpy as np
import pytest

from rnnlab import GRU, LSTM, RNN

T, N, D, H, L = 5, 3, 2, 4, 2


def layer(cls=LSTM, **kw):
    return cls(D, H, L, rng=np.random.default_rng(0), **kw)


def x32(*shape):
    return np.zeros(shape or (T, N, D), dtype=np.float32)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_size": 0}, "input_size"),
        ({"hidden_size": -1}, "hidden_size"),
        ({"num_layers": 0}, "num_layers"),
        ({"num_layers": 1.5}, "num_layers"),
        ({"dropout": 1.0}, "dropout"),
        ({"dtype": np.int32}, "dtype"),
        ({"rng": 0}, "rng"),
    ],
)
@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_bad_constructor_arguments(cls, kwargs, match):
    args = {"input_size": D, "hidden_size": H, "num_layers": 1, "rng": np.random.default_rng(0)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        cls(args.pop("input_size"), args.pop("hidden_size"), args.pop("num_layers"), **args)


def test_bad_nonlinearity():
    with pytest.raises(ValueError, match="nonlinearity"):
        layer(RNN, nonlinearity="sigmoid")


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.zeros((T, N), dtype=np.float32), "x must have 3 dimensions"),
        (np.zeros((T, N, D + 1), dtype=np.float32), "input_size"),
        (np.zeros((T, N, D), dtype=np.float64), "dtype float64"),
        (np.zeros((T, N, D), dtype=np.int64), "dtype int64"),
        ([[[0.0, 0.0]]], "x must be an array"),
    ],
)
@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_bad_input(cls, x, match):
    with pytest.raises(ValueError, match=match):
        layer(cls).forward(x)


@pytest.mark.parametrize(
    ("state", "match"),
    [
        (np.zeros((L, N, H), dtype=np.float32), r"pair \(h, c\)"),
        ((np.zeros((L, N, H), dtype=np.float32),) * 3, r"pair \(h, c\)"),
        ((np.zeros((1, N, H), dtype=np.float32),) * 2, "state h must have shape"),
        ((np.zeros((L, N, H), np.float32), np.zeros((L, N + 1, H), np.float32)),
         "state c must have shape"),
        ((np.zeros((L, N, H), np.float32), np.zeros((L, N, H), np.float64)), "state c has dtype"),
    ],
)
def test_bad_lstm_state(state, match):
    with pytest.raises(ValueError, match=match):
        layer(LSTM).forward(x32(), state)


@pytest.mark.parametrize("cls", [RNN, GRU])
def test_bad_state_shape(cls):
    with pytest.raises(ValueError, match="state must have shape"):
        layer(cls).forward(x32(), np.zeros((L, N, H + 1), dtype=np.float32))


@pytest.mark.parametrize(
    ("lengths", "match"),
    [
        ([T + 1, 1, 1], r"lengths must lie in \[0, T=5\]"),
        ([-1, 1, 1], r"lengths must lie in \[0, T=5\]"),
        ([1, 2], "3 integers"),
        ([1.0, 2.0, 3.0], "3 integers"),
    ],
)
def test_bad_lengths(lengths, match):
    with pytest.raises(ValueError, match=match):
        layer(GRU).forward(x32(), None, lengths)


def test_backward_before_forward():
    with pytest.raises(ValueError, match="before forward"):
        layer(LSTM).backward(x32(T, N, H))


def test_bad_upstream_gradients():
    lstm = layer(LSTM)
    lstm.forward(x32())
    with pytest.raises(ValueError, match="dy must have shape"):
        lstm.backward(x32(T, N, H + 1))
    with pytest.raises(ValueError, match="dstate h must have shape"):
        lstm.backward(x32(T, N, H), (x32(1, N, H), x32(L, N, H)))


def test_return_cells_needs_an_lstm():
    with pytest.raises(ValueError, match="return_cells"):
        layer(GRU).forward(x32(), return_cells=True)


def test_zero_length_sequences_keep_their_initial_state():
    lstm = layer(LSTM)
    rng = np.random.default_rng(1)
    h0, c0 = (rng.standard_normal((L, N, H)).astype(np.float32) for _ in range(2))
    x = rng.standard_normal((T, N, D)).astype(np.float32)
    y, (h, c) = lstm.forward(x, (h0, c0), [0, T, 2])
    assert np.all(y[:, 0] == 0) and np.all(y[2:, 2] == 0)
    np.testing.assert_array_equal(h[:, 0], h0[:, 0])
    np.testing.assert_array_equal(c[:, 0], c0[:, 0])
    assert not np.allclose(h[:, 1], h0[:, 1])
