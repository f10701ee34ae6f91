"""Bidirectional stacks (``bidirectional=True``): PyTorch's semantics, on the same cells.

Layer l has two directions, each a cell of its own with its own weights: the forward one
reads x_0 .. x_{T-1}, the reverse one x_{T-1} .. x_0, and the layer's output is both side
by side; layer l+1 reads that (T, N, 2H) output (after dropout, as in PyTorch)::

    h^f_t = step_f(x_t, h^f_{t-1})        t = 0 .. T-1,   h^f_{-1} = state[2l]
    h^r_t = step_r(x_t, h^r_{t+1})        t = T-1 .. 0,   h^r_T    = state[2l+1]
    y_t   = [h^f_t  h^r_t]                (N, 2H), forward direction first
    final state: [h^f_{T-1}, h^r_0] per layer, in the order [l0 fwd, l0 rev, l1 fwd, ...]

With ``lengths`` the reverse direction of sequence n starts at its own last step L_n - 1
(what ``pack_padded_sequence`` gives): it runs forward over the sequence reversed within
its length, ``xr[t, n] = x[rev[t, n], n]`` with ``rev[t, n] = L_n - 1 - t`` for t < L_n
(and t past the end, where the mask holds the state anyway). ``rev`` is its own inverse,
so the same gather puts the outputs back in time order, and the reversed sequence has the
same length mask as the original. Its final state is the state after x_0 (held past its
end); outputs past each sequence's end are zero.

Backward mirrors it: the output gradient is split into the two halves, the reverse half
gathered with ``rev``, each direction's loop runs as for a one-way layer (slot 2l and
2l+1 of ``Recurrent``'s buffers and weights), and the input gradients add up, the reverse
one gathered back: dx = dx^f + rev(dx^r).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from rnnlab._array import Array
from rnnlab.device import Device, array_module, to_device, to_host
from rnnlab.nn._state import (
    State,
    join_state,
    length_mask,
    masked_output,
    output_grads,
    ragged_from,
)
from rnnlab.nn.module import Parameter


def named_params_both_ways(weights: list[dict[str, Parameter]]) -> Iterator[tuple[str, Parameter]]:
    """PyTorch's names and order: weight_ih_l0, ..., bias_hh_l0, weight_ih_l0_reverse, ..."""
    for j, slot in enumerate(weights):
        suffix = "_reverse" if j % 2 else ""
        for name, p in slot.items():
            yield f"{name}_l{j // 2}{suffix}", p


def reverse_index(lengths: Any, T: int, N: int, device: Device | None = None) -> Array:
    """(T * N,) ints rev[t, n] N + n, with rev[t, n] = L_n - 1 - t for t < L_n, t beyond
    (its own inverse): row t N + n of the reversed sequences is that row of the (T N, F)
    original. Made on the host, then put on ``device`` (None: the CPU).

    >>> reverse_index(np.array([3, 1]), 4, 2).reshape(4, 2).T // 2  # rev[t, n], per n
    array([[2, 1, 0, 3],
           [0, 1, 2, 3]])
    """
    t = np.arange(T)[:, None]  # (T, 1)
    L = np.full(N, T) if lengths is None else to_host(lengths)[None, :]  # (1, N)
    rev = np.where(t < L, L - 1 - t, t)  # (T, N)
    rows = (rev * N + np.arange(N)).reshape(T * N)
    return rows if device is None else to_device(rows, device)


def flip(a: Array, rows: Array) -> Array:
    """a (T, N, F) reversed in time within each sequence's length: a[rev[t, n], n] (fresh).

    Named trick, *the flat gather*: one ``take`` of whole rows of the (T N, F) view, 30x
    faster than ``take_along_axis`` with a (T, N, 1) index, which NumPy broadcasts to one
    index per number (T = 25, N = 64, F = 256: 45 us against 1,319 us).
    """
    T, N, F = a.shape
    return array_module(a).take(a.reshape(T * N, F), rows, axis=0).reshape(T, N, F)


