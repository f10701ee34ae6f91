"""What a recurrent layer shows of its last forward and backward: states, gates, state gradients.

The public methods ``Recurrent.states``, ``gate_values`` and ``state_grads`` read the
layer's buffers (see ``Recurrent``'s docstring) through these functions and hand back
fresh copies, so nothing outside the layer ever holds a buffer the next call overwrites.
Shapes, with L layers, T steps, N sequences, H cells::

    states(layer)       {"h": (L, T, N, H)[, "c": (L, T, N, H)]}   the state after each step
    gate_values(layer)  [{gate: (T, N, H)} per layer]   after the nonlinearity:
                        LSTM i, f, g, o (sigma, sigma, tanh, sigma); GRU r, z, n (sigma,
                        sigma, tanh); the gate buffer's name spells the gates ("ifgo", "rzn")
    state_grads(layer)  {"h": (L, T, N, H)[, "c": ...]}  after backward(keep_state_grads=True)

Past a sequence's end (``lengths``) the states are the held ones and the gate values those
the step computed before the state was held.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab._array import Array


def _check_forward(layer: Any) -> tuple[int, int]:
    if layer.bidirectional:
        raise ValueError(f"a bidirectional {type(layer).__name__} cannot show its passes yet: "
                         "inspect a one-way layer")
    if layer._cache is None:
        raise ValueError(f"{type(layer).__name__} has no forward pass to show yet: call it first")
    return layer._cache["T"], layer._cache["N"]


def layer_states(layer: Any) -> dict[str, Array]:
    """Every layer's state after each step of the last forward: name -> (L, T, N, H), copies."""
    _check_forward(layer)
    return {name: np.stack([b[name][1:] for b in layer._buffers])  # (L, T, N, H), a copy
            for name in layer.state_names}


def layer_gate_values(layer: Any) -> list[dict[str, Array]]:
    """Per layer, each gate's values of the last forward: {name: (T, N, H)}, copies."""
    _check_forward(layer)
    if layer.gate_buffer is None:
        raise ValueError(f"{type(layer).__name__} has no gates (only LSTM and GRU have)")
    H = layer.hidden_size
    names = tuple(layer.gate_buffer)  # "ifgo" -> i, f, g, o; "rzn" -> r, z, n
    return [{name: b[layer.gate_buffer][..., j * H:(j + 1) * H].copy()  # (T, N, H)
             for j, name in enumerate(names)} for b in layer._buffers]


def new_grad_store(layer: Any, k: int, T: int, N: int) -> tuple[Array, ...]:
    """Fresh (T, N, H) arrays, one per state, for layer k's per-step state gradients."""
    return tuple(np.empty((T, N, layer.hidden_size), layer.dtype) for _ in layer.state_names)


def layer_state_grads(layer: Any) -> dict[str, Array]:
    """Stack the kept per-layer gradients into name -> (L, T, N, H)."""
    kept = getattr(layer, "_kept_grads", None)
    if not kept or any(g is None for g in kept):
        raise ValueError("no state gradients kept: call backward(..., keep_state_grads=True) "
                         "(without truncate) after forward")
    return {name: np.stack([g[i] for g in kept]) for i, name in enumerate(layer.state_names)}
