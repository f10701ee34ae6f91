"""The layer protocol shared by every layer and model.

A layer owns its :class:`Parameter` objects and the cache of its last ``forward``; it
never owns recurrent state (that is passed in and returned). The protocol:

- ``out = layer.forward(x, ...)`` caches what ``backward`` needs;
- ``dx = layer.backward(dout)`` *adds* parameter gradients into ``p.grad`` (so a tied
  parameter used twice receives both contributions) and returns the input gradient;
- ``named_params()`` maps dotted names to parameters, each shared object listed once;
- ``zero_grad()``, ``train()`` and ``eval()`` as in PyTorch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from rnnlab._array import Array


class Parameter:
    """A trainable array ``value`` and its gradient ``grad`` (same shape and dtype)."""

    __slots__ = ("value", "grad")

    def __init__(self, value: Array) -> None:
        self.value = value
        self.grad = np.zeros_like(value)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.value.dtype})"


class Module:
    """Base class: parameter discovery, gradient reset and train/eval mode."""

    training: bool = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def own_params(self) -> Iterator[tuple[str, Parameter]]:
        """This module's own parameters (not its children's), in definition order."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield name, value

    def children(self) -> Iterator[tuple[str, Module]]:
        """Sub-modules held as attributes, or in lists/tuples of modules (named ``attr.i``)."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_params(self, *, remove_duplicate: bool = True) -> dict[str, Parameter]:
        """Name -> parameter.

        A parameter shared by several modules (tied weights) appears once, under its first
        name, unless ``remove_duplicate=False`` (then under every name, as in a PyTorch
        ``state_dict``).
        """
        out: dict[str, Parameter] = {}
        seen: set[int] = set()
        for name, p in self._walk_params(""):
            if not remove_duplicate or id(p) not in seen:
                seen.add(id(p))
                out[name] = p
        return out

    def _walk_params(self, prefix: str) -> Iterator[tuple[str, Parameter]]:
        for name, p in self.own_params():
            yield prefix + name, p
        for name, child in self.children():
            yield from child._walk_params(f"{prefix}{name}.")

    def zero_grad(self) -> None:
        for p in self.named_params().values():
            p.grad[...] = 0

    def train(self, mode: bool = True) -> Module:
        self.training = mode
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)
