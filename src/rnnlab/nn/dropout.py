"""Inverted dropout, and the masks of a share of a batch (:class:`ShareGenerator`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from numpy.typing import DTypeLike

from rnnlab._array import Array, check_array, check_float_dtype
from rnnlab.device import Device, to_device
from rnnlab.nn.module import Module


class ShareGenerator(np.random.Generator):
    """A NumPy generator (the same stream as ``np.random.default_rng(seed)``) that, within
    :meth:`batch_share`, draws each dropout mask for a whole batch and keeps a share of it.

    Data-parallel training splits every batch across processes; for their steps to be one
    process's, each must apply the whole batch's masks, sliced to its examples, and their
    generators must stay in step. The share is this generator's own state, set by the run
    that owns it (never a module-level switch): other generators draw as usual.

    >>> whole = dropout_mask(ShareGenerator(np.random.PCG64(0)), 0.5, (3, 4, 2), np.float64)
    >>> g = ShareGenerator(np.random.PCG64(0))
    >>> with g.batch_share(4, 1, 3):
    ...     part = dropout_mask(g, 0.5, (3, 2, 2), np.float64)
    >>> bool((part == whole[:, 1:3]).all())
    True
    """

    share: tuple[int, int, int] | None = None  # (N, a, b) of the current batch_share

    @contextmanager
    def batch_share(self, total: int, a: int, b: int) -> Iterator[None]:
        """Within the block, the layers run on examples ``[a, b)`` of a batch of ``total``:
        a mask of shape ``(..., b - a, D)`` (the batch axis is the second to last in every
        layer) is drawn as ``(..., total, D)``, then ``[..., a:b, :]`` is kept."""
        before, self.share = self.share, (int(total), int(a), int(b))
        try:
            yield
        finally:
            self.share = before


def dropout_mask(
    rng: np.random.Generator, p: float, shape: tuple[int, ...], dtype: DTypeLike
) -> Array:
    """Inverted-dropout mask of ``shape``: 0 with probability p, else 1/(1-p) (from a
    :class:`ShareGenerator` inside its ``batch_share``: this share's slice of the whole
    batch's mask).

    >>> m = dropout_mask(np.random.default_rng(0), 0.5, (1000,), np.float64)
    >>> sorted(set(m.tolist())), bool(0.9 < m.mean() < 1.1)   # E[m] = 1
    ([0.0, 2.0], True)
    """
    dt = check_float_dtype(dtype)
    shape = tuple(shape)
    share = getattr(rng, "share", None)
    if share is not None:
        total, a, b = share
        if len(shape) < 2 or shape[-2] != b - a:
            raise ValueError(f"a dropout mask of shape {shape} inside a share of examples "
                             f"[{a}, {b}) must have {b - a} on its second-to-last axis")
        u = rng.random((*shape[:-2], total, shape[-1]), dtype=dt)[..., a:b, :]
    else:
        u = rng.random(shape, dtype=dt)
    mask = (u >= p).astype(dt)  # keep with probability 1 - p
    mask *= dt.type(1.0 / (1.0 - p))
    return mask


class Dropout(Module):
    """Inverted dropout: zero each unit with probability ``p``, scale the rest by ``1/(1-p)``.

    Shapes (any ``x``; the mask may broadcast over leading axes, e.g. one (N, D) mask
    shared by every time step of a (T, N, D) input)::

        m_i = k_i / (1 - p),  k_i ~ Bernoulli(1 - p)      m : broadcastable to x.shape
        y   = x * m                                       y : x.shape
        dx  = dy * m                                      dx: x.shape

    Scaling at training time keeps ``E[y] = x``, so evaluation needs no rescaling: in eval
    mode (``self.training`` False) and when ``p == 0`` the layer is the identity.

    ``forward(x, mask=m)`` uses a given mask (already scaled, as from :meth:`sample_mask`),
    which fixes the randomness for tests and gradient checks; without one a fresh mask is
    drawn from ``rng`` in the input's dtype.

    ``dtype=None`` accepts float32 or float64 inputs; a dtype given requires it. On a GPU
    (``device=``) masks are drawn by ``rng`` on the host and uploaded.

    Examples::

        >>> drop = Dropout(0.5, rng=np.random.default_rng(0))
        >>> x = np.ones((2, 4))
        >>> y = drop.forward(x, mask=np.array([0.0, 2.0, 2.0, 0.0]))  # one mask, every row
        >>> y[0], drop.backward(np.ones_like(y))[1]
        (array([0., 2., 2., 0.]), array([0., 2., 2., 0.]))
        >>> drop.eval().forward(x) is x             # eval mode: the identity
        True
    """

    def __init__(
        self, p: float = 0.5, *, dtype: DTypeLike | None = None, device: str | Device = "cpu",
        rng: np.random.Generator,
    ) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must satisfy 0 <= p < 1, got {p!r}")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.dtype = None if dtype is None else check_float_dtype(dtype)
        self.p = float(p)
        self.rng = rng
        self._mask: Array | None = None
        self._x_shape: tuple[int, ...] | None = None
        self._place(device)

    def _moved(self) -> None:
        self._mask = None

    def sample_mask(self, shape: tuple[int, ...], dtype: DTypeLike = np.float32) -> Array:
        """A fresh scaled mask (values 0 or 1/(1-p)) of ``shape``, drawn from ``self.rng``
        (on the host), on the layer's device."""
        return to_device(dropout_mask(self.rng, self.p, shape, dtype), self.device)

    def forward(self, x: Array, mask: Array | None = None) -> Array:
        if self.dtype is not None:
            check_array("x", x, self.dtype, getattr(x, "ndim", -1))
        elif not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise ValueError(f"x must be an array, got {type(x).__name__}")
        elif x.dtype not in (np.float32, np.float64):
            raise ValueError(f"x must be a float32 or float64 array, got dtype {x.dtype}")
        self._x_shape = tuple(x.shape)
        if not self.training:
            self._mask = None
            return x
        if mask is None:
            if self.p == 0.0:
                self._mask = None
                return x
            mask = self.sample_mask(x.shape, x.dtype)
        else:
            check_array("mask", mask, x.dtype, getattr(mask, "ndim", -1))
            try:
                fits = np.broadcast_shapes(mask.shape, x.shape) == tuple(x.shape)
            except ValueError:
                fits = False
            if not fits:
                raise ValueError(
                    f"mask of shape {tuple(mask.shape)} does not broadcast to x's shape "
                    f"{tuple(x.shape)}"
                )
        self._mask = mask
        return x * mask  # (...) same shape as x

    def backward(self, dy: Array) -> Array:
        if self._x_shape is None:
            raise RuntimeError("Dropout.backward called before forward")
        if getattr(dy, "shape", None) is None or tuple(dy.shape) != self._x_shape:
            raise ValueError(
                f"dy must have the output's shape {self._x_shape}, got {getattr(dy, 'shape', dy)}"
            )
        if self._mask is None:
            return dy
        return dy * self._mask  # (...) same shape as x

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"
