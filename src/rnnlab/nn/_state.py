"""State plumbing for the recurrent layers: per-layer split, lengths mask, gradient streams."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab._array import Array, check_array, empty, zeros


def split_state(
    layer: Any, state: Any, N: int, what: str = "state"
) -> list[tuple[Array, ...]]:
    """Per layer: (h,) or (h, c), each (N, H); None -> zeros."""
    L, H = layer.num_layers, layer.hidden_size
    parts = layer.state_names
    if state is None:
        z = zeros((N, H), layer.dtype, layer.xp)
        return [tuple(z for _ in parts)] * L
    if layer.has_cell:
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError(f"{what} must be a pair (h, c) for {type(layer).__name__}")
        arrays = tuple(state)
    else:
        arrays = (state,)
    for name, s in zip(parts, arrays, strict=True):
        label = f"{what} {name}" if layer.has_cell else what
        check_array(label, s, layer.dtype, 3)
        if s.shape != (L, N, H):
            raise ValueError(f"{label} must have shape (num_layers, N, H) = {(L, N, H)}, "
                             f"got {tuple(s.shape)}")
    return list(zip(*arrays, strict=True))  # per layer k: (h[k],) or (h[k], c[k]), views


def join_state(layer: Any, per_layer: list[tuple[Array, ...]]) -> Any:
    """Per-layer (h,) or (h, c) -> h or (h, c), each (L, N, H): fresh arrays, not buffers."""
    stacked = []
    for i in range(len(per_layer[0])):
        out = empty((len(per_layer), *per_layer[0][i].shape), layer.dtype, layer.xp)
        for k, s in enumerate(per_layer):  # a plain copy per layer: cheaper than stack at N=1
            out[k] = s[i]
        stacked.append(out)
    return tuple(stacked) if layer.has_cell else stacked[0]


def length_mask(lengths: Any, T: int, N: int, xp: Any = np) -> Array | None:
    """(T, N, 1) booleans: step t of sequence n is real (t < lengths[n])."""
    if lengths is None:
        return None
    lengths = np.asarray(lengths)
    if lengths.shape != (N,) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be {N} integers (one per sequence), got "
                         f"shape {lengths.shape} dtype {lengths.dtype}")
    if lengths.min() < 0 or lengths.max() > T:
        raise ValueError(f"lengths must lie in [0, T={T}], got min {lengths.min()} "
                         f"max {lengths.max()}")
    return xp.asarray(np.arange(T)[:, None, None] < lengths[None, :, None])

def masked_output(h: Array, mask: Array | None) -> Array:
    return h.copy() if mask is None else h * mask


def add_output_grad(dstate: tuple[Array, ...], dh: Array, dc: Array | None) -> tuple[Array, ...]:
    """The gradient reaching h_t (and c_t) from the outputs, added to the one from t+1."""
    if len(dstate) == 1:
        return (dstate[0] + dh,)
    return (dstate[0] + dh, dstate[1] if dc is None else dstate[1] + dc)


def grad_or_zeros(layer: Any, name: str, g: Any, shape: tuple[int, ...]) -> Array:
    """An upstream gradient checked against ``shape`` (None: zeros of that shape)."""
    if g is None:
        return zeros(shape, layer.dtype, layer.xp)
    check_array(name, g, layer.dtype, len(shape))
    if g.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(g.shape)}")
    return g


def hold(
    mask: Array | None, t: int, dstate: tuple[Array, ...]
) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
    """Split the state gradient at step t into the part of real steps and the held part.

    Forward held the state past a sequence's end (s_t = s_{t-1}), so there the whole
    gradient passes straight to t-1 and the step's equations get none. mask: (T, N, 1).
    """
    if mask is None:
        return dstate, ()
    m = mask[t]  # (N, 1) booleans
    return tuple(d * m for d in dstate), tuple(d * ~m for d in dstate)
