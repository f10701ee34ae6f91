"""Vanilla (Elman) recurrent layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab._array import Array
from rnnlab.nn.recurrent import Recurrent


class RNN(Recurrent):
    """Stacked Elman RNN, PyTorch's ``nn.RNN`` (gate count 1).

    For each layer, with x_t (N, D) the layer's input and h_t (N, H) its state::

        a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh      (N, H)
        h_t = tanh(a_t)   or   relu(a_t)                     (N, H)

    Backward (dh_t: everything reaching h_t, from y_t and from step t+1)::

        da_t     = dh_t * (1 - h_t^2)   or   dh_t * [a_t > 0]
        dh_{t-1} = da_t W_hh
        dW_ih = sum_t da_t^T x_t,  dW_hh = sum_t da_t^T h_{t-1},  db_ih = db_hh = sum_t da_t

    Parameters per layer k: weight_ih_lk (H, D), weight_hh_lk (H, H), bias_ih_lk (H,),
    bias_hh_lk (H,). State: h of shape (num_layers, N, H).
    """

    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        nonlinearity: str = "tanh",
        bias: bool = True,
        dropout: float = 0.0,
        dtype: Any = np.float32,
        rng: np.random.Generator,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias=bias, dropout=dropout,
                         dtype=dtype, rng=rng)

    def _step_forward(self, k: int, t: int) -> None:
        b = self._buffers[k]
        a = b["gates"][t]  # (N, H) holds x_t W_ih^T + b; becomes h_t in place
        a += b["h"][t] @ self.weights[k]["weight_hh"].value.T
        if self.nonlinearity == "tanh":
            np.tanh(a, out=a)
        else:
            np.maximum(a, 0, out=a)
        b["h"][t + 1] = a

    def _step_backward(
        self, k: int, t: int, dstate: tuple[Array, ...], dG_t: Array, dGh_t: Array
    ) -> tuple[Array, ...]:
        (dh,), held = self._hold(t, dstate)
        h = self._buffers[k]["gates"][t]  # (N, H) this step's new state
        if self.nonlinearity == "tanh":
            np.multiply(dh, 1 - h * h, out=dG_t)  # da = dh * tanh'
        else:
            np.multiply(dh, h > 0, out=dG_t)  # relu' (h > 0 exactly where a > 0)
        dh_prev = dG_t @ self.weights[k]["weight_hh"].value  # (..., N, H)
        if held:
            dh_prev += held[0]
        return (dh_prev,)
