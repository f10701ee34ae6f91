"""What RNN, LSTM and GRU share: stacking, state handling, lengths, and the time loops.

A cell class (``rnn.py``, ``lstm.py``, ``gru.py``) supplies the equations of one time step
(``reference.py`` has them plainly); this base class runs them over time, per layer k::

    G = x @ W_ih^T + b                  all steps' input projection: one (T*N, D) matmul
    for t = 0 .. T-1:                   inside the loop only h_{t-1} W_hh^T, elementwise work
        state_t = step(G[t], state_{t-1})
    for t = T-1 .. 0:                   backward, in reverse
        dG[t], dstate_{t-1} = step_backward(dstate_t + dy_t)
    dW_ih = dG^T x,  dW_hh = dG^T h_{t-1},  db = sum dG,  dx = dG W_ih   (one matmul each)

The backward loops are in ``_backward.py``. Past a sequence's end (``lengths``) the state
is held and the output is zero. Layer 0's G can be looked up per token instead
(``forward_rows``; ``_input_table.py``), and ``backward(..., truncate=k)`` lets each step's
gradient back through k steps at most (``_truncate.py``). With ``bidirectional=True`` each
layer has a second, reverse direction (``_bidirectional.py``). ``device="cuda"`` puts the
layer on a GPU (``rnnlab.device``): there the steps are the cell's fused kernels, when it
has them, else the same code on CuPy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rnnlab._array import Array, check_array, check_float_dtype, check_rng, check_sizes, uniform
from rnnlab.device import Device
from rnnlab.nn._backward import BackwardThroughTime
from rnnlab.nn._bidirectional import Bidirectional, named_params_both_ways
from rnnlab.nn._input_table import InputTable
from rnnlab.nn._introspect import Introspection
from rnnlab.nn._on_device import OnDevice
from rnnlab.nn._state import (
    State,
    join_state,
    length_mask,
    masked_output,
    ragged_from,
    split_state,
)
from rnnlab.nn.module import Module, Parameter


class Recurrent(OnDevice, BackwardThroughTime, InputTable, Bidirectional, Introspection,
                Module):
    """Base of the stacked recurrent layers (time-major ``(T, N, D)``, PyTorch's layout).

    The contract between this class and a cell (RNN, LSTM, GRU). A cell sets::

        gates          gate blocks fused into W_ih (gates*H, D) and W_hh (gates*H, H)
        state_names    ("h",), or ("h", "c") with a cell state beside h (LSTM)
        gate_buffer    name of its (T, N, gates*H) buffer of gate values: "ifgo", "rzn";
                       None (RNN): the input projection goes straight into h[1:]
        step_buffers   names of further (T, N, H) values a step keeps for backward
        separate_hidden_grad   True when the gradient of h W_hh^T + b_hh is not the one of
                       x W_ih^T + b_ih (GRU, whose r multiplies W_hn h + b_hn)

    and implements two hooks, each reading and writing the buffers of layer k::

        _step_forward(k, t)                                   computes state_t
        _step_backward(k, t, dstate, dG_t, dGh_t) -> dstate_{t-1}

    (optional: ``_param_shapes``, ``_input_bias``, ``_extra_weight_grads``).
    Buffers of layer k, ``self._buffers[k][name]``, kept across calls while shapes hold::

        h, c          (T+1, N, H)      [0] the initial state; [t+1] the state after step t
        gate_buffer   (T, N, gates*H)  [t] before step t: x_t W_ih^T + b (every step's, in
                                       one matmul); after it: the gate values
        step_buffers  (T, N, H)        [t] written by step t
        dG            (T, N, gates*H)  [t] written by step t's backward: the gradient of
                                       its pre-activations (x_t W_ih^T + b_ih + ...)
        dGh           (T, N, gates*H)  GRU only: the gradient of h_{t-1} W_hh^T + b_hh

    ``_step_backward`` gets dstate, the gradient reaching state_t: (dh,) or (dh, dc), each
    (N, H), or (A, N, H) under truncation (one stream per age; the step broadcasts). It
    writes dG_t and dGh_t (same leading shape; dGh_t is dG_t unless separate_hidden_grad)
    and returns the gradient reaching state_{t-1}. It may return its own scratch buffers,
    and the next call's dstate may be those same arrays (dc is, without cell outputs): a
    step reads all of dstate before it writes what it returns. Past a sequence's end it
    applies ``_hold``. After forward the layer's output y is ``h[1:]`` of the top layer.
    On a CUDA device the loops call ``_step_forward_cuda`` and ``_step_backward_cuda``
    instead (same signatures, same buffers) when the cell defines them, ``fused`` is True
    and the array module can compile kernels (``_on_device.py``).

    With ``bidirectional=True``, k above indexes (layer, direction) pairs: slot 2l is layer
    l's forward direction and 2l+1 its reverse one, whose buffers hold the time-reversed
    sequence (``_bidirectional.py``); the hooks see no difference.
    """

    gates = 1
    state_names: tuple[str, ...] = ("h",)
    gate_buffer: str | None = None
    step_buffers: tuple[str, ...] = ()
    separate_hidden_grad = False
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *,
                 bias: bool = True, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = np.float32, device: str | Device = "cpu",
                 rng: np.random.Generator) -> None:
        check_sizes(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if not isinstance(bidirectional, (bool, np.bool_)):
            raise ValueError(f"bidirectional must be True or False, got {bidirectional!r}")
        check_rng(rng)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.dropout, self.bidirectional = bias, float(dropout), bool(bidirectional)
        dirs = 2 if self.bidirectional else 1  # slots per layer: forward (, reverse)
        self.dtype = check_float_dtype(dtype)
        self.rng = rng
        self.training = True
        # PyTorch's init: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))
        bound = 1.0 / math.sqrt(hidden_size)
        self.weights: list[dict[str, Parameter]] = []
        for k in range(num_layers * dirs):  # slot k: layer k // dirs
            shapes = self._param_shapes(input_size if k < dirs else dirs * hidden_size)
            self.weights.append({name: Parameter(uniform(rng, bound, shape, self.dtype))
                                 for name, shape in shapes.items()})
        self._cache: dict[str, Any] | None = None
        self._buffers: list[dict[str, Array]] = [{} for _ in range(num_layers * dirs)]
        self._inputs: list[Array | None] = [None] * (num_layers * dirs)  # each x, for dW_ih
        self._kept_grads: list[tuple[Array, ...] | None] = []  # backward(keep_state_grads=True)
        self._place(device)

    def _param_shapes(self, in_size: int) -> dict[str, tuple[int, ...]]:
        gh = self.gates * self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {
            "weight_ih": (gh, in_size), "weight_hh": (gh, self.hidden_size)}
        if self.bias:
            shapes.update(bias_ih=(gh,), bias_hh=(gh,))
        return shapes

    def own_params(self):  # type: ignore[override]
        """PyTorch's names: ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ...

        (then ``weight_ih_l0_reverse``, ... when bidirectional: PyTorch's state_dict order)
        """
        if self.bidirectional:
            yield from named_params_both_ways(self.weights)
            return
        for k, layer in enumerate(self.weights):
            for name, p in layer.items():
                yield f"{name}_l{k}", p

    def extra_repr(self) -> str:
        bidi = ", bidirectional=True" if self.bidirectional else ""
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}{bidi}, "
                f"dtype={self.dtype}")

    @property
    def has_cell(self) -> bool:
        return "c" in self.state_names

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def _split(self, state: State, N: int, what: str = "state") -> list[tuple[Array, ...]]:
        if self.bidirectional:  # slot order: PyTorch's [l0 fwd, l0 rev, l1 fwd, ...]
            shape, rows = (2 * self.num_layers, N, self.hidden_size), "num_layers * 2"
        else:
            shape, rows = (self.num_layers, N, self.hidden_size), "num_layers"
        return split_state(state, self.state_names, shape, self.dtype, type(self).__name__, what,
                           rows, self.xp)

    # ----------------------------------------------------------------- forward
    def forward(self, x: Array, state: State = None, lengths: Any = None, *,
                return_cells: bool = False) -> tuple[Any, State]:
        """``y, state = layer.forward(x, state, lengths)``.

        x: (T, N, D). state: see the class docstring (None: zeros). lengths: N ints in [0, T]
        (None: all T). Returns y (T, N, H), the top layer's hidden states (zero past each
        sequence's length), and the final state. With ``return_cells=True`` (LSTM only) y is
        the pair ``(h_seq, c_seq)`` of the top layer's hidden and cell states.

        ``bidirectional=True`` (PyTorch's semantics; the equations are in
        ``_bidirectional.py``): y is (T, N, 2H), forward direction first; the state is
        (num_layers * 2, N, H), rows [l0 fwd, l0 rev, l1 fwd, ...]; the reverse direction
        of each sequence starts at its own last step. ``truncate=`` and ``forward_rows``
        are refused.

        Examples::

            >>> import numpy as np
            >>> from rnnlab.nn import GRU
            >>> gru = GRU(4, 3, num_layers=2, bidirectional=True, dtype=np.float64,
            ...           rng=np.random.default_rng(0))
            >>> x = np.random.default_rng(1).standard_normal((5, 2, 4))   # (T, N, D)
            >>> y, h = gru(x, lengths=np.array([5, 3]))
            >>> y.shape, h.shape                  # (T, N, 2H), (num_layers * 2, N, H)
            ((5, 2, 6), (4, 2, 3))
            >>> bool(np.allclose(h[2], y[[4, 2], [0, 1], :3]))  # top forward: at L_n - 1
            True
            >>> bool(np.allclose(h[3], y[0, :, 3:]))            # top reverse: at step 0
            True
            >>> dx, dh0 = gru.backward(np.ones_like(y))
            >>> dx.shape, dh0.shape, gru.named_params()["weight_ih_l1_reverse"].shape
            ((5, 2, 4), (4, 2, 3), (9, 6))
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
        if self.bidirectional:  # rows is None: forward_rows refuses bidirectional layers
            return self._forward_both_ways(x, state, lengths, return_cells)
        T, N = x.shape[:2] if x is not None else rows[1].shape  # type: ignore[index]
        states0 = self._split(state, N)
        mask, ragged = length_mask(lengths, T, N, self.device), ragged_from(lengths, T)
        drops: list[Array | None] = []
        inp, finals = x, []
        for k in range(self.num_layers):
            drop = self._dropout_mask(k, (T, N, self.hidden_size))
            if drop is not None:
                inp = inp * drop  # (T, N, H) inverted dropout between layers
            drops.append(drop)
            self._forward_layer(k, inp, states0[k], mask, ragged, rows if k == 0 else None)
            finals.append(tuple(self._buffers[k][name][T] for name in self.state_names))
            inp = self._buffers[k]["h"][1:]  # (T, N, H) this layer's outputs
        self._cache = {"T": T, "N": N, "mask": mask, "ragged": ragged,
                       "drops": drops, "cells": return_cells, "rows": rows is not None,
                       "ids": None if rows is None else rows[1]}
        y: Any = masked_output(self._buffers[-1]["h"][1:], mask)
        if return_cells:
            y = (y, masked_output(self._buffers[-1]["c"][1:], mask))
        return y, join_state(finals)

    def _forward_layer(self, k: int, x: Array | None, state0: tuple[Array, ...],
                       mask: Array | None, ragged: int,
                       rows: tuple[Array, Array] | None = None) -> None:
        T, N = x.shape[:2] if x is not None else rows[1].shape  # type: ignore[index]
        for name, s0 in zip(self.state_names, state0, strict=True):
            self._buffer(k, name, (T + 1, N, self.hidden_size))[0] = s0
        for name in self.step_buffers:
            self._buffer(k, name, (T, N, self.hidden_size))
        G = (self._buffers[k]["h"][1:] if self.gate_buffer is None  # (T, N, gates*H)
             else self._buffer(k, self.gate_buffer, (T, N, self.gates * self.hidden_size)))
        if rows is not None:  # forward_rows: x W_ih^T + b is looked up, not computed
            table, ids = rows
            table.take(ids, axis=0, out=G)
        elif x is not None:
            W_ih = self.weights[k]["weight_ih"].value  # (gates*H, D)
            self.xp.matmul(x.reshape(T * N, -1), W_ih.T, out=G.reshape(T * N, -1))
            b = self._input_bias(k)
            if b is not None:
                G += b
        self._inputs[k] = x  # by reference, not a copy (None: rows were looked up)
        self._transposed_hidden_weights(k, T)
        step, copyto = self._steps()[0], self.xp.copyto
        for t in range(T):
            step(k, t)
            if mask is not None and t >= ragged:  # past its end a sequence keeps its state
                for name in self.state_names:
                    s = self._buffers[k][name]
                    copyto(s[t + 1], s[t], where=~mask[t])

    def _transposed_hidden_weights(self, k: int, T: int) -> None:
        """Buffer ``"W_hh^T"`` (H, gates*H): every step's ``h_{t-1} W_hh^T`` multiplies by it.

        Named trick, *the transposed copy*: a step's product has only N rows, and OpenBLAS
        multiplies (N, H) by the transposed view ``W_hh.T`` 1.2-1.7x slower than by the same
        numbers stored transposed (one thread, N = 20, H = 650: 1.48 ms against 0.90 ms;
        benchmarks/README.md). One copy per forward pays for itself from T = 2 on; a
        one-step forward (generation, a decoder step) multiplies by the view.
        """
        W_hh = self.weights[k]["weight_hh"].value  # (gates*H, H)
        W_hh_T = W_hh.T
        if T >= 2:
            W_hh_T = self._buffer(k, "W_hh^T copy", W_hh_T.shape)
            self.xp.copyto(W_hh_T, W_hh.T)
        self._buffers[k]["W_hh^T"] = W_hh_T

    def _input_bias(self, k: int) -> Array | None:
        """Bias folded into the all-steps input projection (RNN, LSTM: b_ih + b_hh)."""
        p = self.weights[k]
        return p["bias_ih"].value + p["bias_hh"].value if self.bias else None

    # ------------------------------------------------------------- cell hooks
    def _step_forward(self, k: int, t: int) -> None:
        raise NotImplementedError

    def _step_backward(self, k: int, t: int, dstate: tuple[Array, ...], dG_t: Array,
                       dGh_t: Array) -> tuple[Array, ...]:
        raise NotImplementedError
