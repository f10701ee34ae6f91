"""First-order optimizers with exactly ``torch.optim``'s update rules, and gradient clipping.

``step()`` updates every ``p.value`` in place from ``p.grad`` and never zeroes the gradients.
``lr`` is a plain float that a schedule may change between steps. Weight decay λ is L2 as in
torch: the update sees ``g = p.grad + λ·θ`` (except AdamW, which shrinks ``θ`` directly).
Checkpoint state is plain data, never pickled: arrays keyed ``"<param name>.<buffer>"`` plus
JSON-serialisable meta.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from rnnlab.nn.module import Parameter

Params = Mapping[str, Parameter] | Iterable[Parameter]

__all__ = ["SGD", "Adagrad", "Adam", "Optimizer", "RMSprop", "clip_grad_norm"]


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
        np.multiply(x, a, out=tmp)
        y += tmp


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
        # Flat per-(dtype, slot) work arrays, so steps reuse memory instead of allocating.
        self._scratch: dict[tuple[str, int], np.ndarray] = {}

    def _buffer_names(self) -> tuple[str, ...]:
        return ()

    def _init_buffer(self, name: str, p: Parameter) -> np.ndarray:
        return np.zeros_like(p.value)

    def _l2(self) -> float:
        return self.weight_decay

    def _tmp(self, p: Parameter, slot: int) -> np.ndarray:
        """A work array shaped like ``p.value``; its contents are garbage."""
        key = (p.value.dtype.str, slot)
        buf = self._scratch.get(key)
        if buf is None or buf.size < p.value.size:
            buf = self._scratch[key] = np.empty(p.value.size, dtype=p.value.dtype)
        return buf[: p.value.size].reshape(p.value.shape)

    def step(self) -> None:
        """Update every parameter once from its current gradient."""
        wd = self._l2()
        for name, p in self.params.items():
            g = p.grad
            if wd != 0.0:
                # g + λθ goes to a work array: p.grad itself must stay untouched.
                g = np.multiply(p.value, wd, out=self._tmp(p, 0))
                g += p.grad
            self._update(p, g, self.state[name])
        self.steps += 1

    def _update(self, p: Parameter, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

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
        arrays = {k: buf.copy() for k, buf in self._flat_state().items()}
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
            a = np.asarray(arrays[key])
            if a.shape != buf.shape:
                raise ValueError(f"optimizer array {key!r} has shape {a.shape}, "
                                 f"expected {buf.shape}")
            buf[...] = a


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    With momentum μ > 0 and dampening τ::

        b_1 = g_1                       (first step: a copy of g, no dampening)
        b_t = μ·b_{t-1} + (1 - τ)·g_t
        d_t = g_t + μ·b_t  if nesterov  else  b_t
        θ_t = θ_{t-1} - lr·d_t

    and ``θ_t = θ_{t-1} - lr·g_t`` without momentum. Nesterov needs μ > 0 and τ = 0.
    """

    _hyper_names = ("lr", "momentum", "dampening", "nesterov", "weight_decay")

    def __init__(self, params: Params, *, lr: float, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0,
                 dampening: float = 0.0) -> None:
        self.momentum = _check("momentum", momentum)
        self.dampening = _check("dampening", dampening, "[0, 1]")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum == 0.0 or self.dampening != 0.0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening == 0")
        super().__init__(params, lr=lr, weight_decay=weight_decay)

    def _buffer_names(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum != 0.0 else ()

    def _update(self, p: Parameter, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        tmp = self._tmp(p, 1)
        d = g
        if self.momentum != 0.0:
            buf = state["momentum_buffer"]
            if self.steps == 0:
                buf[...] = g
            else:
                buf *= self.momentum
                _axpy(buf, 1.0 - self.dampening, g, tmp)
            if self.nesterov:
                d = np.multiply(buf, self.momentum, out=tmp)
                d += g
            else:
                d = buf
        _axpy(p.value, -float(self.lr), d, tmp)


class Adagrad(Optimizer):
    r"""Adagrad, as ``torch.optim.Adagrad`` (without ``lr_decay``)::

        s_t = s_{t-1} + g_t²            (s_0 = initial_accumulator_value)
        θ_t = θ_{t-1} - lr·g_t / (√s_t + ε)
    """

    _hyper_names = ("lr", "eps", "initial_accumulator_value", "weight_decay")

    def __init__(self, params: Params, *, lr: float = 1e-2, eps: float = 1e-10,
                 initial_accumulator_value: float = 0.0, weight_decay: float = 0.0) -> None:
        self.eps = _check("eps", eps, "(0, inf)")
        self.initial_accumulator_value = _check(
            "initial_accumulator_value", initial_accumulator_value)
        super().__init__(params, lr=lr, weight_decay=weight_decay)

    def _buffer_names(self) -> tuple[str, ...]:
        return ("sum",)

    def _init_buffer(self, name: str, p: Parameter) -> np.ndarray:
        return np.full_like(p.value, self.initial_accumulator_value)

    def _update(self, p: Parameter, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        tmp = self._tmp(p, 1)
        s = state["sum"]
        s += np.multiply(g, g, out=tmp)
        np.sqrt(s, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        _axpy(p.value, -float(self.lr), tmp, tmp)


class RMSprop(Optimizer):
    r"""RMSprop, as ``torch.optim.RMSprop`` (no bias correction, ε outside the root)::

        v_t = α·v_{t-1} + (1 - α)·g_t²
        ḡ_t = ḡ_{t-1} + (1 - α)·(g_t - ḡ_{t-1})         (centered only)
        a_t = √(v_t - ḡ_t²) + ε  if centered  else  √v_t + ε
        b_t = μ·b_{t-1} + g_t / a_t,  θ_t = θ_{t-1} - lr·b_t   (momentum μ > 0; b_0 = 0)
        θ_t = θ_{t-1} - lr·g_t / a_t                           (μ = 0)
    """

    _hyper_names = ("lr", "alpha", "eps", "momentum", "centered", "weight_decay")

    def __init__(self, params: Params, *, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, momentum: float = 0.0, centered: bool = False,
                 weight_decay: float = 0.0) -> None:
        self.alpha = _check("alpha", alpha, "[0, 1]")
        self.eps = _check("eps", eps, "(0, inf)")
        self.momentum = _check("momentum", momentum)
        self.centered = bool(centered)
        super().__init__(params, lr=lr, weight_decay=weight_decay)

    def _buffer_names(self) -> tuple[str, ...]:
        extra = (("momentum_buffer",) if self.momentum > 0.0 else ()) + (
            ("grad_avg",) if self.centered else ())
        return ("square_avg", *extra)

    def _update(self, p: Parameter, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        tmp = self._tmp(p, 1)
        v = state["square_avg"]
        v *= self.alpha
        _axpy(v, 1.0 - self.alpha, np.multiply(g, g, out=tmp), tmp)
        if self.centered:
            gavg = state["grad_avg"]
            _axpy(gavg, 1.0 - self.alpha, np.subtract(g, gavg, out=tmp), tmp)
            np.subtract(v, np.multiply(gavg, gavg, out=tmp), out=tmp)
            np.sqrt(tmp, out=tmp)
        else:
            np.sqrt(v, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        d = tmp
        if self.momentum > 0.0:
            d = state["momentum_buffer"]
            d *= self.momentum
            d += tmp
        _axpy(p.value, -float(self.lr), d, tmp)


class Adam(Optimizer):
    r"""Adam, as ``torch.optim.Adam``; ``decoupled=True`` is AdamW (``torch.optim.AdamW``).

    At step t (from 1), with β₁, β₂ = betas::

        θ_{t-1} ← θ_{t-1}·(1 - lr·λ)                    (decoupled only; g has no λθ term)
        m_t = m_{t-1} + (1 - β₁)·(g_t - m_{t-1})
        v_t = β₂·v_{t-1} + (1 - β₂)·g_t²
        θ_t = θ_{t-1} - lr/(1 - β₁ᵗ) · m_t / (√v_t / √(1 - β₂ᵗ) + ε)

    ε is added after the bias correction of √v, as torch does.
    """

    _hyper_names = ("lr", "betas", "eps", "weight_decay", "decoupled")

    def __init__(self, params: Params, *, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled: bool = False) -> None:
        b1, b2 = betas
        self.betas = (_check("betas[0]", b1, "[0, 1)"), _check("betas[1]", b2, "[0, 1)"))
        self.eps = _check("eps", eps, "(0, inf)")
        self.decoupled = bool(decoupled)
        super().__init__(params, lr=lr, weight_decay=weight_decay)

    def _buffer_names(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def _l2(self) -> float:
        return 0.0 if self.decoupled else self.weight_decay

    def _update(self, p: Parameter, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        tmp = self._tmp(p, 1)
        lr = float(self.lr)
        b1, b2 = self.betas
        if self.decoupled and self.weight_decay != 0.0:
            p.value *= 1.0 - lr * self.weight_decay
        m, v = state["exp_avg"], state["exp_avg_sq"]
        _axpy(m, 1.0 - b1, np.subtract(g, m, out=tmp), tmp)
        v *= b2
        _axpy(v, 1.0 - b2, np.multiply(g, g, out=tmp), tmp)
        t = self.steps + 1
        # Python floats, like torch's non-capturable path, so both round the same way.
        step_size = lr / (1.0 - b1**t)
        bias_correction2_sqrt = (1.0 - b2**t) ** 0.5
        np.sqrt(v, out=tmp)
        tmp /= bias_correction2_sqrt
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        _axpy(p.value, -step_size, tmp, tmp)


def _sum_squares(g: np.ndarray, chunk: int = 1 << 16) -> float:
    """Σ g² accumulated in float64, float32 arrays converted a cache-sized chunk at a time."""
    flat = g.reshape(-1)
    if flat.dtype == np.float64:
        return float(np.dot(flat, flat))
    buf = np.empty(min(chunk, flat.size), dtype=np.float64)
    total = 0.0
    for start in range(0, flat.size, chunk):
        part = buf[: min(chunk, flat.size - start)]
        part[...] = flat[start:start + part.size]
        total += float(np.dot(part, part))
    return total


def clip_grad_norm(params: Params, max_norm: float) -> float:
    r"""Scale all gradients in place so their global L2 norm is at most ``max_norm``.

    ``N = √(Σ_p ‖g_p‖²)`` in float64; when ``c = max_norm / (N + 1e-6) < 1`` every gradient
    is multiplied by ``c``, exactly like ``torch.nn.utils.clip_grad_norm_`` (which therefore
    also scales, very slightly, when N is within 1e-6 below ``max_norm``). Returns N before
    clipping. A non-finite N is returned as is and nothing is scaled, so it stays visible.
    """
    max_norm = _check("max_norm", max_norm, "(0, inf)")
    grads = [p.grad for p in (params.values() if isinstance(params, Mapping) else params)]
    norm = sum(_sum_squares(g) for g in grads) ** 0.5
    coef = max_norm / (norm + 1e-6)
    if math.isfinite(norm) and coef < 1.0:
        for g in grads:
            g *= coef
    return norm
