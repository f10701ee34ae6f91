"""What RNN, LSTM and GRU share: stacking, state handling, lengths, and the time loops.

A cell class (``rnn.py``, ``lstm.py``, ``gru.py``) supplies the equations of one time step,
``_step_forward`` and ``_step_backward`` side by side; this base class runs them over time:

forward, per layer k:
    G = x @ W_ih^T + b           (T*N, D) @ (D, gates*H): all steps' input projection, one matmul
    for t = 0 .. T-1:            only h_{t-1} @ W_hh^T and elementwise work inside the loop
        state_t = step(G[t], state_{t-1})

backward, per layer k (reverse order):
    for t = T-1 .. 0:            the loop computes the pre-activation gradients dG[t]
        dG[t], dstate_{t-1} = step_backward(dstate_t + dy_t)
    dW_ih = dG^T x,  dW_hh = dG^T h_{t-1},  db = sum dG,  dx = dG @ W_ih   (one matmul each)

Variable lengths: past a sequence's end the state is held (copied from the previous
step) and the output is zero, so its final state is its state at its own last step.

Small vocabularies: layer 0's G can instead be looked up, row by token, from a table
(``forward_rows``; ``_input_table.py`` has the equations).

Truncation (``backward(..., truncate=k)``): the gradient arriving at step t flows back
through at most k earlier steps; ``_truncate.py`` explains the per-age gradient streams.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rnnlab._array import (
    Array,
    check_array,
    check_float_dtype,
    check_rng,
    check_sizes,
    empty,
    uniform,
)
from rnnlab.nn._input_table import InputTable
from rnnlab.nn._state import (
    add_output_grad,
    grad_or_zeros,
    hold,
    join_state,
    length_mask,
    masked_output,
    split_state,
)
from rnnlab.nn._truncate import by_age, truncated_loop
from rnnlab.nn.dropout import dropout_mask
from rnnlab.nn.module import Module, Parameter

State = Any  # h (L, N, H) for RNN/GRU; (h, c) for LSTM


class Recurrent(InputTable, Module):
    """Base of the stacked recurrent layers (time-major ``(T, N, D)``, PyTorch's layout)."""

    gates = 1  # gate blocks fused into weight_ih / weight_hh
    state_names: tuple[str, ...] = ("h",)  # LSTM: ("h", "c"), a cell state beside h
    separate_hidden_grad = False  # GRU: the hidden projection's gradient differs from the input's
    step_buffers: tuple[str, ...] = ()  # per-step (T, N, H) values a cell keeps for backward

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        dropout: float = 0.0,
        dtype: Any = np.float32,
        rng: np.random.Generator,
    ) -> None:
        check_sizes(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        check_rng(rng)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.dropout = bias, float(dropout)
        self.dtype = check_float_dtype(dtype)
        self.xp = np
        self.rng = rng
        self.training = True
        # PyTorch's init: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))
        bound = 1.0 / math.sqrt(hidden_size)
        self.weights: list[dict[str, Parameter]] = []
        for k in range(num_layers):
            shapes = self._param_shapes(input_size if k == 0 else hidden_size)
            self.weights.append({
                name: Parameter(uniform(rng, bound, shape, self.dtype, self.xp))
                for name, shape in shapes.items()
            })
        self._cache: dict[str, Any] | None = None
        self._buffers: list[dict[str, Array]] = [{} for _ in range(num_layers)]
        self._inputs: list[Array | None] = [None] * num_layers  # each layer's x, for dW_ih

    def _param_shapes(self, in_size: int) -> dict[str, tuple[int, ...]]:
        gh = self.gates * self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {
            "weight_ih": (gh, in_size), "weight_hh": (gh, self.hidden_size)}
        if self.bias:
            shapes.update(bias_ih=(gh,), bias_hh=(gh,))
        return shapes

    def own_params(self):  # type: ignore[override]
        """PyTorch's names: ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ..."""
        for k, layer in enumerate(self.weights):
            for name, p in layer.items():
                yield f"{name}_l{k}", p

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"dtype={self.dtype}")

    @property
    def has_cell(self) -> bool:
        return "c" in self.state_names

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    # ----------------------------------------------------------------- buffers
    def _buffer(self, k: int, name: str, shape: tuple[int, ...]) -> Array:
        """An array reused across calls while its shape stays the same (no per-call allocation)."""
        buf = self._buffers[k].get(name)
        if buf is None or buf.shape != shape:
            buf = empty(shape, self.dtype, self.xp)
            self._buffers[k][name] = buf
        return buf

    # ----------------------------------------------------------------- forward
    def forward(
        self, x: Array, state: State = None, lengths: Any = None, *, return_cells: bool = False
    ) -> tuple[Any, State]:
        """``y, state = layer.forward(x, state, lengths)``.

        x: (T, N, D). state: see the class docstring (None: zeros). lengths: N ints in [0, T]
        (None: all T). Returns y (T, N, H), the top layer's hidden states (zero past each
        sequence's length), and the final state. With ``return_cells=True`` (LSTM only) y is
        the pair ``(h_seq, c_seq)`` of the top layer's hidden and cell states.
        """
        check_array("x", x, self.dtype, 3)
        T, N, D = x.shape
        if D != self.input_size:
            raise ValueError(f"x has {D} features per step but input_size is {self.input_size}")
        if return_cells and not self.has_cell:
            raise ValueError(f"return_cells=True needs cell states: {type(self).__name__} has none")
        return self._forward(x, None, state, lengths, return_cells)

    def _forward(self, x: Array | None, rows: tuple[Array, Array] | None, state: State,
                 lengths: Any, return_cells: bool) -> tuple[Any, State]:
        T, N = x.shape[:2] if x is not None else rows[1].shape  # type: ignore[index]
        states0 = split_state(self, state, N)
        mask = length_mask(lengths, T, N, self.xp)
        drops: list[Array | None] = []
        inp, finals = x, []
        for k in range(self.num_layers):
            drop = self._dropout_mask(k, (T, N, self.hidden_size))
            if drop is not None:
                inp = inp * drop  # (T, N, H) inverted dropout between layers
            drops.append(drop)
            self._forward_layer(k, inp, states0[k], mask, rows if k == 0 else None)
            finals.append(self._final_state(k, T))
            inp = self._buffers[k]["h"][1:]  # (T, N, H) this layer's outputs
        self._cache = {"T": T, "N": N, "mask": mask, "drops": drops, "cells": return_cells}
        y: Any = masked_output(self._buffers[-1]["h"][1:], mask)
        if return_cells:
            y = (y, masked_output(self._buffers[-1]["c"][1:], mask))
        return y, join_state(self, finals)

    def _forward_layer(
        self, k: int, x: Array | None, state0: tuple[Array, ...], mask: Array | None,
        rows: tuple[Array, Array] | None = None,
    ) -> None:
        T, N = x.shape[:2] if x is not None else rows[1].shape  # type: ignore[index]
        G = self._buffer(k, "gates", (T, N, self.gates * self.hidden_size))
        if rows is not None:  # forward_rows: x W_ih^T + b is looked up, not computed
            table, ids = rows
            table.take(ids, axis=0, out=G)
        elif x is not None:
            W_ih = self.weights[k]["weight_ih"].value  # (gates*H, D)
            self.xp.matmul(x.reshape(T * N, -1), W_ih.T, out=G.reshape(T * N, -1))
            b = self._input_bias(k)
            if b is not None:
                G += b
        names = self.state_names
        for name, s0 in zip(names, state0, strict=True):
            self._buffer(k, name, (T + 1, N, self.hidden_size))[0] = s0
        for name in self.step_buffers:
            self._buffer(k, name, (T, N, self.hidden_size))
        self._inputs[k] = x  # by reference, not a copy (None: rows were looked up)
        for t in range(T):
            self._step_forward(k, t)
            if mask is not None:  # past its end a sequence keeps its state
                for name in names:
                    s = self._buffers[k][name]
                    self.xp.copyto(s[t + 1], s[t], where=~mask[t])

    def _input_bias(self, k: int) -> Array | None:
        """Bias folded into the all-steps input projection (RNN, LSTM: b_ih + b_hh)."""
        if not self.bias:
            return None
        p = self.weights[k]
        return p["bias_ih"].value + p["bias_hh"].value

    # ---------------------------------------------------------------- backward
    def backward(
        self, dy: Any, dstate: State = None, *, truncate: int | None = None
    ) -> tuple[Array, State]:
        """``dx, dstate0 = layer.backward(dy, dstate)``; adds the weight gradients into ``.grad``.

        dy: gradient of the loss with respect to y (the pair ``(dh_seq, dc_seq)`` after
        ``return_cells=True``; either may be None). dstate: gradient into the final state
        (None: none, as at a truncated-BPTT boundary). truncate: if given, each step's
        incoming gradient goes back at most that many steps. Returns the gradient of x and
        of the initial state (same structure as the state).
        """
        if self._cache is None:
            raise ValueError("backward called before forward")
        c = self._cache
        T, N, H = c["T"], c["N"], self.hidden_size
        dy, dcy = dy if c["cells"] else (dy, None)
        dy = grad_or_zeros(self, "dy", dy, (T, N, H))
        dcy = grad_or_zeros(self, "dy (cells)", dcy, (T, N, H)) if c["cells"] else None
        dstates = split_state(self, dstate, N, what="dstate")
        if c["mask"] is not None:  # y is zero past each end: no gradient enters there
            dy = dy * c["mask"]
            dcy = None if dcy is None else dcy * c["mask"]
        if truncate is not None:
            if not isinstance(truncate, (int, np.integer)) or truncate < 0:
                raise ValueError(f"truncate must be a non-negative integer, got {truncate!r}")
            dy = by_age(dy, truncate + 1)
            dcy = None if dcy is None else by_age(dcy, truncate + 1)
        d, dstates0 = dy, []
        for k in reversed(range(self.num_layers)):
            d, ds0 = self._backward_layer(k, d, dcy if k == self.num_layers - 1 else None,
                                          dstates[k], truncate)
            dstates0.append(ds0)
            drop = c["drops"][k]
            if drop is not None:
                d = d * (drop if truncate is None else drop[:, None])
        if truncate is not None:
            d = d.sum(axis=1)  # (T, N, D): the bottom layer's input gradient, all ages together
        return d, join_state(self, dstates0[::-1])

    def _backward_layer(
        self, k: int, dy: Array, dcy: Array | None, dstate: tuple[Array, ...],
        truncate: int | None,
    ) -> tuple[Array, tuple[Array, ...]]:
        T, N, _ = self._buffers[k]["h"][1:].shape
        W_ih = self.weights[k]["weight_ih"].value  # (gates*H, D)
        GH = self.gates * self.hidden_size
        dG = self._buffer(k, "dgates", (T, N, GH))
        dGh = self._buffer(k, "dgates_h", (T, N, GH)) if self.separate_hidden_grad else dG
        if truncate is None:
            for t in reversed(range(T)):
                dstate = add_output_grad(dstate, dy[t], None if dcy is None else dcy[t])
                dstate = self._step_backward(k, t, dstate, dG[t], dGh[t])
            if self._inputs[k] is None:  # forward_rows: the rows' gradient, (T, N, GH)
                dx = dG.copy()
            else:
                dx = (dG.reshape(T * N, GH) @ W_ih).reshape(T, N, -1)  # (T, N, D)
        else:
            dx, dstate = truncated_loop(self, k, dy, dcy, dstate, dG, dGh, truncate + 1)
        self._weight_grads(k, dG, dGh)
        return dx, dstate

    def _weight_grads(self, k: int, dG: Array, dGh: Array) -> None:
        """After the loop: each weight gradient is one matmul over all T*N rows."""
        p, bufs = self.weights[k], self._buffers[k]
        T, N, GH = dG.shape
        h_prev = bufs["h"][:-1].reshape(T * N, -1)  # (T*N, H) the state each step read
        dG2, dGh2 = dG.reshape(T * N, GH), dGh.reshape(T * N, GH)
        x = self._inputs[k]
        if x is not None:  # else rows were looked up: input_table_backward's job
            p["weight_ih"].grad += dG2.T @ x.reshape(T * N, -1)  # (T*N, D)
        p["weight_hh"].grad += dGh2.T @ h_prev
        if self.bias:
            p["bias_ih"].grad += dG2.sum(axis=0)
            p["bias_hh"].grad += dGh2.sum(axis=0)
        self._extra_weight_grads(k, dG)

    def _extra_weight_grads(self, k: int, dG: Array) -> None:
        """Cell-specific parameters beyond the four PyTorch ones (LSTM peepholes)."""

    def _hold(
        self, t: int, dstate: tuple[Array, ...]
    ) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
        """The state gradient at step t: the part of real steps, the held part (_state.hold)."""
        return hold(self._cache["mask"] if self._cache else None, t, dstate)

    # ------------------------------------------------------------- cell hooks
    def _step_forward(self, k: int, t: int) -> None:
        raise NotImplementedError

    def _step_backward(
        self, k: int, t: int, dstate: tuple[Array, ...], dG_t: Array, dGh_t: Array
    ) -> tuple[Array, ...]:
        raise NotImplementedError

    def _final_state(self, k: int, T: int) -> tuple[Array, ...]:
        return tuple(self._buffers[k][name][T] for name in self.state_names)

    def _dropout_mask(self, k: int, shape: tuple[int, ...]) -> Array | None:
        if k == 0 or self.dropout == 0.0 or not self.training:
            return None
        return dropout_mask(self.rng, self.dropout, shape, self.dtype, self.xp)
