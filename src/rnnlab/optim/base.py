"""The optimizer base class: parameter bookkeeping, weight decay, checkpoint state.

A state array (Adam's moments, ...) lives where its parameter lives: made on its device,
and moved there at the next step when the parameter moved (``model.to(device)``) since.
``state_dict`` returns host copies; ``load_state_dict`` uploads them to the parameters'
devices, so a checkpoint is the same whatever device wrote it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

import numpy as np

from rnnlab.device import array_module, device_of, to_device, to_host
from rnnlab.nn.module import Parameter

Params = Mapping[str, Parameter] | Iterable[Parameter]


def _named(params: Params) -> dict[str, Parameter]:
    """Name -> parameter; an iterable is named "0", "1", ... in order."""
    named = dict(params) if isinstance(params, Mapping) else {
        str(i): p for i, p in enumerate(params)
    }
    if not named:
        raise ValueError("params is empty: the optimizer has nothing to update")
    for name, p in named.items():
        if not isinstance(p, Parameter):
            raise TypeError(f"params[{name!r}] is a {type(p).__name__}, not a Parameter")
    # A parameter listed twice would be stepped twice per step().
    if len({id(p) for p in named.values()}) != len(named):
        raise ValueError("params lists the same Parameter more than once")
    return named


def _check(name: str, x: float, interval: str = "[0, inf)") -> float:
    """``float(x)``, or a ValueError naming ``name`` unless x lies in ``interval`` (NaN never)."""
    x = float(x)
    low, high = (float(v) for v in interval[1:-1].split(","))
    if not ((x > low if interval[0] == "(" else x >= low)
            and (x < high if interval[-1] == ")" else x <= high)):
        raise ValueError(f"{name} must be in {interval}, got {x}")
    return x


def _axpy(y: np.ndarray, a: float, x: np.ndarray, tmp: np.ndarray) -> None:
    """``y += a·x`` in place, using ``tmp`` (which may be ``x`` itself) instead of a new array."""
    if a == 1.0:
        y += x
    else:
        _xp(x).multiply(x, a, out=tmp)
        y += tmp


def _xp(a: Any) -> ModuleType:
    """numpy for a NumPy array (the fast path: one type check), else the array's module."""
    return np if type(a) is np.ndarray else array_module(a)


class Optimizer:
    """Base class: parameter bookkeeping, L2 weight decay, state and checkpoints.

    Subclasses name their per-parameter buffers in ``_buffer_names`` and implement
    ``_update(p, g, state)`` with ``g`` the gradient after L2 weight decay.
    """

    _hyper_names: tuple[str, ...] = ("lr", "weight_decay")

    def __init__(self, params: Params, *, lr: float, weight_decay: float = 0.0) -> None:
        self.params = _named(params)
        self.lr = _check("lr", lr)
        self.weight_decay = _check("weight_decay", weight_decay)
        self.steps = 0
        self.state: dict[str, dict[str, np.ndarray]] = {
            name: {b: self._init_buffer(b, p) for b in self._buffer_names()}
            for name, p in self.params.items()
        }
        # Flat per-(device, dtype, slot) work arrays, so steps reuse memory, not allocate.
        self._scratch: dict[tuple[str, str, int], np.ndarray] = {}

    def _buffer_names(self) -> tuple[str, ...]:
        return ()

    def _init_buffer(self, name: str, p: Parameter) -> np.ndarray:
        return array_module(p.value).zeros_like(p.value)

    def _l2(self) -> float:
        return self.weight_decay

    def _tmp(self, p: Parameter, slot: int) -> np.ndarray:
        """A work array shaped like ``p.value``; its contents are garbage."""
        v = p.value
        key = ("cpu" if type(v) is np.ndarray else str(device_of(v)), v.dtype.str, slot)
        buf = self._scratch.get(key)
        if buf is None or buf.size < v.size:
            buf = self._scratch[key] = array_module(v).empty(v.size, dtype=v.dtype)
        return buf[: p.value.size].reshape(p.value.shape)

    def step(self) -> None:
        """Update every parameter once from its current gradient."""
        wd = self._l2()
        for name, p in self.params.items():
            state = self._follow(p, self.state[name])
            g = p.grad
            if wd != 0.0:
                # g + λθ goes to a work array: p.grad itself must stay untouched.
                g = _xp(p.value).multiply(p.value, wd, out=self._tmp(p, 0))
                g += p.grad
            self._update(p, g, state)
        self.steps += 1

    def _update(self, p: Parameter, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    @staticmethod
    def _follow(p: Parameter, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``state``, its arrays moved to ``p``'s device if ``p`` moved since they were made
        (on the CPU one type check per array)."""
        v = p.value
        for b, buf in state.items():
            if type(buf) is np.ndarray and type(v) is np.ndarray:
                continue
            where = device_of(v)
            if device_of(buf) != where:
                state[b] = to_device(buf, where)
        return state

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad[...] = 0

    def hyperparams(self) -> dict[str, Any]:
        """The constructor arguments (with the current ``lr``), JSON-serialisable."""
        out = {k: getattr(self, k) for k in self._hyper_names}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def _flat_state(self) -> dict[str, np.ndarray]:
        return {f"{name}.{b}": buf for name, bufs in self.state.items() for b, buf in bufs.items()}

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """``(arrays, meta)``: copies of the buffers keyed ``"<param>.<buffer>"``, and meta."""
        arrays = {k: np.array(to_host(buf)) for k, buf in self._flat_state().items()}  # copies
        meta = {"optimizer": type(self).__name__, "step": self.steps,
                "hyperparams": self.hyperparams()}
        return arrays, meta

    def load_state_dict(self, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned; on a ValueError ``self`` is left unchanged."""
        cls = type(self).__name__
        if meta.get("optimizer") != cls:
            raise ValueError(f"optimizer state is for {meta.get('optimizer')!r}, not {cls!r}")
        steps, hyper = meta.get("step"), meta.get("hyperparams")
        if not isinstance(steps, int) or steps < 0 or not isinstance(hyper, Mapping):
            raise ValueError("optimizer meta needs an int 'step' >= 0 and a 'hyperparams' dict")
        try:
            # Rebuilding through the constructor re-validates the hyperparameters and
            # allocates exactly the buffers they call for (e.g. RMSprop's grad_avg).
            fresh = type(self)(self.params, **hyper)
        except TypeError as e:
            raise ValueError(f"optimizer meta hyperparams do not fit {cls}: {e}") from e
        fresh._fill(arrays)
        fresh.steps = steps
        fresh._scratch = self._scratch
        vars(self).update(vars(fresh))

    def _fill(self, arrays: Mapping[str, Any]) -> None:
        expected, given = self._flat_state(), set(arrays.keys())
        for problem, keys in (("is missing", expected.keys() - given),
                              ("has unexpected", given - expected.keys())):
            if keys:
                raise ValueError(f"optimizer state {problem} array {sorted(keys)[0]!r}")
        for key, buf in expected.items():
            a = to_host(arrays[key])
            if a.shape != buf.shape:
                raise ValueError(f"optimizer array {key!r} has shape {a.shape}, "
                                 f"expected {buf.shape}")
            buf[...] = to_device(a.astype(buf.dtype, copy=False), device_of(buf))
