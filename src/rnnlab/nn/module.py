"""The layer protocol shared by every layer and model.

A layer owns its :class:`Parameter` objects and the cache of its last ``forward``; it
never owns recurrent state (that is passed in and returned). The protocol:

- ``out = layer.forward(x, ...)`` caches what ``backward`` needs;
- ``dx = layer.backward(dout)`` *adds* parameter gradients into ``p.grad`` (so a tied
  parameter used twice receives both contributions) and returns the input gradient;
- ``named_params()`` maps dotted names to parameters, each shared object listed once;
- ``zero_grad()``, ``train()`` and ``eval()`` as in PyTorch;
- ``to(device)`` moves every parameter (value and gradient) to a device
  (:mod:`rnnlab.device`): ``self.device`` and ``self.xp``, the array module the layer's
  math is written with (numpy, or cupy on a GPU), follow.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

from rnnlab._array import Array
from rnnlab.device import CPU, Device, array_module, free_memory, to_device
from rnnlab.nn._cuda import full_float32_products


class Parameter:
    """A trainable array ``value`` and its gradient ``grad`` (same shape and dtype)."""

    __slots__ = ("value", "grad")

    def __init__(self, value: Array) -> None:
        self.value = value
        self.grad = array_module(value).zeros_like(value)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.value.dtype})"


class Module:
    """Base class: parameter discovery, gradient reset and train/eval mode."""

    training: bool = True
    device: Device = CPU  # where the parameters live (to() changes it)
    xp: ModuleType = np  # the array module of that device: numpy or cupy
    _forward_caches: tuple[str, ...] = ("_cache",)  # attributes to() resets to None

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

    def modules(self) -> Iterator[Module]:
        """This module and every descendant, each once (depth first)."""
        seen: set[int] = set()
        stack: list[Module] = [self]
        while stack:
            m = stack.pop()
            if id(m) not in seen:
                seen.add(id(m))
                yield m
                stack.extend(child for _, child in reversed(list(m.children())))

    def to(self, device: str | Device) -> Module:
        """Move every parameter's value and gradient to ``device`` ("cpu", "cuda", "cuda:N"),
        with every child; returns self (PyTorch's ``model.to``).

        What a forward cached is dropped (the next forward rebuilds it), and the memory the
        arrays held on the GPU they leave is given back to it. A DeviceError (one line) when
        the device cannot be used here (no CuPy, no GPU).
        """
        d = Device.parse(device)
        xp = d.xp  # checks the device first: nothing moves if it cannot be used
        old = {m.device for m in self.modules()}
        with d.use():
            if d.is_cuda:
                full_float32_products(d.index)
            for p in self.named_params().values():  # a tied parameter once
                p.value, p.grad = to_device(p.value, d), to_device(p.grad, d)
            for m in self.modules():
                m.device, m.xp = d, xp
                m._moved()
        for o in old - {d}:
            free_memory(o)
        return self

    def _place(self, device: str | Device) -> None:
        """The end of a constructor: built on the CPU from the NumPy generator, the module
        moves to ``device`` (so one seed gives the same weights on every device)."""
        d = Device.parse(device)
        if d != self.device:
            self.to(d)

    def _moved(self) -> None:
        """After ``to``: drop what the last forward cached (the attributes named in
        ``_forward_caches``; subclasses may also move their constants)."""
        for name in self._forward_caches:
            if name in vars(self):
                setattr(self, name, None)

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
