"""Fused softmax and cross-entropy loss."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab._array import Array, check_array, check_float_dtype
from rnnlab.device import Device, array_module, device_of, to_device, to_host
from rnnlab.nn.module import Module


class SoftmaxCrossEntropy(Module):
    """Mean cross-entropy of ``softmax(logits)`` against integer targets, fused.

    Shapes, with ``M`` the number of positions (e.g. ``T * N``) and ``C`` classes::

        z : (..., C) logits       t : (...) ints in [0, C)       mask : (...) bool
        c_i = [t_i != ignore_index] and mask_i                   counted positions
        K   = sum_i c_i                                          count
        p_i = softmax(z_i) = exp(z_i - max z_i) / sum_j exp(z_ij - max z_i)     : (M, C)
        L   = (1/K) sum_i c_i (log sum_j exp(z_ij - max z_i) - (z_it - max z_i))  : scalar

    Backward (the softmax Jacobian and the log cancel, hence the fusion)::

        dz_i = dL * c_i (p_i - onehot(t_i)) / K                                  : (..., C)

    Subtracting the row maximum makes every exponent <= 0, so nothing overflows. With no
    counted position the loss is 0.0 and the gradient is zero (not NaN).

    The exponentials are computed in place in one (M, C) buffer, and ``backward`` turns
    that same buffer into ``dz`` (normalising and scaling in one pass): at a vocabulary of
    10000 each (M, C) pass is costly. So ``backward`` can run once per ``forward``.

    After each forward, ``last_loss_sum`` (float64 sum over counted positions) and
    ``last_count`` (K) let evaluation code form exact per-token means over many batches.
    ``dtype=None`` accepts float32 or float64 logits; a dtype given requires it.

    On a GPU the logits are CuPy arrays; targets and mask may be NumPy arrays (checked on
    the host, then uploaded). There ``forward`` returns the loss as a 0-d device array,
    unread (``float(loss)`` reads it; the training loop reads it with the gradient norm, in
    one transfer), and ``last_loss_sum`` reads the sum when asked.

    Examples::

        >>> crit = SoftmaxCrossEntropy()
        >>> logits = np.zeros((2, 3, 4))            # (T, N, C): uniform predictions
        >>> loss = crit.forward(logits, np.zeros((2, 3), dtype=int))
        >>> round(loss, 4) == round(float(np.log(4)), 4)
        True
        >>> crit.backward()[0, 0]                   # (p - onehot) / K, K = 6 positions
        array([-0.125     ,  0.04166667,  0.04166667,  0.04166667])
    """

    def __init__(
        self, *, ignore_index: int | None = None, dtype: DTypeLike | None = None,
        device: str | Device = "cpu",
    ) -> None:
        if ignore_index is not None and not isinstance(ignore_index, (int, np.integer)):
            raise ValueError(f"ignore_index must be an int or None, got {ignore_index!r}")
        self.dtype = None if dtype is None else check_float_dtype(dtype)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self._loss_sum: Any = 0.0  # a float, or a 0-d device array not read yet
        self.last_count = 0
        self._cache: tuple[Array, Array, Array, Array, Array | None, tuple[int, ...]] | None = None
        self._place(device)

    def _check_inputs(self, logits: Array, targets: Array, mask: Array | None) -> None:
        if not hasattr(logits, "shape") or not hasattr(logits, "dtype"):
            raise ValueError(f"logits must be an array, got {type(logits).__name__}")
        if self.dtype is not None:
            check_array("logits", logits, self.dtype, logits.ndim)
        elif logits.dtype not in (np.float32, np.float64):
            raise ValueError(f"logits must be float32 or float64, got dtype {logits.dtype}")
        if logits.ndim < 1 or logits.shape[-1] < 1:
            raise ValueError(f"logits must have shape (..., C) with C >= 1, got {logits.shape}")
        if not hasattr(targets, "shape") or not hasattr(targets, "dtype"):
            raise ValueError(f"targets must be an integer array, got {type(targets).__name__}")
        if not np.issubdtype(targets.dtype, np.integer):
            raise ValueError(f"targets must be an integer array, got dtype {targets.dtype}")
        if tuple(targets.shape) != tuple(logits.shape[:-1]):
            raise ValueError(
                f"targets shape {tuple(targets.shape)} must equal logits.shape[:-1] = "
                f"{tuple(logits.shape[:-1])}"
            )
        if mask is not None:
            if getattr(mask, "dtype", None) != np.bool_:
                raise ValueError(
                    f"mask must be a boolean array, got {getattr(mask, 'dtype', type(mask))}"
                )
            if tuple(mask.shape) != tuple(targets.shape):
                raise ValueError(
                    f"mask shape {tuple(mask.shape)} must equal targets shape "
                    f"{tuple(targets.shape)}"
                )

    def forward(self, logits: Array, targets: Array, mask: Array | None = None) -> float:
        self._check_inputs(logits, targets, mask)
        C = logits.shape[-1]
        Z = logits.reshape(-1, C)  # (M, C)
        t = to_host(targets).reshape(-1)  # (M,) checked and indexed on the host
        mask = None if mask is None else to_host(mask)
        counted = None if self.ignore_index is None else t != self.ignore_index  # (M,) bool
        if mask is not None:
            counted = mask.reshape(-1) if counted is None else counted & mask.reshape(-1)
        rows = np.arange(t.size) if counted is None else np.flatnonzero(counted)  # (K,)
        t_k = t[rows]  # (K,)
        if t_k.size:
            lo, hi = int(t_k.min()), int(t_k.max())
            if lo < 0 or hi >= C:
                raise ValueError(
                    f"targets must lie in [0, {C}) (number of classes) or equal ignore_index="
                    f"{self.ignore_index}, got target {lo if lo < 0 else hi}"
                )
        xp, where = array_module(Z), device_of(Z)
        if xp is not np:  # the logits' device: the indices go there once
            rows, t_k = to_device(rows, where), to_device(t_k, where)
            counted = None if counted is None else to_device(counted, where)

        exps = xp.empty(Z.shape, Z.dtype)  # (M, C): the one buffer, reused by backward
        xp.subtract(Z, Z.max(axis=1, keepdims=True), out=exps)  # shifted logits s <= 0
        s_t = exps[rows, t_k]  # (K,) target's shifted logit, read before exp overwrites it
        xp.exp(exps, out=exps)  # exp(s); p = exp(s) / sums is formed in backward, in one pass
        sums = exps.sum(axis=1, keepdims=True)  # (M, 1)
        losses = xp.log(sums[rows, 0]) - s_t  # (K,) -log p_t = log sum_j exp(s_j) - s_t

        # float64 accumulation: the sum may span a whole corpus via last_loss_sum.
        total = losses.sum(dtype=np.float64)
        self._loss_sum = float(total) if xp is np else total  # on a GPU: not read here
        self.last_count = int(rows.size)
        self._cache = (exps, sums, rows, t_k, counted, tuple(logits.shape))
        if xp is np:
            return self._loss_sum / self.last_count if self.last_count else 0.0
        return total / max(self.last_count, 1)  # 0-d, on the device (0 when K = 0)

    @property
    def last_loss_sum(self) -> float:
        """The last forward's summed loss over the counted positions (float64)."""
        if not isinstance(self._loss_sum, float):
            self._loss_sum = float(self._loss_sum)  # a device-to-host read, once
        return self._loss_sum

    def backward(self, dloss: float = 1.0) -> Array:
        """``dL/dlogits`` (..., C), scaled by the upstream scalar gradient ``dloss``."""
        if self._cache is None:
            raise RuntimeError(
                "SoftmaxCrossEntropy.backward needs a forward first (and runs once per forward)"
            )
        exps, sums, rows, t_k, counted, shape = self._cache
        self._cache = None  # the buffer becomes dz below, so the exponentials are gone
        dZ = exps  # (M, C)
        if rows.size == 0:
            dZ[...] = 0
            return dZ.reshape(shape)
        scale = dloss / rows.size
        dZ *= (scale / sums).astype(dZ.dtype)  # (M, C) * (M, 1): scale * p, in one pass
        dZ[rows, t_k] -= dZ.dtype.type(scale)  # rows are distinct: fancy indexing is exact
        if counted is not None and rows.size < counted.size:
            dZ[~counted] = 0
        return dZ.reshape(shape)  # (..., C)

    def __repr__(self) -> str:
        return f"SoftmaxCrossEntropy(ignore_index={self.ignore_index})"
