"""State plumbing for the recurrent layers: per-layer split, lengths mask, gradient streams.

Every function here takes what it needs as arguments (no layer object): ``names`` is a
cell's ``state_names``, ("h",) or ("h", "c"), and ``shape`` the state's (L, N, H). Arrays
are made with the array module ``xp`` of the layer's device (numpy or cupy), or that of
the arrays given.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from rnnlab._array import Array, check_array
from rnnlab.device import Device, array_module, to_device, to_host

State = Any  # h (L, N, H) for RNN/GRU; the pair (h, c) for LSTM


def split_state(
    state: State, names: tuple[str, ...], shape: tuple[int, int, int], dtype: np.dtype,
    cls: str, what: str = "state", rows: str = "num_layers", xp: ModuleType = np,
) -> list[tuple[Array, ...]]:
    """Per layer: (h,) or (h, c), each (N, H); None -> zeros. cls: the layer's class name.

    rows: what the first axis counts, for the error message ("num_layers * 2" if bidirectional).
    """
    L, N, H = shape
    pair = len(names) == 2
    if state is None:
        z = xp.zeros((N, H), dtype)
        return [tuple(z for _ in names)] * L
    if pair:
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError(f"{what} must be a pair (h, c) for {cls}")
        arrays = tuple(state)
    else:
        arrays = (state,)
    for name, s in zip(names, arrays, strict=True):
        label = f"{what} {name}" if pair else what
        check_array(label, s, dtype, 3)
        if s.shape != (L, N, H):
            raise ValueError(f"{label} must have shape ({rows}, N, H) = {(L, N, H)}, "
                             f"got {tuple(s.shape)}")
    arrays = tuple(xp.asarray(s) for s in arrays)  # NumPy states onto a GPU (else no-op)
    return list(zip(*arrays, strict=True))  # per layer k: (h[k],) or (h[k], c[k]), views


def join_state(per_layer: list[tuple[Array, ...]]) -> State:
    """Per-layer (h,) or (h, c) -> h or (h, c), each (L, N, H): fresh arrays, not buffers."""
    stacked = []
    for i in range(len(per_layer[0])):
        first = per_layer[0][i]
        out = array_module(first).empty((len(per_layer), *first.shape), first.dtype)
        for k, s in enumerate(per_layer):  # a plain copy per layer: cheaper than stack at N=1
            out[k] = s[i]
        stacked.append(out)
    return tuple(stacked) if len(stacked) == 2 else stacked[0]


def length_mask(lengths: Any, T: int, N: int, device: Device | None = None) -> Array | None:
    """(T, N, 1) booleans: step t of sequence n is real (t < lengths[n]); checked on the
    host, then put on ``device`` (None: the CPU)."""
    if lengths is None:
        return None
    lengths = to_host(lengths)
    if lengths.shape != (N,) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be {N} integers (one per sequence), got "
                         f"shape {lengths.shape} dtype {lengths.dtype}")
    if lengths.min() < 0 or lengths.max() > T:
        raise ValueError(f"lengths must lie in [0, T={T}], got min {lengths.min()} "
                         f"max {lengths.max()}")
    mask = np.arange(T)[:, None, None] < lengths[None, :, None]
    return mask if device is None else to_device(mask, device)


def ragged_from(lengths: Any, T: int) -> int:
    """The first step at which some sequence has ended: min(lengths), T without lengths.

    Named trick, *full steps skip the mask*: before that step every sequence is real, so
    holding the state (forward) and splitting its gradient (``hold``) are no-ops there and
    are skipped. Length-bucketed batches are full at almost every step. Read from the
    host's lengths (as ``length_mask`` checks them), not from the mask on a device.
    """
    return T if lengths is None else min(int(to_host(lengths).min()), T)


def masked_output(h: Array, mask: Array | None) -> Array:
    """A fresh copy of h (T, N, H), zero past each sequence's length."""
    return h.copy() if mask is None else h * mask


def add_output_grad(dstate: tuple[Array, ...], dh: Array, dc: Array | None) -> tuple[Array, ...]:
    """The gradient reaching h_t (and c_t) from the outputs, added to the one from t+1.

    dh_t is a fresh array; dc_t is ``dstate[1]`` itself when no cell output was returned.
    """
    if len(dstate) == 1:
        return (dstate[0] + dh,)
    return (dstate[0] + dh, dstate[1] if dc is None else dstate[1] + dc)


def grad_or_zeros(name: str, g: Any, shape: tuple[int, ...], dtype: np.dtype,
                  xp: ModuleType = np) -> Array:
    """An upstream gradient checked against ``shape`` (None: zeros of that shape, in xp)."""
    if g is None:
        return xp.zeros(shape, dtype)
    check_array(name, g, dtype, len(shape))
    if g.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(g.shape)}")
    return g


def output_grads(
    dy: Any, cells: bool, shape: tuple[int, int, int], dtype: np.dtype, mask: Array | None,
    ages: int | None, xp: ModuleType = np,
) -> tuple[Array, Array | None]:
    """The gradients of the outputs, checked: dh_seq and (with cells) dc_seq, (T, N, H).

    dy: as passed to backward (the pair after return_cells; None: zeros). Zero past each
    sequence's end (the output is zero there); with ``ages`` (truncate + 1), laid out by
    age as (T, A, N, H), all at age 0.
    """
    dh, dc = dy if cells else (dy, None)
    dh = grad_or_zeros("dy", dh, shape, dtype, xp)
    dc = grad_or_zeros("dy (cells)", dc, shape, dtype, xp) if cells else None
    if mask is not None:
        dh = dh * mask
        dc = None if dc is None else dc * mask
    if ages is not None:
        dh = by_age(dh, ages)
        dc = None if dc is None else by_age(dc, ages)
    return dh, dc


def by_age(g: Array, A: int) -> Array:
    """(T, N, H) -> (T, A, N, H) with everything at age 0 (a stream just born)."""
    out = array_module(g).zeros((g.shape[0], A, *g.shape[1:]), dtype=g.dtype)
    out[:, 0] = g
    return out


def hold(
    mask: Array | None, t: int, dstate: tuple[Array, ...], ragged: int
) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
    """Split the state gradient at step t into the part of real steps and the held part.

    Forward held the state past a sequence's end (s_t = s_{t-1}), so there the whole
    gradient passes straight to t-1 and the step's equations get none. mask: (T, N, 1);
    ragged: ``ragged_from(lengths, T)``, before which no step is held.
    """
    if mask is None or t < ragged:
        return dstate, ()
    m = mask[t]  # (N, 1) booleans
    return tuple(d * m for d in dstate), tuple(d * ~m for d in dstate)
