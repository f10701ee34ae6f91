"""Vanilla (Elman) recurrent layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab._array import Array
from rnnlab.device import Device
from rnnlab.nn._cuda import launch
from rnnlab.nn.activations import relu_, relu_backward, tanh_, tanh_backward
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
    bias_hh_lk (H,). State: h of shape (num_layers, N, H). ``bidirectional=True``: also
    ``*_lk_reverse``, y (T, N, 2H), state (num_layers * 2, N, H) (``Recurrent.forward``).

    The input projection x_t W_ih^T + b is written straight into the buffer of h_t, and the
    step turns it into h_t in place; the same step written plainly: ``reference.rnn_step``.

    Examples::

        >>> import numpy as np
        >>> rnn = RNN(10, 20, nonlinearity="relu", dtype=np.float64, rng=np.random.default_rng(0))
        >>> x = np.random.default_rng(1).standard_normal((5, 3, 10))   # (T, N, D)
        >>> y, h = rnn(x, lengths=np.array([5, 2, 0]))    # past its length a sequence's y is 0
        >>> float(np.abs(y[2:, 1]).sum()), bool((h[0, 1] == y[1, 1]).all())
        (0.0, True)
        >>> dx, dh0 = rnn.backward(np.ones_like(y))
        >>> dx.shape, dh0.shape
        ((5, 3, 10), (1, 3, 20))
    """

    gates = 1
    gate_buffer = None  # the input projection goes into h[1:]: see the class docstring

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        nonlinearity: str = "tanh",
        bias: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = np.float32,
        device: str | Device = "cpu",
        rng: np.random.Generator,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias=bias, dropout=dropout,
                         bidirectional=bidirectional, dtype=dtype, device=device, rng=rng)

    def _step_forward(self, k: int, t: int) -> None:
        b = self._buffers[k]
        a = b["h"][t + 1]  # (N, H): x_t W_ih^T + b on entry; h_t on exit
        # a_t = x_t W_ih^T + b + h_{t-1} W_hh^T
        a += self.xp.matmul(b["h"][t], b["W_hh^T"], out=self._buffer(k, "scratch", a.shape))
        if self.nonlinearity == "tanh":
            tanh_(a)  # h_t = tanh(a_t)
        else:
            relu_(a)  # h_t = relu(a_t)

    # _step_forward fused into one CUDA kernel (after the one GEMM h_{t-1} W_hh^T)
    # --8<-- [start:forward_cuda] (docs/layers/rnn.md shows the kernel)
    FORWARD_CUDA = r"""
__device__ real rnn_forward(real a, int relu) {
    return relu ? (a < 0 ? (real)0 : a) : tanh(a);   // h_t = relu(a_t) or tanh(a_t)
}

extern "C" __global__ void rnn_step_forward(
        const real *hw,       // (N, H) h_{t-1} W_hh^T
        int relu, int total,  // total = N * H
        real *h) {            // (N, H) in: x_t W_ih^T + b; out: h_t
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    h[idx] = rnn_forward(h[idx] + hw[idx], relu);   // a_t = x_t W_ih^T + b + h_{t-1} W_hh^T
}
"""
    # --8<-- [end:forward_cuda]

    def _step_forward_cuda(self, k: int, t: int) -> None:
        """``_step_forward`` on a GPU: one GEMM, then ``FORWARD_CUDA`` on the same buffers."""
        b = self._buffers[k]
        a = b["h"][t + 1]  # (N, H): x_t W_ih^T + b on entry; h_t on exit
        hw = self.xp.matmul(b["h"][t], b["W_hh^T"],
                            out=self._buffer(k, "scratch", a.shape))  # h_{t-1} W_hh^T
        launch(self.FORWARD_CUDA, "rnn_step_forward", self.dtype, a.size,
               hw, int(self.nonlinearity == "relu"), a.size, a)

    def _step_backward(
        self, k: int, t: int, dstate: tuple[Array, ...], dG_t: Array, dGh_t: Array
    ) -> tuple[Array, ...]:
        (dh,), held = self._hold(t, dstate)  # dh_t: (..., N, H)
        h = self._buffers[k]["h"][t + 1]  # (N, H) h_t (held past an end, where dh is 0)
        if self.nonlinearity == "tanh":
            tanh_backward(dh, h, out=dG_t)  # da_t = dh_t * (1 - h_t^2)
        else:
            relu_backward(dh, h, out=dG_t)  # da_t = dh_t * [a_t > 0]
        dh_prev = dG_t @ self.weights[k]["weight_hh"].value  # (..., N, H) da_t W_hh
        if held:
            dh_prev += held[0]
        return (dh_prev,)

    # _step_backward fused into one CUDA kernel (before the one GEMM da_t W_hh)
    # --8<-- [start:backward_cuda] (docs/layers/rnn.md shows the kernel)
    BACKWARD_CUDA = r"""
__device__ real rnn_backward(real dh, real h, int relu) {
    // da_t = dh_t * [a_t > 0]   or   dh_t * (1 - h_t^2)
    return relu ? dh * (h > 0 ? (real)1 : (real)0) : dh * (1 - h * h);
}

extern "C" __global__ void rnn_step_backward(
        const real *dh,       // (A, N, H) dh_t
        const real *h,        // (N, H) h_t
        int relu, int total, int NH,   // total = A * N * H, NH = N * H
        real *da) {           // (A, N, H) da_t
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    da[idx] = rnn_backward(dh[idx], h[idx % NH], relu);
}
"""
    # --8<-- [end:backward_cuda]

    def _step_backward_cuda(
        self, k: int, t: int, dstate: tuple[Array, ...], dG_t: Array, dGh_t: Array
    ) -> tuple[Array, ...]:
        """``_step_backward`` on a GPU: ``BACKWARD_CUDA``, then one GEMM, same buffers."""
        (dh,), held = self._hold(t, dstate)  # dh_t: (..., N, H)
        h = self._buffers[k]["h"][t + 1]  # (N, H) h_t (held past an end, where dh is 0)
        dh = self.xp.ascontiguousarray(dh)
        launch(self.BACKWARD_CUDA, "rnn_step_backward", self.dtype, dh.size,
               dh, h, int(self.nonlinearity == "relu"), dh.size, h.size, dG_t)
        dh_prev = dG_t @ self.weights[k]["weight_hh"].value  # (..., N, H) da_t W_hh
        if held:
            dh_prev += held[0]
        return (dh_prev,)
