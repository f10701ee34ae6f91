"""The three cells as the textbooks write them: one step forward, one step backward.

Start here to learn how an RNN, an LSTM or a GRU computes and backpropagates one time
step. No buffers, no in-place operations, no fused tricks: each line is one equation of the
cell's docstring (``rnn.py``, ``lstm.py``, ``gru.py``). The fast layers ``RNN``, ``LSTM``
and ``GRU`` compute exactly this; ``tests/test_reference_cells.py`` checks that a Python
loop over these steps gives their outputs, states and every gradient to a relative 1e-12.

Shapes: x (N, D); h, c (N, H). ``p``: one layer's parameters by PyTorch's names without
the layer suffix: weight_ih (gates*H, D), weight_hh (gates*H, H), and if present bias_ih,
bias_hh (gates*H,) and the LSTM's peepholes weight_ci, weight_cf, weight_co (H,)
(:func:`layer_params` reads them from a fast layer). A forward step returns the new state
and a cache; its backward takes the gradients reaching the new state and returns those of
x and of the previous state, and ``grads``, the gradient of each entry of ``p``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rnnlab._array import Array

if TYPE_CHECKING:
    from rnnlab.nn.recurrent import Recurrent

Params = dict[str, Array]


def layer_params(layer: Recurrent, k: int = 0) -> Params:
    """Layer k's parameter arrays of a fast RNN, LSTM or GRU, by the names above.

    >>> from rnnlab.nn import LSTM
    >>> lstm = LSTM(3, 2, peephole=True, rng=np.random.default_rng(0))
    >>> sorted(layer_params(lstm, 0))
    ['bias_hh', 'bias_ih', 'weight_cf', 'weight_ci', 'weight_co', 'weight_hh', 'weight_ih']
    """
    return {name: p.value for name, p in layer.weights[k].items()}


def sigmoid(a: Array) -> Array:
    """The logistic function 1 / (1 + exp(-a)).

    >>> sigmoid(np.array([0.0, 2.0])).round(4)
    array([0.5   , 0.8808])
    """
    return 1 / (1 + np.exp(-a))


def _bias(p: Params, name: str) -> Array | float:
    return p.get(name, 0.0)


def _grads(p: Params, dgx: Array, dgh: Array, x: Array, h_prev: Array) -> Params:
    """The four PyTorch parameters' gradients from those of x W_ih^T + b_ih, h W_hh^T + b_hh."""
    grads = {"weight_ih": dgx.T @ x, "weight_hh": dgh.T @ h_prev}
    if "bias_ih" in p:
        grads.update(bias_ih=dgx.sum(axis=0), bias_hh=dgh.sum(axis=0))
    return grads


def rnn_step(x: Array, h_prev: Array, p: Params, nonlinearity: str = "tanh") -> tuple[Array, Any]:
    """h_t = tanh(x W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu). Returns (h_t, cache).

    >>> rng = np.random.default_rng(0)
    >>> p = {"weight_ih": rng.standard_normal((2, 3)), "weight_hh": rng.standard_normal((2, 2))}
    >>> h, cache = rnn_step(np.ones((1, 3)), np.zeros((1, 2)), p)
    >>> dx, dh_prev, grads = rnn_step_backward(np.ones((1, 2)), cache, p)
    >>> h.shape, dx.shape, dh_prev.shape, sorted(grads)
    ((1, 2), (1, 3), (1, 2), ['weight_hh', 'weight_ih'])
    """
    a = x @ p["weight_ih"].T + _bias(p, "bias_ih") + h_prev @ p["weight_hh"].T + _bias(p, "bias_hh")
    h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
    return h, (x, h_prev, h, nonlinearity)


def rnn_step_backward(dh: Array, cache: Any, p: Params) -> tuple[Array, Array, Params]:
    """From dh_t: (dx, dh_{t-1}, grads), with da = dh_t * tanh'(a) (or relu'(a))."""
    x, h_prev, h, nonlinearity = cache
    da = dh * (1 - h**2) if nonlinearity == "tanh" else dh * (h > 0)
    return da @ p["weight_ih"], da @ p["weight_hh"], _grads(p, da, da, x, h_prev)


