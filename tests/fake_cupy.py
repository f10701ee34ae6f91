"""A stand-in for CuPy, for tests on machines without a GPU: NumPy arrays that refuse NumPy.

Installed as ``sys.modules["cupy"]`` (the ``fake_cupy`` fixture in conftest.py), it makes
``Device("cuda")`` usable on the CPU: its arrays are :class:`FakeGPUArray`, an ndarray
subclass, and like CuPy's they refuse to be mixed with plain NumPy arrays. Any operation
(a ufunc, a NumPy function, indexing, ``take``, ``out=``) that meets a plain ndarray where
a device array is expected raises ``TypeError: ... NumPy array ...``, as CuPy does. So a
forward/backward/training step that runs here, and whose results are all FakeGPUArray,
has no NumPy array leaking into the device path.

``make_fake_cupy(count)`` builds the module with ``count`` GPUs (0: CuPy without a GPU).
It has no ``RawKernel``: the cells' fused kernels cannot run on it (layers built for it
use the xp-generic step; see ``tests/test_device_layers.py``).
"""

from __future__ import annotations

import contextlib
import types
from typing import Any

import numpy as np


def _plain(a: Any) -> bool:
    return isinstance(a, np.ndarray) and not isinstance(a, FakeGPUArray)


def _refuse(where: str, args: Any) -> None:
    """TypeError when a plain NumPy array is among args (nested in lists, tuples, dicts)."""
    stack = [args]
    while stack:
        a = stack.pop()
        if _plain(a):
            raise TypeError(f"{where}: a NumPy array of shape {a.shape} met a device array "
                            "(CuPy refuses implicit host arrays: upload it with to_device)")
        if isinstance(a, (list, tuple)):
            stack.extend(a)
        elif isinstance(a, dict):
            stack.extend(a.values())


def _unwrap(a: Any) -> Any:
    if isinstance(a, FakeGPUArray):
        return a.view(np.ndarray)
    if isinstance(a, (list, tuple)):
        return type(a)(_unwrap(x) for x in a)
    if isinstance(a, dict):
        return {k: _unwrap(v) for k, v in a.items()}
    return a


def _wrap(r: Any) -> Any:
    if isinstance(r, np.ndarray) and not isinstance(r, FakeGPUArray):
        return r.view(FakeGPUArray)
    if isinstance(r, np.generic):  # CuPy returns 0-d arrays, not NumPy scalars
        return np.asarray(r).view(FakeGPUArray)
    if isinstance(r, tuple):
        return tuple(_wrap(x) for x in r)
    if isinstance(r, list):
        return [_wrap(x) for x in r]
    return r


class _DeviceId:
    id = 0


class FakeGPUArray(np.ndarray):
    """An ndarray "on the GPU": operations with plain ndarrays raise TypeError. ``reads``
    counts the device-to-host reads (float(), int(), bool(), item(), tolist(), asnumpy)."""

    device = _DeviceId()
    reads = 0

    def _read(self) -> np.ndarray:
        FakeGPUArray.reads += 1
        return self.view(np.ndarray)

    def __float__(self) -> float:
        return float(self._read())

    def __int__(self) -> int:
        return int(self._read())

    def __bool__(self) -> bool:
        return bool(self._read())

    def __index__(self) -> int:
        return self._read().__index__()

    def item(self, *args: Any) -> Any:
        return self._read().item(*args)

    def tolist(self) -> Any:
        return self._read().tolist()

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        _refuse(f"numpy.{ufunc.__name__}", (inputs, kwargs))
        out = kwargs.get("out")
        r = getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs))
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(r)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        _refuse(f"numpy.{func.__name__}", (args, kwargs))
        out = kwargs.get("out")
        r = func(*_unwrap(args), **_unwrap(kwargs))
        return out if out is not None else _wrap(r)

    def __getitem__(self, key: Any) -> Any:
        _refuse("indexing", key)
        return _wrap(np.ndarray.__getitem__(self.view(np.ndarray), _unwrap(key)))

    def __setitem__(self, key: Any, value: Any) -> None:
        _refuse("indexed assignment", (key, value))
        np.ndarray.__setitem__(self.view(np.ndarray), _unwrap(key), _unwrap(value))

    def take(self, indices: Any, axis: Any = None, out: Any = None, mode: str = "raise") -> Any:
        _refuse("take", (indices, out))
        r = self.view(np.ndarray).take(_unwrap(indices), axis=axis, out=_unwrap(out), mode=mode)
        return out if out is not None else _wrap(r)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError("Implicit conversion to a NumPy array is not allowed (FakeGPUArray, "
                        "as CuPy): use to_host")

    def get(self) -> np.ndarray:
        return np.array(self.view(np.ndarray))

    def __reduce__(self) -> Any:
        raise TypeError("a FakeGPUArray cannot be pickled or saved: download it with to_host")


