"""Long short-term memory, four gates in one fused weight matrix, optional peepholes."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab._array import Array
from rnnlab.device import Device, to_device
from rnnlab.nn._cuda import launch
from rnnlab.nn.activations import (
    gate_activations_,
    gate_constants,
    gate_derivatives,
    sigmoid_,
    tanh_,
    tanh_backward,
)
from rnnlab.nn.recurrent import Recurrent


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
    (num_layers, N, H). ``bidirectional=True``: also ``*_lk_reverse`` (peepholes too), y
    (T, N, 2H) (with ``return_cells``, c_seq too), h and c (num_layers * 2, N, H)
    (``Recurrent.forward``).

    ``forget_bias=b`` (PyTorch has no such option): the forget gate's bias starts at b
    instead of PyTorch's random draw, so that f = sigma(b + ...) starts near sigma(b) and the
    cell remembers from the first step (Gers, Schmidhuber & Cummins 2000; Jozefowicz,
    Zaremba & Sutskever 2015 recommend b = 1). Only the sum b_ih + b_hh enters the
    equations: the f block of ``bias_ih`` is set to b and that of ``bias_hh`` to 0
    (:meth:`init_forget_bias`). None (default): PyTorch's initialisation.

    ``_step_forward`` and ``_step_backward`` below are these equations, one line each, on
    preallocated buffers (the named tricks are in ``activations.py``; the buffers in
    ``Recurrent``'s docstring). The same step written plainly: ``reference.lstm_step``.

    Examples::

        >>> import numpy as np
        >>> lstm = LSTM(10, 20, num_layers=2, dtype=np.float64, rng=np.random.default_rng(0))
        >>> x = np.random.default_rng(1).standard_normal((5, 3, 10))   # (T, N, D)
        >>> y, (h, c) = lstm(x)                                         # zero initial state
        >>> y.shape, h.shape, c.shape
        ((5, 3, 20), (2, 3, 20), (2, 3, 20))
        >>> dx, (dh0, dc0) = lstm.backward(np.ones_like(y))   # adds into each p.grad
        >>> dx.shape, dh0.shape, lstm.named_params()["weight_hh_l1"].grad.shape
        ((5, 3, 10), (2, 3, 20), (80, 20))
    """

    gates = 4
    state_names = ("h", "c")
    gate_buffer = "ifgo"  # [a_i a_f a_g a_o] before the step, [i f g o] after it
    step_buffers = ("tanh_c",)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        peephole: bool = False,
        forget_bias: float | None = None,
        dtype: Any = np.float32,
        device: str | Device = "cpu",
        rng: np.random.Generator,
    ) -> None:
        self.peephole = peephole
        super().__init__(input_size, hidden_size, num_layers, bias=bias, dropout=dropout,
                         bidirectional=bidirectional, dtype=dtype, device=device, rng=rng)
        self.forget_bias = None if forget_bias is None else float(forget_bias)
        if self.forget_bias is not None:
            self.init_forget_bias(self.forget_bias)
        self._moved()  # the gate constants, on the layer's device

    def _moved(self) -> None:
        super()._moved()
        # the four blocks [i f g o] are [sigma sigma tanh sigma] (activations.gate_constants)
        constants = gate_constants("ssts", self.hidden_size, self.dtype)
        self._scale, self._shift, self._beta = (to_device(a, self.device) for a in constants)

    def init_forget_bias(self, value: float) -> None:
        """Set every layer's forget-gate bias to ``value``: b_ih's f block to it, b_hh's to 0.

        The other gates' biases are untouched. ``LanguageModel`` calls this again after its
        ``init_range`` redraw, which would otherwise overwrite it.
        """
        if not self.bias:
            raise ValueError("forget_bias needs bias=True")
        if not np.isfinite(value):
            raise ValueError(f"forget_bias must be a finite number, got {value!r}")
        H = self.hidden_size
        for p in self.weights:
            p["bias_ih"].value[H:2 * H] = value  # the f block of [i f g o]
            p["bias_hh"].value[H:2 * H] = 0.0

    def extra_repr(self) -> str:
        extra = "" if self.forget_bias is None else f", forget_bias={self.forget_bias}"
        return super().extra_repr() + extra

    def _param_shapes(self, in_size: int) -> dict[str, tuple[int, ...]]:
        shapes = super()._param_shapes(in_size)
        if self.peephole:
            H = self.hidden_size
            shapes.update(weight_ci=(H,), weight_cf=(H,), weight_co=(H,))
        return shapes

    def _step_forward(self, k: int, t: int) -> None:
        b, p, H = self._buffers[k], self.weights[k], self.hidden_size
        h_prev, c_prev, c = b["h"][t], b["c"][t], b["c"][t + 1]  # (N, H)
        a = b["ifgo"][t]  # (N, 4H): x_t W_ih^T + b on entry; [i f g o] on exit
        scratch = self._buffer(k, "scratch", a.shape)  # (N, 4H), reused every step
        xp = self.xp
        a += xp.matmul(h_prev, b["W_hh^T"], out=scratch)  # + h_{t-1} W_hh^T
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        if self.peephole:
            i += p["weight_ci"].value * c_prev
            f += p["weight_cf"].value * c_prev
            sigmoid_(a[:, :2 * H])  # i, f = sigma(a_i + w_ci c_{t-1}), sigma(a_f + ...)
            tanh_(g)  # g = tanh(a_g)
        else:
            gate_activations_(a, self._scale, self._shift)  # [i f g o] = [s s tanh s](a)
        xp.multiply(f, c_prev, out=c)  # c_t = f * c_{t-1} + i * g
        c += xp.multiply(i, g, out=scratch[:, :H])
        if self.peephole:
            o += p["weight_co"].value * c
            sigmoid_(o)  # o = sigma(a_o + w_co c_t)
        tanh_c = xp.tanh(c, out=b["tanh_c"][t])
        xp.multiply(o, tanh_c, out=b["h"][t + 1])  # h_t = o * tanh(c_t)

    # _step_forward fused into one CUDA kernel (after the one GEMM gh = h_{t-1} W_hh^T):
    # thread (n, j) computes column j of every gate of row n. No peepholes: w_c* are 0.
    # --8<-- [start:forward_cuda] (docs/layers/lstm.md shows the kernel)
    FORWARD_CUDA = r"""
__device__ void lstm_forward(real a_i, real a_f, real a_g, real a_o, real c_prev,
                             real w_ci, real w_cf, real w_co,
                             real *i, real *f, real *g, real *o,
                             real *c, real *tanh_c, real *h) {
    *i = sigmoid(a_i + w_ci * c_prev);     // input gate
    *f = sigmoid(a_f + w_cf * c_prev);     // forget gate
    *g = tanh(a_g);                        // candidate
    *c = *f * c_prev + *i * *g;            // c_t = f * c_{t-1} + i * g
    *o = sigmoid(a_o + w_co * *c);         // output gate
    *tanh_c = tanh(*c);
    *h = *o * *tanh_c;                     // h_t = o * tanh(c_t)
}

extern "C" __global__ void lstm_step_forward(
        const real *gh,       // (N, 4H) h_{t-1} W_hh^T
        const real *c_prev,   // (N, H)
        const real *w_ci, const real *w_cf, const real *w_co,  // (H,) if peephole
        int peephole, int N, int H,
        real *ifgo,           // (N, 4H) in: x_t W_ih^T + b; out: [i f g o]
        real *c, real *tanh_c, real *h) {  // (N, H) c_t, tanh(c_t), h_t
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= N * H) return;
    int n = idx / H, j = idx - n * H;
    real *a = ifgo + (long long)n * 4 * H;
    const real *ah = gh + (long long)n * 4 * H;
    real zero = 0;
    lstm_forward(a[j] + ah[j], a[H + j] + ah[H + j], a[2 * H + j] + ah[2 * H + j],
                 a[3 * H + j] + ah[3 * H + j], c_prev[idx],
                 peephole ? w_ci[j] : zero, peephole ? w_cf[j] : zero,
                 peephole ? w_co[j] : zero,
                 &a[j], &a[H + j], &a[2 * H + j], &a[3 * H + j], &c[idx], &tanh_c[idx], &h[idx]);
}
"""
    # --8<-- [end:forward_cuda]

    def _step_forward_cuda(self, k: int, t: int) -> None:
        """``_step_forward`` on a GPU: one GEMM, then ``FORWARD_CUDA`` on the same buffers."""
        b, H = self._buffers[k], self.hidden_size
        a = b["ifgo"][t]  # (N, 4H): x_t W_ih^T + b on entry; [i f g o] on exit
        gh = self.xp.matmul(b["h"][t], b["W_hh^T"],
                            out=self._buffer(k, "scratch", a.shape))  # h_{t-1} W_hh^T
        launch(self.FORWARD_CUDA, "lstm_step_forward", self.dtype, a.shape[0] * H,
               gh, b["c"][t], *self._peepholes(k, gh), int(self.peephole), a.shape[0], H,
               a, b["c"][t + 1], b["tanh_c"][t], b["h"][t + 1])

    def _peepholes(self, k: int, unused: Array) -> tuple[Array, Array, Array]:
        """(w_ci, w_cf, w_co) for a kernel; without peepholes ``unused`` thrice (not read)."""
        if not self.peephole:
            return unused, unused, unused
        p = self.weights[k]
        return p["weight_ci"].value, p["weight_cf"].value, p["weight_co"].value

    def _step_backward(
        self, k: int, t: int, dstate: tuple[Array, ...], dG_t: Array, dGh_t: Array
    ) -> tuple[Array, ...]:
        (dh, dc), held = self._hold(t, dstate)  # dh_t, dc_t: (..., N, H)
        b, p, H, xp = self._buffers[k], self.weights[k], self.hidden_size, self.xp
        ifgo, c_prev, tanh_c = b["ifgo"][t], b["c"][t], b["tanh_c"][t]
        i, f, g, o = ifgo[:, :H], ifgo[:, H:2 * H], ifgo[:, 2 * H:3 * H], ifgo[:, 3 * H:]
        da_i, da_f, da_g, da_o = (dG_t[..., :H], dG_t[..., H:2 * H], dG_t[..., 2 * H:3 * H],
                                  dG_t[..., 3 * H:])  # views of dG_t, written in place
        # [i(1-i) f(1-f) 1-g^2 o(1-o)]: each gate's derivative, (N, 4H)
        act = gate_derivatives(ifgo, self._beta, self._buffer(k, "act", ifgo.shape),
                               self._buffer(k, "scratch", ifgo.shape))
        xp.multiply(dh, tanh_c, out=da_o)  # do = dh_t * tanh(c_t)
        if self.peephole:
            da_o *= act[:, 3 * H:]  # da_o = do * o(1-o), needed for dc_t just below
        dc_t = tanh_backward(dh, tanh_c, self._buffer(k, "dc_t", dh.shape))
        dc_t *= o
        dc_t += dc  # dc_t = dc + dh_t * o * (1 - tanh^2(c_t)); dc is read for the last time
        if self.peephole:
            dc_t += p["weight_co"].value * da_o
        xp.multiply(dc_t, g, out=da_i)  # di = dc_t * g
        xp.multiply(dc_t, c_prev, out=da_f)  # df = dc_t * c_{t-1}
        xp.multiply(dc_t, i, out=da_g)  # dg = dc_t * i
        if self.peephole:
            dG_t[..., :3 * H] *= act[:, :3 * H]  # da_o is done already
        else:
            dG_t *= act  # [da_i da_f da_g da_o] = [di df dg do] * act
        # one dc_prev buffer for all steps: dc (read above, not below) is this very buffer
        # when no cell output was returned, so it must be read before this line writes it
        # (tests/test_reference_cells.py fails otherwise)
        dc_prev = xp.multiply(dc_t, f, out=self._buffer(k, "dc_prev", dh.shape))
        if self.peephole:
            dc_prev += p["weight_ci"].value * da_i + p["weight_cf"].value * da_f
        dh_prev = xp.matmul(dG_t, p["weight_hh"].value, out=self._buffer(k, "dh_prev", dh.shape))
        if held:
            dh_prev += held[0]
            dc_prev += held[1]
        return dh_prev, dc_prev

    # _step_backward fused into one CUDA kernel (before the one GEMM dh_{t-1} = da W_hh);
    # thread (a, n, j): age a of the truncated streams (else 0), row n, column j.
    # --8<-- [start:backward_cuda] (docs/layers/lstm.md shows the kernel)
    BACKWARD_CUDA = r"""
__device__ void lstm_backward(real dh, real dc, real i, real f, real g, real o,
                              real c_prev, real tanh_c, real w_ci, real w_cf, real w_co,
                              real *da_i, real *da_f, real *da_g, real *da_o,
                              real *dc_prev) {
    real d_o = dh * tanh_c;                            // do = dh_t * tanh(c_t)
    *da_o = d_o * o * (1 - o);
    real dc_t = dc + dh * o * (1 - tanh_c * tanh_c);   // dc_t += dh_t * o * (1 - tanh^2(c_t))
    dc_t += w_co * *da_o;                              // dc_t += w_co * da_o
    *da_i = dc_t * g * i * (1 - i);
    *da_f = dc_t * c_prev * f * (1 - f);
    *da_g = dc_t * i * (1 - g * g);
    *dc_prev = dc_t * f + w_ci * *da_i + w_cf * *da_f;
}

extern "C" __global__ void lstm_step_backward(
        const real *dh, const real *dc,   // (A, N, H) dh_t, dc_t (dc may be dc_prev itself)
        const real *ifgo,                 // (N, 4H) [i f g o]
        const real *c_prev, const real *tanh_c,  // (N, H)
        const real *w_ci, const real *w_cf, const real *w_co,  // (H,) if peephole
        int peephole, int A, int N, int H,
        real *dG,                         // (A, N, 4H) [da_i da_f da_g da_o]
        real *dc_prev) {                  // (A, N, H)
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= A * N * H) return;
    int row = idx / H, j = idx - row * H;  // row = a * N + n
    int m = idx % (N * H);                 // (n, j) in the forward buffers
    const real *s = ifgo + (long long)(m / H) * 4 * H;
    real *d = dG + (long long)row * 4 * H;
    real zero = 0;
    lstm_backward(dh[idx], dc[idx], s[j], s[H + j], s[2 * H + j], s[3 * H + j],
                  c_prev[m], tanh_c[m], peephole ? w_ci[j] : zero,
                  peephole ? w_cf[j] : zero, peephole ? w_co[j] : zero,
                  &d[j], &d[H + j], &d[2 * H + j], &d[3 * H + j], &dc_prev[idx]);
}
"""
    # --8<-- [end:backward_cuda]

    def _step_backward_cuda(
        self, k: int, t: int, dstate: tuple[Array, ...], dG_t: Array, dGh_t: Array
    ) -> tuple[Array, ...]:
        """``_step_backward`` on a GPU: ``BACKWARD_CUDA``, then one GEMM, same buffers."""
        (dh, dc), held = self._hold(t, dstate)  # dh_t, dc_t: (..., N, H)
        b, p, H = self._buffers[k], self.weights[k], self.hidden_size
        xp = self.xp
        dh, dc = xp.ascontiguousarray(dh), xp.ascontiguousarray(dc)
        N = b["c"].shape[1]
        dc_prev = self._buffer(k, "dc_prev", dh.shape)  # may be dc itself: read first, per thread
        launch(self.BACKWARD_CUDA, "lstm_step_backward", self.dtype, dh.size,
               dh, dc, b["ifgo"][t], b["c"][t], b["tanh_c"][t], *self._peepholes(k, dh),
               int(self.peephole), dh.size // (N * H), N, H, dG_t, dc_prev)
        dh_prev = xp.matmul(dG_t, p["weight_hh"].value, out=self._buffer(k, "dh_prev", dh.shape))
        if held:
            dh_prev += held[0]
            dc_prev += held[1]
        return dh_prev, dc_prev

    def _extra_weight_grads(self, k: int, dG: Array) -> None:
        if not self.peephole:
            return
        p, c, H, xp = self.weights[k], self._buffers[k]["c"], self.hidden_size, self.xp
        p["weight_ci"].grad += xp.einsum("tnh,tnh->h", dG[..., :H], c[:-1])
        p["weight_cf"].grad += xp.einsum("tnh,tnh->h", dG[..., H:2 * H], c[:-1])
        # c[1:] is held past a sequence's end, but there da_o is zero
        p["weight_co"].grad += xp.einsum("tnh,tnh->h", dG[..., 3 * H:], c[1:])
