"""Per-coordinate adaptive optimizers: Adagrad, RMSprop, Adam (and AdamW)."""

from __future__ import annotations

import numpy as np

from rnnlab.nn.module import Parameter
from rnnlab.optim.base import Optimizer, Params, _axpy, _check, _xp


class Adagrad(Optimizer):
    r"""Adagrad, as ``torch.optim.Adagrad`` (without ``lr_decay``)::

        s_t = s_{t-1} + g_t²            (s_0 = initial_accumulator_value)
        θ_t = θ_{t-1} - lr·g_t / (√s_t + ε)

    >>> w = Parameter(np.array([1.0, 1.0]))
    >>> w.grad[...] = [0.5, -3.0]
    >>> Adagrad([w], lr=0.1).step()  # the first step is lr·sign(g)
    >>> w.value.round(6)
    array([0.9, 1.1])
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
        return _xp(p.value).full_like(p.value, self.initial_accumulator_value)

    def _update(self, p: Parameter, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        tmp, xp = self._tmp(p, 1), _xp(g)
        s = state["sum"]
        s += xp.multiply(g, g, out=tmp)
        xp.sqrt(s, out=tmp)
        tmp += self.eps
        xp.divide(g, tmp, out=tmp)
        _axpy(p.value, -float(self.lr), tmp, tmp)


class RMSprop(Optimizer):
    r"""RMSprop, as ``torch.optim.RMSprop`` (no bias correction, ε outside the root)::

        v_t = α·v_{t-1} + (1 - α)·g_t²
        ḡ_t = ḡ_{t-1} + (1 - α)·(g_t - ḡ_{t-1})         (centered only)
        a_t = √(v_t - ḡ_t²) + ε  if centered  else  √v_t + ε
        b_t = μ·b_{t-1} + g_t / a_t,  θ_t = θ_{t-1} - lr·b_t   (momentum μ > 0; b_0 = 0)
        θ_t = θ_{t-1} - lr·g_t / a_t                           (μ = 0)

    >>> w = Parameter(np.array([1.0, 1.0]))
    >>> w.grad[...] = [0.5, -3.0]
    >>> RMSprop([w], lr=0.01, alpha=0.99).step()  # first step: lr·sign(g)/√(1 - α)
    >>> w.value.round(6)
    array([0.9, 1.1])
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
        tmp, xp = self._tmp(p, 1), _xp(g)
        v = state["square_avg"]
        v *= self.alpha
        _axpy(v, 1.0 - self.alpha, xp.multiply(g, g, out=tmp), tmp)
        if self.centered:
            gavg = state["grad_avg"]
            _axpy(gavg, 1.0 - self.alpha, xp.subtract(g, gavg, out=tmp), tmp)
            xp.subtract(v, xp.multiply(gavg, gavg, out=tmp), out=tmp)
            xp.sqrt(tmp, out=tmp)
        else:
            xp.sqrt(v, out=tmp)
        tmp += self.eps
        xp.divide(g, tmp, out=tmp)
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

    >>> w = Parameter(np.array([1.0, 1.0]))
    >>> w.grad[...] = [0.5, -3.0]
    >>> Adam([w], lr=0.1).step()  # the first step is lr·sign(g), whatever |g|
    >>> w.value.round(6)
    array([0.9, 1.1])
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
        tmp, xp = self._tmp(p, 1), _xp(g)
        lr = float(self.lr)
        b1, b2 = self.betas
        if self.decoupled and self.weight_decay != 0.0:
            p.value *= 1.0 - lr * self.weight_decay
        m, v = state["exp_avg"], state["exp_avg_sq"]
        _axpy(m, 1.0 - b1, xp.subtract(g, m, out=tmp), tmp)
        v *= b2
        _axpy(v, 1.0 - b2, xp.multiply(g, g, out=tmp), tmp)
        t = self.steps + 1
        # Python floats, like torch's non-capturable path, so both round the same way.
        step_size = lr / (1.0 - b1**t)
        bias_correction2_sqrt = (1.0 - b2**t) ** 0.5
        xp.sqrt(v, out=tmp)
        tmp /= bias_correction2_sqrt
        tmp += self.eps
        xp.divide(m, tmp, out=tmp)
        _axpy(p.value, -step_size, tmp, tmp)