class Bidirectional:
    """Methods of :class:`Recurrent` for ``bidirectional=True``; see the module doc.

    What they use of the layer: the attributes below, and four methods that ``Recurrent``
    defines (declared here with their types). Slot ``2k`` of ``weights`` and ``_buffers``
    is layer k's forward direction, slot ``2k + 1`` its reverse direction.
    """

    weights: list[dict[str, Parameter]]
    _buffers: list[dict[str, Array]]
    _cache: dict[str, Any] | None
    dtype: Any
    device: Device
    xp: Any
    hidden_size: int
    num_layers: int
    state_names: tuple[str, ...]

    def _split(self, state: State, N: int, what: str = "state") -> list[tuple[Array, ...]]:
        raise NotImplementedError

    def _forward_layer(self, k: int, x: Array | None, state0: tuple[Array, ...],
                       mask: Array | None, ragged: int,
                       rows: tuple[Array, Array] | None = None) -> None:
        raise NotImplementedError

    def _backward_layer(self, k: int, dy: Array, dcy: Array | None, dstate: tuple[Array, ...],
                        truncate: int | None) -> tuple[Array, tuple[Array, ...]]:
        raise NotImplementedError

    def _dropout_mask(self, k: int, shape: tuple[int, ...]) -> Array | None:
        raise NotImplementedError

    def _forward_both_ways(self, x: Any, state: State, lengths: Any,
                           return_cells: bool) -> tuple[Any, State]:
        """Recurrent._forward for a bidirectional layer (the module doc)."""
        T, N = x.shape[:2]
        states0 = self._split(state, N)  # per slot: (h,) or (h, c)
        mask, ragged = length_mask(lengths, T, N, self.device), ragged_from(lengths, T)
        rev = reverse_index(lengths, T, N, self.device)
        drops: list[Array | None] = []
        inp, finals, H = x, [], self.hidden_size
        for k in range(self.num_layers):
            drop = self._dropout_mask(k, (T, N, 2 * H))
            if drop is not None:
                inp = inp * drop  # (T, N, 2H) inverted dropout between layers
            drops.append(drop)
            self._forward_layer(2 * k, inp, states0[2 * k], mask, ragged)
            self._forward_layer(2 * k + 1, flip(inp, rev), states0[2 * k + 1], mask, ragged)
            for j in (2 * k, 2 * k + 1):
                finals.append(tuple(self._buffers[j][name][T] for name in self.state_names))
            inp = self._both(k, "h", rev)  # (T, N, 2H) this layer's outputs
        self._cache = {"T": T, "N": N, "mask": mask, "ragged": ragged,
                       "drops": drops, "cells": return_cells, "rows": False, "rev": rev}
        y: Any = masked_output(inp, mask)
        if return_cells:
            y = (y, masked_output(self._both(self.num_layers - 1, "c", rev), mask))
        return y, join_state(finals)


    def _both(self, k: int, name: str, rev: Array) -> Array:
        """(T, N, 2H): layer k's state sequence ``name`` ("h" or "c"), forward then reverse."""
        fwd, bwd = self._buffers[2 * k][name][1:], self._buffers[2 * k + 1][name][1:]
        return self.xp.concatenate([fwd, flip(bwd, rev)], axis=2)


    def _backward_both_ways(self, dy: Any, dstate: State,
                            truncate: int | None) -> tuple[Array, State]:
        """Recurrent._backward for a bidirectional layer: each direction's loop, then dx summed."""
        if truncate is not None:
            raise ValueError("truncate= has no meaning for a bidirectional layer (its reverse "
                             "direction reads the window from its end): call backward without it")
        c = self._cache
        assert c is not None
        T, N, H, rev = c["T"], c["N"], self.hidden_size, c["rev"]
        dy, dcy = output_grads(dy, c["cells"], (T, N, 2 * H), self.dtype, c["mask"], None,
                               self.xp)
        dstates = self._split(dstate, N, what="dstate")
        d, dstates0 = dy, [dstates[0]] * len(dstates)
        for k in reversed(range(self.num_layers)):
            top = dcy if k == self.num_layers - 1 else None
            jf, jr = 2 * k, 2 * k + 1
            dx_f, dstates0[jf] = self._backward_layer(
                jf, d[..., :H], None if top is None else top[..., :H], dstates[jf], None)
            dx_r, dstates0[jr] = self._backward_layer(
                jr, flip(d[..., H:], rev), None if top is None else flip(top[..., H:], rev),
                dstates[jr], None)
            d = dx_f + flip(dx_r, rev)  # (T, N, D_k) both directions read the same input
            drop = c["drops"][k]
            if drop is not None:
                d = d * drop
        return d, join_state(dstates0)
