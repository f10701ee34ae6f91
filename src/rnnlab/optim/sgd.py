"""Stochastic gradient descent, with momentum and Nesterov momentum."""

from __future__ import annotations

import numpy as np

from rnnlab.nn.module import Parameter
from rnnlab.optim.base import Optimizer, Params, _axpy, _check, _xp


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    With momentum μ > 0 and dampening τ::

        b_1 = g_1                       (first step: a copy of g, no dampening)
        b_t = μ·b_{t-1} + (1 - τ)·g_t
        d_t = g_t + μ·b_t  if nesterov  else  b_t
        θ_t = θ_{t-1} - lr·d_t

    and ``θ_t = θ_{t-1} - lr·g_t`` without momentum. Nesterov needs μ > 0 and τ = 0.

    >>> w = Parameter(np.array([1.0]))
    >>> opt = SGD({"w": w}, lr=0.5, momentum=0.9)
    >>> w.grad[...] = 1.0
    >>> for _ in range(2):
    ...     opt.step()  # steps of 0.5·1 and then 0.5·(0.9 + 1)
    >>> w.value
    array([-0.45])
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
                d = _xp(buf).multiply(buf, self.momentum, out=tmp)
                d += g
            else:
                d = buf
        _axpy(p.value, -float(self.lr), d, tmp)
