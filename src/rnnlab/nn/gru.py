"""Gated recurrent unit in PyTorch's formulation."""

from __future__ import annotations

from rnnlab._array import Array
from rnnlab.nn.activations import interpolate, sigmoid_, tanh_
from rnnlab.nn.recurrent import Recurrent


class GRU(Recurrent):
    """Stacked GRU, PyTorch's ``nn.GRU`` with gate order r, z, n.

    For each layer, with x_t (N, D) the layer's input and h_t (N, H) its state::

        [gx_r gx_z gx_n] = x_t W_ih^T + b_ih          (N, 3H), all steps in one matmul
        [gh_r gh_z gh_n] = h_{t-1} W_hh^T + b_hh      (N, 3H)
        r = sigma(gx_r + gh_r)                        reset gate
        z = sigma(gx_z + gh_z)                        update gate
        n = tanh(gx_n + r * gh_n)                     the reset gate scales W_hn h + b_hn
        h_t = (1 - z) * n + z * h_{t-1}

    Backward, in reverse (dh_t: everything reaching h_t)::

        dn = dh_t * (1 - z)      dz = dh_t * (h_{t-1} - n)      dh_{t-1} = dh_t * z
        dgx_n = dn * (1 - n^2)   dr = dgx_n * gh_n               dgh_n = dgx_n * r
        dgx_r = dgh_r = dr * r * (1 - r)    dgx_z = dgh_z = dz * z * (1 - z)
        dh_{t-1} += dgh W_hh
        dW_ih = sum_t dgx^T x_t,  dW_hh = sum_t dgh^T h_{t-1},  db_ih = sum dgx,  db_hh = sum dgh

    Parameters per layer k: weight_ih_lk (3H, D), weight_hh_lk (3H, H), bias_ih_lk (3H,),
    bias_hh_lk (3H,). State: h of shape (num_layers, N, H). ``bidirectional=True``: also
    ``*_lk_reverse``, y (T, N, 2H), state (num_layers * 2, N, H) (``Recurrent.forward``).

    The steps below are these equations on preallocated buffers (tricks named in
    ``activations.py``); the same step written plainly: ``reference.gru_step``.

    Examples::

        >>> import numpy as np
        >>> gru = GRU(10, 20, dtype=np.float64, rng=np.random.default_rng(0))
        >>> x = np.random.default_rng(1).standard_normal((5, 3, 10))   # (T, N, D)
        >>> y, h = gru(x)
        >>> dx, dh0 = gru.backward(np.ones_like(y), np.ones_like(h))  # dstate: into h_T
        >>> y.shape, h.shape, dx.shape, dh0.shape
        ((5, 3, 20), (1, 3, 20), (5, 3, 10), (1, 3, 20))
    """

    gates = 3
    gate_buffer = "rzn"  # [gx_r gx_z gx_n] before the step, [r z n] after it
    step_buffers = ("gh_n",)  # W_hn h_{t-1} + b_hn, which r scales
    separate_hidden_grad = True

    def _input_bias(self, k: int) -> Array | None:
        # only b_ih: b_hh must stay inside the step, where r multiplies b_hn
        return self.weights[k]["bias_ih"].value if self.bias else None

    def _step_forward(self, k: int, t: int) -> None:
        b, p, H = self._buffers[k], self.weights[k], self.hidden_size
        h_prev = b["h"][t]  # (N, H)
        a = b["rzn"][t]  # (N, 3H): gx on entry; [r z n] on exit
        gh = h_prev @ p["weight_hh"].value.T  # (N, 3H) h_{t-1} W_hh^T + b_hh
        if self.bias:
            gh += p["bias_hh"].value
        a[:, :2 * H] += gh[:, :2 * H]
        sigmoid_(a[:, :2 * H])  # r, z = sigma(gx_r + gh_r), sigma(gx_z + gh_z)
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        gh_n = b["gh_n"][t]
        gh_n[...] = gh[:, 2 * H:]
        n += r * gh_n
        tanh_(n)  # n = tanh(gx_n + r * gh_n)
        interpolate(n, h_prev, z, out=b["h"][t + 1])  # h_t = (1 - z) * n + z * h_{t-1}

    def _step_backward(
        self, k: int, t: int, dstate: tuple[Array, ...], dG_t: Array, dGh_t: Array
    ) -> tuple[Array, ...]:
        (dh,), held = self._hold(t, dstate)  # dh_t: (..., N, H)
        b, p, H = self._buffers[k], self.weights[k], self.hidden_size
        rzn, h_prev, gh_n = b["rzn"][t], b["h"][t], b["gh_n"][t]
        r, z, n = rzn[:, :H], rzn[:, H:2 * H], rzn[:, 2 * H:]
        dgx_r, dgx_z, dgx_n = dG_t[..., :H], dG_t[..., H:2 * H], dG_t[..., 2 * H:]
        # h_t = (1 - z) * n + z * h_{t-1}
        dh_prev = dh * z
        xp = self.xp
        xp.multiply(dh, 1 - z, out=dgx_n)  # dn
        xp.multiply(dh, h_prev - n, out=dgx_z)  # dz
        dgx_z *= z * (1 - z)  # through z's sigmoid
        # n = tanh(gx_n + r * gh_n)
        dgx_n *= 1 - n * n  # through n's tanh
        xp.multiply(dgx_n, gh_n, out=dgx_r)  # dr
        dgx_r *= r * (1 - r)  # through r's sigmoid
        xp.multiply(dgx_n, r, out=dGh_t[..., 2 * H:])  # dgh_n = dgx_n * r
        dGh_t[..., :2 * H] = dG_t[..., :2 * H]  # r and z read gh_r, gh_z as they read gx
        dh_prev += dGh_t @ p["weight_hh"].value  # (..., N, H)
        if held:
            dh_prev += held[0]
        return (dh_prev,)
