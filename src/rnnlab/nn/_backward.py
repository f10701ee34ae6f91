"""Backpropagation through time for :class:`rnnlab.nn.recurrent.Recurrent`, per layer k::

    for t = T-1 .. 0:                   in reverse: the cell's step_backward
        dG[t], dstate_{t-1} = step_backward(dstate_t + dy_t)
    dW_ih = dG^T x,  dW_hh = dG^T h_{t-1},  db = sum dG,  dx = dG W_ih   (one matmul each)

Layers run top to bottom, each layer's input gradient (times its dropout mask) the next
one's output gradient. ``truncate=k`` hands the loop to ``_truncate.py``; a bidirectional
layer to ``_bidirectional.py``. Nothing of the forward is recomputed: every step reads what
its forward step kept in the layer's buffers.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnlab._array import Array
from rnnlab.nn._state import State, add_output_grad, hold, join_state, output_grads
from rnnlab.nn._truncate import truncated_loop
from rnnlab.nn.module import Parameter


class BackwardThroughTime:
    """The backward methods of :class:`Recurrent` (see the module doc).

    What they use of the layer: the attributes below, and the methods declared for the type
    checker only, which ``Recurrent`` and its other mixins define. It comes before
    ``InputTable`` and ``Bidirectional`` among ``Recurrent``'s bases: their placeholders of
    ``_backward`` and ``_backward_layer`` raise NotImplementedError.
    """

    weights: list[dict[str, Parameter]]
    _buffers: list[dict[str, Array]]
    _cache: dict[str, Any] | None
    _inputs: list[Array | None]
    _kept_grads: list[tuple[Array, ...] | None]
    dtype: Any
    xp: Any
    bias: bool
    bidirectional: bool
    gates: int
    hidden_size: int
    num_layers: int
    separate_hidden_grad: bool

    if TYPE_CHECKING:
        def _looked_up(self) -> bool: ...
        def _split(self, state: State, N: int, what: str = "state") -> list[tuple[Array, ...]]: ...
        def _buffer(self, k: int, name: str, shape: tuple[int, ...]) -> Array: ...
        def _steps(self) -> tuple[Any, Any]: ...
        def _grad_store(self, T: int, N: int) -> tuple[Array, ...]: ...
        def _backward_both_ways(self, dy: Any, dstate: State,
                                truncate: int | None) -> tuple[Array, State]: ...

    def backward(self, dy: Any, dstate: State = None, *, truncate: int | None = None,
                 keep_state_grads: bool = False) -> tuple[Array, State]:
        """``dx, dstate0 = layer.backward(dy, dstate)``; adds the weight gradients into ``.grad``.

        dy: gradient of the loss with respect to y (the pair ``(dh_seq, dc_seq)`` after
        ``return_cells=True``; either may be None). dstate: gradient into the final state
        (None: none, as at a truncated-BPTT boundary). truncate: if given, each step's
        incoming gradient goes back at most that many steps (not bidirectional: the reverse
        direction runs from the window's end). Returns the gradient of x and
        of the initial state (same structure as the state). After ``forward_rows``, call
        ``backward_rows`` instead. keep_state_grads: keep each step's state gradient for
        :meth:`state_grads` (costs one copy per step; not with truncate).
        """
        if self._looked_up():
            raise ValueError("after forward_rows, call backward_rows (there is no x to return "
                             "a gradient for: it returns the looked-up rows' gradient)")
        return self._backward(dy, dstate, truncate, keep_state_grads)

    def _backward(self, dy: Any, dstate: State, truncate: int | None,
                  keep: bool = False) -> tuple[Array, State]:
        if self._cache is None:
            raise ValueError("backward called before forward")
        c = self._cache
        if truncate is not None and (not isinstance(truncate, (int, np.integer)) or truncate < 0):
            raise ValueError(f"truncate must be a non-negative integer, got {truncate!r}")
        if keep and (truncate is not None or self.bidirectional):
            raise ValueError("keep_state_grads needs truncate=None (a truncated backward has "
                             "one gradient stream per age, not one per step) and a one-way layer")
        self._kept_grads = [None] * self.num_layers if keep else []
        if self.bidirectional:
            return self._backward_both_ways(dy, dstate, truncate)
        dy, dcy = output_grads(dy, c["cells"], (c["T"], c["N"], self.hidden_size), self.dtype,
                               c["mask"], None if truncate is None else truncate + 1, self.xp)
        dstates = self._split(dstate, c["N"], what="dstate")
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
        return d, join_state(dstates0[::-1])

    def _backward_layer(self, k: int, dy: Array, dcy: Array | None, dstate: tuple[Array, ...],
                        truncate: int | None) -> tuple[Array, tuple[Array, ...]]:
        T, N, _ = self._buffers[k]["h"][1:].shape
        W_ih = None if self._inputs[k] is None else self.weights[k]["weight_ih"].value
        GH = self.gates * self.hidden_size
        dG = self._buffer(k, "dG", (T, N, GH))
        dGh = self._buffer(k, "dGh", (T, N, GH)) if self.separate_hidden_grad else None
        step_backward = self._steps()[1]
        if truncate is None:
            dGh_ = dG if dGh is None else dGh
            kept = self._grad_store(T, N) if self._kept_grads else None
            for t in reversed(range(T)):
                dstate = add_output_grad(dstate, dy[t], None if dcy is None else dcy[t])
                if kept is not None:  # all that reaches h_t (and c_t) from outside step t
                    for store, d in zip(kept, dstate, strict=True):
                        store[t] = d
                dstate = step_backward(k, t, dstate, dG[t], dGh_[t])
            if kept is not None:
                self._kept_grads[k] = kept
            if W_ih is None:  # forward_rows: the rows' gradient, (T, N, GH), the buffer
                dx = dG  # itself, read before the next backward (backward_rows copies it)
            else:
                dx = (dG.reshape(T * N, GH) @ W_ih).reshape(T, N, -1)  # (T, N, D)
        else:
            step = partial(step_backward, k)
            dx, dstate = truncated_loop(step, W_ih, dy, dcy, dstate, dG, dGh, truncate + 1)
        self._weight_grads(k, dG, dG if dGh is None else dGh)
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

    def _hold(self, t: int, dstate: tuple[Array, ...]) -> tuple[tuple[Array, ...], ...]:
        """The state gradient at step t: the part of real steps, the held part (_state.hold)."""
        c = self._cache
        return hold(c["mask"], t, dstate, c["ragged"]) if c else (dstate, ())
