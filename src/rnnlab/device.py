"""Where a model's arrays live: the CPU (NumPy) or an NVIDIA GPU (CuPy), chosen per model.

A :class:`Device` names one; its array module ``xp`` is ``numpy`` or ``cupy``, and every
layer writes its math as ``xp.tanh``, ``xp.matmul``, ... so one code runs on both. CuPy is
imported only when a CUDA device is first used (``import rnnlab`` never imports it), never
chosen by an environment variable or an import-time switch::

    d = Device.parse("cuda:1")       "cpu", "cuda", "cuda:N" (a Device passes through)
    d.xp                             numpy, or cupy (a DeviceError says what is missing)
    to_device(a, d)                  an array on d (no copy when it is there already)
    to_host(a)                       a numpy.ndarray
    array_module(a)                  numpy or cupy, from the array itself

On a CUDA device arrays are allocated on that GPU: calls that create arrays there run
inside ``with d.use():`` (``cupy.cuda.Device(N)``); the layers' operations then follow
their operands.

>>> Device.parse("cuda:1"), str(Device.parse("cuda")), CPU.is_cuda
(Device(kind='cuda', index=1), 'cuda:0', False)
>>> Device.parse("tpu")
Traceback (most recent call last):
...
ValueError: unknown device 'tpu': use 'cpu', 'cuda' or 'cuda:N' (N the GPU's number, from 0)
"""

from __future__ import annotations

import contextlib
import importlib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

INSTALL = "pip install 'rnnlab[cuda12]' (CUDA 12) or 'rnnlab[cuda13]' (CUDA 13)"


class DeviceError(ValueError):
    """A device that cannot be used here (no CuPy, no GPU, no such GPU); one line."""


@dataclass(frozen=True)
class Device:
    """``Device("cpu")`` or ``Device("cuda", N)``: where a model's arrays live."""

    kind: str
    index: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("cpu", "cuda"):
            raise ValueError(f"device kind must be 'cpu' or 'cuda', got {self.kind!r}")
        if not isinstance(self.index, int) or self.index < 0 or (
                self.kind == "cpu" and self.index != 0):
            raise ValueError(f"device index must be an int >= 0 (0 for the cpu), got "
                             f"{self.index!r} for {self.kind!r}")

    @staticmethod
    def parse(spec: str | Device) -> Device:
        """"cpu", "cuda" (GPU 0), "cuda:N"; a Device as it is. Nonsense: a ValueError."""
        if isinstance(spec, Device):
            return spec
        m = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", spec.strip()) if isinstance(spec, str) \
            else None
        if m is None or (m.group(1) == "cpu" and m.group(2) is not None):
            raise ValueError(f"unknown device {spec!r}: use 'cpu', 'cuda' or 'cuda:N' (N the "
                             "GPU's number, from 0)")
        return Device(m.group(1), int(m.group(2) or 0))

    def __str__(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    @property
    def xp(self) -> ModuleType:
        """The array module: numpy, or cupy after checking that this GPU exists."""
        if not self.is_cuda:
            return np
        return _checked_cupy(self.index)

    def use(self) -> contextlib.AbstractContextManager[Any]:
        """A context in which new arrays are allocated on this device (CuPy's current GPU)."""
        if not self.is_cuda:
            return contextlib.nullcontext()
        return self.xp.cuda.Device(self.index)

    def check(self) -> Device:
        """Raise a DeviceError unless this device can be used here; returns self."""
        self.xp  # noqa: B018  (the checks are in the import)
        return self


CPU = Device("cpu")


def _checked_cupy(index: int) -> ModuleType:
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as e:  # also sys.modules["cupy"] = None
        raise DeviceError(f"device cuda:{index} needs CuPy, which is not installed ({e}): "
                          f"{INSTALL}, or use --device cpu") from None
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as e:  # CuPy raises CUDARuntimeError when no driver or GPU is there
        raise DeviceError(f"device cuda:{index}: CuPy is installed but finds no usable GPU "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else e!r}); "
                          f"check the NVIDIA driver, or use --device cpu") from None
    if count == 0:
        raise DeviceError(f"device cuda:{index}: CuPy is installed but this machine has no "
                          "NVIDIA GPU: use --device cpu")
    if index >= count:
        raise DeviceError(f"device cuda:{index} does not exist: this machine has {count} "
                          f"GPU{'s' if count > 1 else ''} (cuda:0 .. cuda:{count - 1})")
    return cupy


def _cupy_if_loaded() -> ModuleType | None:
    """cupy if something imported it already, else None (this never imports it)."""
    return sys.modules.get("cupy")


def array_module(a: Any) -> ModuleType:
    """numpy or cupy, whichever array ``a`` belongs to (cupy is never imported by this).

    >>> array_module(np.zeros(2)) is np
    True
    """
    cupy = _cupy_if_loaded()
    if cupy is not None and isinstance(a, cupy.ndarray):
        return cupy
    return np


def device_of(a: Any) -> Device:
    """The device an array lives on (a NumPy array, or anything not CuPy's: the CPU)."""
    if array_module(a) is np:
        return CPU
    return Device("cuda", int(a.device.id))


def to_device(a: Any, device: str | Device) -> Any:
    """``a`` (a NumPy or CuPy array, or a Python scalar/list) as an array on ``device``.

    No copy when it is there already (same module, same GPU).

    >>> x = np.arange(3.0)
    >>> to_device(x, "cpu") is x
    True
    """
    d = Device.parse(device)
    if not d.is_cuda:
        return to_host(a)
    xp = d.xp
    on_gpu = isinstance(a, xp.ndarray)
    if on_gpu and int(a.device.id) == d.index:
        return a
    with d.use():  # another GPU's array: copy() copies to the current one
        return a.copy() if on_gpu else xp.asarray(a)


def to_host(a: Any) -> np.ndarray:
    """``a`` as a numpy.ndarray (a download from the GPU; a NumPy array as it is).

    >>> x = np.arange(3.0)
    >>> to_host(x) is x
    True
    """
    if isinstance(a, np.ndarray) and array_module(a) is np:
        return a
    cupy = _cupy_if_loaded()
    if cupy is not None and isinstance(a, cupy.ndarray):
        return cupy.asnumpy(a)
    return np.asarray(a)


@contextlib.contextmanager
def using(device: str | Device) -> Iterator[Device]:
    """``with using(d):`` new CuPy arrays go to d's GPU (nothing happens for the CPU)."""
    d = Device.parse(device)
    with d.use():
        yield d


def free_memory(device: Device) -> None:
    """Return what CuPy's memory pool holds of freed arrays to the GPU (PyTorch's
    ``empty_cache``); nothing on the CPU or when CuPy was never loaded."""
    cupy = _cupy_if_loaded()
    if device.is_cuda and cupy is not None:
        cupy.get_default_memory_pool().free_all_blocks()


__all__ = ["CPU", "Device", "DeviceError", "array_module", "device_of", "free_memory",
           "to_device", "to_host", "using"]
