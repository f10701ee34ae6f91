"""Fully connected (affine) layer."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import DTypeLike

from rnnlab._array import Array, check_array, check_float_dtype, check_rng, check_sizes, uniform
from rnnlab.device import Device
from rnnlab.nn.module import Module, Parameter


class Linear(Module):
    """Affine map ``y = x W^T + b`` applied to the last axis, in PyTorch's weight layout.

    Shapes, with ``M`` the product of the leading axes of ``x`` (e.g. ``T * N``)::

        x  : (..., in)        X = x reshaped to (M, in)
        W  : (out, in)        b : (out,)
        y  = X W^T + b        : (M, out), returned as (..., out)

    Backward, for an upstream gradient ``dy`` (..., out), reshaped to ``dY`` (M, out)::

        dW += dY^T X          : (out, in)   one matmul over all M rows
        db += sum_rows dY     : (out,)
        dx  = dY W            : (M, in), returned as (..., in)

    Initialisation as in ``torch.nn.Linear``: ``W, b ~ U(-1/sqrt(in), 1/sqrt(in))``.

    Examples::

        >>> fc = Linear(4, 2, dtype=np.float64, rng=np.random.default_rng(0))
        >>> x = np.ones((3, 5, 4))                  # (T, N, in)
        >>> y = fc.forward(x)                       # (T, N, out)
        >>> dx = fc.backward(np.ones_like(y))       # (T, N, in); adds into fc.weight.grad
        >>> y.shape, dx.shape, fc.weight.grad[0, 0]
        ((3, 5, 2), (3, 5, 4), np.float64(15.0))
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        dtype: DTypeLike = np.float32,
        device: str | Device = "cpu",
        rng: np.random.Generator,
    ) -> None:
        check_sizes(in_features=in_features, out_features=out_features)
        check_rng(rng)
        self.dtype = check_float_dtype(dtype)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        bound = 1.0 / math.sqrt(in_features)
        shape = (self.out_features, self.in_features)
        self.weight = Parameter(uniform(rng, bound, shape, self.dtype))  # (out, in)
        self.bias: Parameter | None = (
            Parameter(uniform(rng, bound, (self.out_features,), self.dtype))  # (out,)
            if bias
            else None
        )
        self._cache: tuple[Array, tuple[int, ...]] | None = None
        self._place(device)

    def forward(self, x: Array) -> Array:
        check_array("x", x, self.dtype, getattr(x, "ndim", -1))
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"x must have shape (..., {self.in_features}) (in_features), got {tuple(x.shape)}"
            )
        X = x.reshape(-1, self.in_features)  # (M, in); a view when x is contiguous
        y = X @ self.weight.value.T  # (M, out)
        if self.bias is not None:
            y += self.bias.value  # in place: no second (M, out) temporary
        self._cache = (X, x.shape)
        return y.reshape(*x.shape[:-1], self.out_features)  # (..., out)

    def backward(self, dy: Array) -> Array:
        if self._cache is None:
            raise RuntimeError("Linear.backward called before forward")
        X, x_shape = self._cache
        out_shape = (*x_shape[:-1], self.out_features)
        check_array("dy", dy, self.dtype, len(out_shape))
        if tuple(dy.shape) != out_shape:
            raise ValueError(f"dy must have the output's shape {out_shape}, got {tuple(dy.shape)}")
        dY = dy.reshape(-1, self.out_features)  # (M, out)
        if self.bias is not None:
            self.bias.grad += dY.sum(axis=0)  # (out,)
        self.weight.grad += dY.T @ X  # (out, in)
        dX = dY @ self.weight.value  # (M, in)
        return dX.reshape(x_shape)  # (..., in)

    def __repr__(self) -> str:
        return (
            f"Linear({self.in_features}, {self.out_features}, "
            f"bias={self.bias is not None}, dtype={self.dtype})"
        )
