"""Long short-term memory, four gates in one fused weight matrix, optional peepholes."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab._array import Array
from rnnlab.nn.recurrent import Recurrent


def sigmoid_(a: Array) -> Array:
    """In-place logistic sigmoid, via tanh so that large |a| cannot overflow."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


class LSTM(Recurrent):
    """Stacked LSTM, PyTorch's ``nn.LSTM`` with gate order i, f, g, o.

    For each layer, with x_t (N, D) the layer's input, h_t and c_t (N, H) its state, and
    the fused weights W_ih (4H, D), W_hh (4H, H) split into the blocks of i, f, g, o::

        [a_i a_f a_g a_o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh    (N, 4H), one matmul
        i = sigma(a_i + w_ci * c_{t-1})      input gate       (peephole term only if peephole)
        f = sigma(a_f + w_cf * c_{t-1})      forget gate
        g = tanh(a_g)                        candidate
        c_t = f * c_{t-1} + i * g
        o = sigma(a_o + w_co * c_t)          output gate
        h_t = o * tanh(c_t)

    Backward, in reverse (dh_t, dc_t: everything reaching h_t and c_t)::

        do   = dh_t * tanh(c_t)                        dc_t += dh_t * o * (1 - tanh^2(c_t))
        da_o = do * o * (1 - o)                        dc_t += w_co * da_o
        da_i = dc_t * g * i * (1 - i)    da_f = dc_t * c_{t-1} * f * (1 - f)
        da_g = dc_t * i * (1 - g^2)      dc_{t-1} = dc_t * f + w_ci * da_i + w_cf * da_f
        dh_{t-1} = [da_i da_f da_g da_o] W_hh
        dW_ih = sum_t da_t^T x_t,  dW_hh = sum_t da_t^T h_{t-1},  db_ih = db_hh = sum_t da_t
        dw_ci = sum da_i * c_{t-1},  dw_cf = sum da_f * c_{t-1},  dw_co = sum da_o * c_t

    Parameters per layer k: weight_ih_lk (4H, D), weight_hh_lk (4H, H), bias_ih_lk (4H,),
    bias_hh_lk (4H,), and with peephole=True weight_ci_lk, weight_cf_lk, weight_co_lk (H,)
    (Gers & Schmidhuber's diagonal peepholes; PyTorch has none). State: (h, c), each
    (num_layers, N, H).
    """

    gates = 4
    state_names = ("h", "c")
    step_buffers = ("tanh_c",)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        dropout: float = 0.0,
        peephole: bool = False,
        dtype: Any = np.float32,
        rng: np.random.Generator,
    ) -> None:
        self.peephole = peephole
        super().__init__(input_size, hidden_size, num_layers, bias=bias, dropout=dropout,
                         dtype=dtype, rng=rng)
        # (4H,) per-block constants of the fused gate nonlinearities (see _step_forward)
        H = hidden_size
        block = np.repeat(np.array([0.5, 0.5, 1.0, 0.5]), H).astype(self.dtype)
        self._gate_scale = self.xp.asarray(block)  # [.5 .5 1 .5]
        self._gate_shift = self.xp.asarray(np.where(block == 1.0, 0.0, 0.5).astype(self.dtype))
        self._gate_beta = self.xp.asarray((block == 1.0).astype(self.dtype))  # [0 0 1 0]

    def _param_shapes(self, in_size: int) -> dict[str, tuple[int, ...]]:
        shapes = super()._param_shapes(in_size)
        if self.peephole:
            H = self.hidden_size
            shapes.update(weight_ci=(H,), weight_cf=(H,), weight_co=(H,))
        return shapes

    def _step_forward(self, k: int, t: int) -> None:
        b, p, H = self._buffers[k], self.weights[k], self.hidden_size
        c_prev = b["c"][t]  # (N, H)
        a = b["gates"][t]  # (N, 4H) holds x_t W_ih^T + b; becomes [i f g o] in place
        hW = self._buffer(k, "hW", a.shape)  # (N, 4H) scratch, reused every step
        np.matmul(b["h"][t], p["weight_hh"].value.T, out=hW)
        a += hW
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        if self.peephole:
            i += p["weight_ci"].value * c_prev
            f += p["weight_cf"].value * c_prev
            sigmoid_(a[:, :2 * H])  # i and f are adjacent: one call
            np.tanh(g, out=g)
        else:  # all four in one pass each: sigma(x) = tanh(x/2)/2 + 1/2, g = tanh(x)
            scale, shift = self._gate_scale, self._gate_shift  # [.5 .5 1 .5], [.5 .5 0 .5]
            a *= scale
            np.tanh(a, out=a)
            a *= scale
            a += shift
        c = b["c"][t + 1]
        np.multiply(f, c_prev, out=c)
        ig = np.multiply(i, g, out=hW[:, :H])  # the scratch is free again
        c += ig
        if self.peephole:
            o += p["weight_co"].value * c  # the output gate peeks at the new cell
            sigmoid_(o)
        tanh_c = b["tanh_c"][t]
        np.tanh(c, out=tanh_c)
        np.multiply(o, tanh_c, out=b["h"][t + 1])

    def _step_backward(
        self, k: int, t: int, dstate: tuple[Array, ...], dG_t: Array, dGh_t: Array
    ) -> tuple[Array, ...]:
        (dh, dc), held = self._hold(t, dstate)
        b, p, H = self._buffers[k], self.weights[k], self.hidden_size
        a, c_prev, tanh_c = b["gates"][t], b["c"][t], b["tanh_c"][t]
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        di, df, dg, do = (dG_t[..., :H], dG_t[..., H:2 * H], dG_t[..., 2 * H:3 * H],
                          dG_t[..., 3 * H:])  # (..., N, H) views: written in place
        # each gate's nonlinearity derivative: s(1 - s) for i, f, o; 1 - g^2 = (1 + g)(1 - g)
        act = self._buffer(k, "dact", a.shape)  # (N, 4H)
        np.add(a, self._gate_beta, out=act)  # [i f 1+g o]
        tmp = self._buffer(k, "hW", a.shape)  # (N, 4H) scratch
        np.subtract(1, a, out=tmp)  # [1-i 1-f 1-g 1-o]
        act *= tmp
        # h = o * tanh(c)
        np.multiply(dh, tanh_c, out=do)
        if self.peephole:  # the cell gradient below needs da_o itself
            do *= act[:, 3 * H:]  # through o's sigmoid: now the gradient of a_o
        dc_t = self._buffer(k, "dc_t", dh.shape)  # (..., N, H) all that reaches c_t
        np.multiply(tanh_c, tanh_c, out=dc_t)
        np.subtract(1, dc_t, out=dc_t)
        dc_t *= o
        dc_t *= dh
        dc_t += dc
        if self.peephole:
            dc_t += p["weight_co"].value * do
        # c = f * c_prev + i * g, then each gate through its nonlinearity
        np.multiply(dc_t, g, out=di)
        np.multiply(dc_t, c_prev, out=df)
        np.multiply(dc_t, i, out=dg)
        if self.peephole:
            dG_t[..., :3 * H] *= act[:, :3 * H]
        else:  # all four blocks in one pass: [di df dg do] * [i(1-i) f(1-f) 1-g^2 o(1-o)]
            dG_t *= act
        dc_prev = self._buffer(k, f"dc{t % 2}", dh.shape)  # alternate: dc may be last step's
        np.multiply(dc_t, f, out=dc_prev)
        if self.peephole:
            dc_prev += p["weight_ci"].value * di + p["weight_cf"].value * df
        # [a_i a_f a_g a_o] = ... + h_prev W_hh^T
        dh_prev = self._buffer(k, f"dh{t % 2}", dh.shape)  # (..., N, H)
        np.matmul(dG_t, p["weight_hh"].value, out=dh_prev)
        if held:
            dh_prev += held[0]
            dc_prev += held[1]
        return dh_prev, dc_prev

    def _extra_weight_grads(self, k: int, dG: Array) -> None:
        if not self.peephole:
            return
        p, c, H = self.weights[k], self._buffers[k]["c"], self.hidden_size
        p["weight_ci"].grad += np.einsum("tnh,tnh->h", dG[..., :H], c[:-1])
        p["weight_cf"].grad += np.einsum("tnh,tnh->h", dG[..., H:2 * H], c[:-1])
        # c[1:] is held past a sequence's end, but there da_o is zero
        p["weight_co"].grad += np.einsum("tnh,tnh->h", dG[..., 3 * H:], c[1:])