class _UFunc:
    """cupy.add, cupy.tanh, ...: a NumPy ufunc that refuses plain ndarrays (its methods too)."""

    def __init__(self, ufunc: np.ufunc) -> None:
        self.ufunc = ufunc

    def _call(self, method: str, args: Any, kwargs: Any) -> Any:
        _refuse(f"cupy.{self.ufunc.__name__}", (args, kwargs))
        out = kwargs.get("out")
        r = getattr(self.ufunc, method)(*_unwrap(args), **_unwrap(kwargs))
        if out is not None:
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return _wrap(r)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("__call__", args, kwargs)

    def __getattr__(self, method: str) -> Any:
        return lambda *args, **kwargs: self._call(method, args, kwargs)


class _Pool:
    def __init__(self) -> None:
        self.freed = 0

    def free_all_blocks(self) -> None:
        self.freed += 1


class OutOfMemoryError(MemoryError):
    """CuPy's cupy.cuda.memory.OutOfMemoryError (a MemoryError subclass there too)."""


def make_fake_cupy(count: int = 1) -> types.ModuleType:
    """A module that passes for ``cupy`` with ``count`` GPUs (see the module doc)."""
    mod = types.ModuleType("cupy")
    mod.__dict__["__fake__"] = True
    mod.ndarray = FakeGPUArray  # type: ignore[attr-defined]
    pool = _Pool()

    def asarray(a: Any, dtype: Any = None) -> FakeGPUArray:
        if isinstance(a, FakeGPUArray) and (dtype is None or a.dtype == dtype):
            return a
        return np.array(_unwrap(a), dtype=dtype).view(FakeGPUArray)

    def asnumpy(a: Any) -> np.ndarray:
        if isinstance(a, FakeGPUArray):
            FakeGPUArray.reads += 1
        return np.array(_unwrap(a))

    def func(name: str) -> Any:
        f = getattr(np, name)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            _refuse(f"cupy.{name}", (args, kwargs))
            out = kwargs.get("out")
            r = f(*_unwrap(args), **_unwrap(kwargs))
            return out if out is not None else _wrap(r)
        return wrapped

    def getattr_(name: str) -> Any:
        if name.startswith("__") or name in ("RawKernel", "ElementwiseKernel"):
            raise AttributeError(name)
        attr = getattr(np, name)
        if isinstance(attr, np.ufunc):
            return _UFunc(attr)
        if callable(attr) and not isinstance(attr, type):
            return func(name)
        return attr  # dtypes, constants

    mod.__getattr__ = getattr_  # type: ignore[attr-defined]
    mod.asarray, mod.array, mod.asnumpy = asarray, asarray, asnumpy  # type: ignore[attr-defined]
    mod.get_default_memory_pool = lambda: pool  # type: ignore[attr-defined]
    runtime = types.SimpleNamespace(getDeviceCount=lambda: count)
    memory = types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError)
    mod.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        runtime=runtime, memory=memory, Device=lambda i=0: contextlib.nullcontext())
    mod.pool = pool  # type: ignore[attr-defined]  # tests read pool.freed
    return mod
