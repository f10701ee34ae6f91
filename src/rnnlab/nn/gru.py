"""Gated recurrent unit in PyTorch's formulation."""

from __future__ import annotations

from rnnlab._array import Array
from rnnlab.nn._cuda import launch
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
        # gh = h_{t-1} W_hh^T + b_hh: (N, 3H)
        gh = self.xp.matmul(h_prev, b["W_hh^T"], out=self._buffer(k, "scratch", a.shape))
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

    # _step_forward fused into one CUDA kernel (after the one GEMM h_{t-1} W_hh^T):
    # thread (n, j) computes column j of r, z, n and h_t of row n.
    # --8<-- [start:forward_cuda] (docs/layers/gru.md shows the kernel)
    FORWARD_CUDA = r"""
__device__ void gru_forward(real gx_r, real gx_z, real gx_n, real gh_r, real gh_z, real gh_n,
                            real h_prev, real *r, real *z, real *n, real *h) {
    *r = sigmoid(gx_r + gh_r);             // reset gate
    *z = sigmoid(gx_z + gh_z);             // update gate
    *n = tanh(gx_n + *r * gh_n);           // the reset gate scales W_hn h + b_hn
    *h = *n + *z * (h_prev - *n);          // h_t = (1 - z) * n + z * h_{t-1}
}

extern "C" __global__ void gru_step_forward(
        const real *hw,       // (N, 3H) h_{t-1} W_hh^T
        const real *b_hh,     // (3H,) if bias
        const real *h_prev,   // (N, H)
        int bias, int N, int H,
        real *rzn,            // (N, 3H) in: x_t W_ih^T + b_ih; out: [r z n]
        real *gh_n_out,       // (N, H) W_hn h_{t-1} + b_hn, kept for backward
        real *h) {            // (N, H) h_t
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= N * H) return;
    int n = idx / H, j = idx - n * H;
    real *a = rzn + (long long)n * 3 * H;
    const real *w = hw + (long long)n * 3 * H;
    real zero = 0;
    real gh_r = w[j] + (bias ? b_hh[j] : zero);   // [gh_r gh_z gh_n] = h_{t-1} W_hh^T + b_hh
    real gh_z = w[H + j] + (bias ? b_hh[H + j] : zero);
    real gh_n = w[2 * H + j] + (bias ? b_hh[2 * H + j] : zero);
    gh_n_out[idx] = gh_n;
    gru_forward(a[j], a[H + j], a[2 * H + j], gh_r, gh_z, gh_n, h_prev[idx],
                &a[j], &a[H + j], &a[2 * H + j], &h[idx]);
}
"""
    # --8<-- [end:forward_cuda]

    def _step_forward_cuda(self, k: int, t: int) -> None:
        """``_step_forward`` on a GPU: one GEMM, then ``FORWARD_CUDA`` on the same buffers."""
        b, p, H = self._buffers[k], self.weights[k], self.hidden_size
        a = b["rzn"][t]  # (N, 3H): gx on entry; [r z n] on exit
        hw = self.xp.matmul(b["h"][t], b["W_hh^T"],
                            out=self._buffer(k, "scratch", a.shape))  # h_{t-1} W_hh^T
        b_hh = p["bias_hh"].value if self.bias else hw  # hw: not read without bias
        launch(self.FORWARD_CUDA, "gru_step_forward", self.dtype, a.shape[0] * H,
               hw, b_hh, b["h"][t], int(self.bias), a.shape[0], H, a, b["gh_n"][t], b["h"][t + 1])

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

    # _step_backward fused into one CUDA kernel (before the one GEMM dGh W_hh);
    # thread (a, n, j): age a of the truncated streams (else 0), row n, column j.
    # --8<-- [start:backward_cuda] (docs/layers/gru.md shows the kernel)
    BACKWARD_CUDA = r"""
__device__ void gru_backward(real dh, real r, real z, real n, real h_prev, real gh_n,
                             real *dgx_r, real *dgx_z, real *dgx_n, real *dgh_n,
                             real *dh_prev) {
    *dh_prev = dh * z;                     // h_t = (1 - z) * n + z * h_{t-1}
    real dn = dh * (1 - z);
    real dz = dh * (h_prev - n);
    *dgx_z = dz * z * (1 - z);             // through z's sigmoid
    *dgx_n = dn * (1 - n * n);             // through n's tanh
    real dr = *dgx_n * gh_n;
    *dgx_r = dr * r * (1 - r);             // through r's sigmoid
    *dgh_n = *dgx_n * r;                   // dgh_n = dgx_n * r
}

extern "C" __global__ void gru_step_backward(
        const real *dh,       // (A, N, H) dh_t
        const real *rzn,      // (N, 3H) [r z n]
        const real *h_prev, const real *gh_n,  // (N, H)
        int A, int N, int H,
        real *dG,             // (A, N, 3H) [dgx_r dgx_z dgx_n]
        real *dGh,            // (A, N, 3H) [dgh_r dgh_z dgh_n] (dgh_r = dgx_r, dgh_z = dgx_z)
        real *dh_z) {         // (A, N, H) dh_t * z: dh_{t-1} before the GEMM's part
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= A * N * H) return;
    int row = idx / H, j = idx - row * H;  // row = a * N + n
    int m = idx % (N * H);                 // (n, j) in the forward buffers
    const real *s = rzn + (long long)(m / H) * 3 * H;
    real *d = dG + (long long)row * 3 * H, *e = dGh + (long long)row * 3 * H;
    gru_backward(dh[idx], s[j], s[H + j], s[2 * H + j], h_prev[m], gh_n[m],
                 &d[j], &d[H + j], &d[2 * H + j], &e[2 * H + j], &dh_z[idx]);
    e[j] = d[j];                           // r and z read gh_r, gh_z as they read gx
    e[H + j] = d[H + j];
}
"""
    # --8<-- [end:backward_cuda]

    def _step_backward_cuda(
        self, k: int, t: int, dstate: tuple[Array, ...], dG_t: Array, dGh_t: Array
    ) -> tuple[Array, ...]:
        """``_step_backward`` on a GPU: ``BACKWARD_CUDA``, then one GEMM, same buffers."""
        (dh,), held = self._hold(t, dstate)  # dh_t: (..., N, H)
        b, p, H = self._buffers[k], self.weights[k], self.hidden_size
        dh = self.xp.ascontiguousarray(dh)
        N = b["h"].shape[1]
        dh_prev = self._buffer(k, "dh_z", dh.shape)  # dh_t * z, then + dGh_t W_hh
        launch(self.BACKWARD_CUDA, "gru_step_backward", self.dtype, dh.size,
               dh, b["rzn"][t], b["h"][t], b["gh_n"][t], dh.size // (N * H), N, H,
               dG_t, dGh_t, dh_prev)
        dh_prev += dGh_t @ p["weight_hh"].value  # (..., N, H)
        if held:
            dh_prev += held[0]
        return (dh_prev,)