def lstm_step(x: Array, h_prev: Array, c_prev: Array, p: Params) -> tuple[Array, Array, Any]:
    """One LSTM step (gate order i, f, g, o; peepholes if p has them): (h_t, c_t, cache).

    >>> rng = np.random.default_rng(0)
    >>> p = {"weight_ih": rng.standard_normal((8, 3)), "weight_hh": rng.standard_normal((8, 2))}
    >>> h, c, cache = lstm_step(np.ones((1, 3)), np.zeros((1, 2)), np.zeros((1, 2)), p)
    >>> dx, dh_prev, dc_prev, grads = lstm_step_backward(np.ones((1, 2)), np.zeros((1, 2)),
    ...                                                  cache, p)
    >>> h.shape, c.shape, dx.shape, dc_prev.shape, grads["weight_ih"].shape
    ((1, 2), (1, 2), (1, 3), (1, 2), (8, 3))
    """
    a = x @ p["weight_ih"].T + _bias(p, "bias_ih") + h_prev @ p["weight_hh"].T + _bias(p, "bias_hh")
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)  # (N, H) each
    w_ci, w_cf, w_co = (p.get(f"weight_c{q}", 0.0) for q in "ifo")  # peepholes, or none
    i = sigmoid(a_i + w_ci * c_prev)  # input gate
    f = sigmoid(a_f + w_cf * c_prev)  # forget gate
    g = np.tanh(a_g)  # candidate
    c = f * c_prev + i * g
    o = sigmoid(a_o + w_co * c)  # output gate
    h = o * np.tanh(c)
    return h, c, (x, h_prev, c_prev, i, f, g, o, c)


def lstm_step_backward(
    dh: Array, dc: Array, cache: Any, p: Params
) -> tuple[Array, Array, Array, Params]:
    """From dh_t, dc_t (all that reaches h_t and c_t): (dx, dh_{t-1}, dc_{t-1}, grads)."""
    x, h_prev, c_prev, i, f, g, o, c = cache
    w_ci, w_cf, w_co = (p.get(f"weight_c{q}", 0.0) for q in "ifo")
    do = dh * np.tanh(c)
    da_o = do * o * (1 - o)
    dc = dc + dh * o * (1 - np.tanh(c) ** 2) + w_co * da_o
    da_i = dc * g * i * (1 - i)
    da_f = dc * c_prev * f * (1 - f)
    da_g = dc * i * (1 - g**2)
    dc_prev = dc * f + w_ci * da_i + w_cf * da_f
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)  # (N, 4H)
    grads = _grads(p, da, da, x, h_prev)
    if "weight_ci" in p:
        grads.update(weight_ci=(da_i * c_prev).sum(axis=0), weight_cf=(da_f * c_prev).sum(axis=0),
                     weight_co=(da_o * c).sum(axis=0))
    return da @ p["weight_ih"], da @ p["weight_hh"], dc_prev, grads


def gru_step(x: Array, h_prev: Array, p: Params) -> tuple[Array, Any]:
    """One GRU step in PyTorch's form (gate order r, z, n): (h_t, cache).

    >>> rng = np.random.default_rng(0)
    >>> p = {"weight_ih": rng.standard_normal((6, 3)), "weight_hh": rng.standard_normal((6, 2))}
    >>> h, cache = gru_step(np.ones((1, 3)), np.zeros((1, 2)), p)
    >>> dx, dh_prev, grads = gru_step_backward(np.ones((1, 2)), cache, p)
    >>> h.shape, dx.shape, dh_prev.shape, grads["weight_hh"].shape
    ((1, 2), (1, 3), (1, 2), (6, 2))
    """
    gx_r, gx_z, gx_n = np.split(x @ p["weight_ih"].T + _bias(p, "bias_ih"), 3, axis=1)
    gh_r, gh_z, gh_n = np.split(h_prev @ p["weight_hh"].T + _bias(p, "bias_hh"), 3, axis=1)
    r = sigmoid(gx_r + gh_r)  # reset gate
    z = sigmoid(gx_z + gh_z)  # update gate
    n = np.tanh(gx_n + r * gh_n)  # candidate
    h = (1 - z) * n + z * h_prev
    return h, (x, h_prev, r, z, n, gh_n)


def gru_step_backward(dh: Array, cache: Any, p: Params) -> tuple[Array, Array, Params]:
    """From dh_t: (dx, dh_{t-1}, grads)."""
    x, h_prev, r, z, n, gh_n = cache
    dn = dh * (1 - z)
    dz = dh * (h_prev - n)
    dgx_n = dn * (1 - n**2)
    dr = dgx_n * gh_n
    dgh_n = dgx_n * r
    dgx_r = dr * r * (1 - r)
    dgx_z = dz * z * (1 - z)
    dgx = np.concatenate([dgx_r, dgx_z, dgx_n], axis=1)  # (N, 3H)
    dgh = np.concatenate([dgx_r, dgx_z, dgh_n], axis=1)  # (N, 3H)
    dh_prev = dh * z + dgh @ p["weight_hh"]
    return dgx @ p["weight_ih"], dh_prev, _grads(p, dgx, dgh, x, h_prev)
