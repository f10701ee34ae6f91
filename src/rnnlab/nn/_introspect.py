"""What a recurrent layer shows of its last forward and backward: states, gates, state gradients.

The public methods ``Recurrent.states``, ``gate_values`` and ``state_grads`` (a mixin of
``Recurrent``, as ``InputTable`` is) read the layer's buffers (see ``Recurrent``'s
docstring) and hand back fresh copies, so nothing outside the layer ever holds a buffer
the next call overwrites.
Shapes, with L layers, T steps, N sequences, H cells::

    states()            {"h": (L, T, N, H)[, "c": (L, T, N, H)]}   the state after each step
    gate_values()       [{gate: (T, N, H)} per layer]   after the nonlinearity:
                        LSTM i, f, g, o (sigma, sigma, tanh, sigma); GRU r, z, n (sigma,
                        sigma, tanh); the gate buffer's name spells the gates ("ifgo", "rzn")
    state_grads()       {"h": (L, T, N, H)[, "c": ...]}  after backward(keep_state_grads=True)

Past a sequence's end (``lengths``) the states are the held ones and the gate values those
the step computed before the state was held.
"""

from __future__ import annotations

from typing import Any

from rnnlab._array import Array


class Introspection:
    """Methods of :class:`Recurrent` that show its last passes; see the module doc.

    What they use of the layer: the attributes below (``_kept_grads`` is filled by
    ``backward(..., keep_state_grads=True)`` through :meth:`_grad_store`).
    """

    _buffers: list[dict[str, Array]]
    _cache: dict[str, Any] | None
    _kept_grads: list[tuple[Array, ...] | None]
    bidirectional: bool
    dtype: Any
    gate_buffer: str | None
    hidden_size: int
    xp: Any
    state_names: tuple[str, ...]

    def states(self) -> dict[str, Array]:
        """Every layer's state after each step of the last forward, as fresh arrays.

        Returns ``{"h": (L, T, N, H)}``, with ``"c"`` too for an LSTM: ``states()["h"][k, t]``
        is layer k's h_t (for the top layer, y[t] before the zeroing past a sequence's end).
        """
        self._check_forward()
        return {name: self.xp.stack([b[name][1:] for b in self._buffers])  # (L, T, N, H), a copy
                for name in self.state_names}

    def gate_values(self) -> list[dict[str, Array]]:
        """Per layer, each gate's activations of the last forward, after the nonlinearity.

        ``[{"i", "f", "g", "o": (T, N, H)}]`` for an LSTM, ``[{"r", "z", "n": ...}]`` for a
        GRU (ValueError for an RNN, which has none); fresh arrays.
        """
        self._check_forward()
        if self.gate_buffer is None:
            raise ValueError(f"{type(self).__name__} has no gates (only LSTM and GRU have)")
        H, gates = self.hidden_size, self.gate_buffer  # "ifgo" -> i, f, g, o; "rzn" -> r, z, n
        return [{name: b[gates][..., j * H:(j + 1) * H].copy()  # (T, N, H)
                 for j, name in enumerate(gates)} for b in self._buffers]

    def state_grads(self) -> dict[str, Array]:
        """The state gradients of the last ``backward(..., keep_state_grads=True)``.

        ``{"h": (L, T, N, H)}`` (and ``"c"`` for an LSTM): ``[k, t]`` is all the gradient
        that reaches layer k's h_t (c_t) from outside step t, from y_t and from step t+1;
        for h that is dL/dh_t, for c it is dL/dc_t holding h_t fixed (the dc_t that
        ``reference.lstm_step_backward`` takes; the path through h_t = o tanh(c_t) is
        added inside the step). Fresh arrays.
        """
        kept = self._kept_grads
        if not kept or any(g is None for g in kept):
            raise ValueError("no state gradients kept: call backward(..., "
                             "keep_state_grads=True) (without truncate) after forward")
        return {name: self.xp.stack([g[i] for g in kept if g is not None])
                for i, name in enumerate(self.state_names)}

    def _grad_store(self, T: int, N: int) -> tuple[Array, ...]:
        """Fresh (T, N, H) arrays, one per state, for one layer's per-step state gradients."""
        return tuple(self.xp.empty((T, N, self.hidden_size), self.dtype) for _ in self.state_names)

    def _check_forward(self) -> None:
        if self.bidirectional:
            raise ValueError(f"a bidirectional {type(self).__name__} cannot show its passes "
                             "yet: inspect a one-way layer")
        if self._cache is None:
            raise ValueError(f"{type(self).__name__} has no forward pass to show yet: call it "
                             "first")
