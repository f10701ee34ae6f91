"""What a recurrent layer does about its device: buffers, moves, step kernels, masks.

A :class:`Recurrent` layer keeps its per-layer buffers (``self._buffers[k][name]``) on its
device and reuses them while shapes hold; ``to(device)`` drops them (the next forward makes
them there). On a CUDA device the time loops call the cell's fused kernels,
``_step_forward_cuda(k, t)`` and ``_step_backward_cuda(k, t, dstate, dG_t, dGh_t)``, when
the cell defines them, its ``fused`` is True (set it False to run the NumPy-style step on
CuPy, e.g. to compare the two) and the array module can compile kernels (CuPy's
``RawKernel``); else the xp-generic ``_step_forward`` and ``_step_backward``. Dropout
masks are drawn by the layer's NumPy generator on the host and uploaded, so one seed gives
the same masks on every device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab._array import Array
from rnnlab.device import Device, to_device
from rnnlab.nn.dropout import dropout_mask


class OnDevice:
    """Methods of :class:`Recurrent` about its device (see the module doc)."""

    fused = True  # on a GPU, use the cell's fused step kernels if it has them
    device: Device
    xp: Any
    dtype: Any
    bidirectional: bool
    num_layers: int
    dropout: float
    training: bool
    rng: np.random.Generator
    _buffers: list[dict[str, Array]]
    _cache: dict[str, Any] | None
    _inputs: list[Array | None]
    _kept_grads: list[tuple[Array, ...] | None]

    def _moved(self) -> None:
        """After ``to``: the buffers are rebuilt on the new device by the next forward."""
        dirs = 2 if self.bidirectional else 1
        self._cache, self._kept_grads = None, []
        self._buffers = [{} for _ in range(self.num_layers * dirs)]
        self._inputs = [None] * (self.num_layers * dirs)

    def _buffer(self, k: int, name: str, shape: tuple[int, ...]) -> Array:
        """An array reused across calls while its shape stays the same (no per-call allocation)."""
        buf = self._buffers[k].get(name)
        if buf is None or buf.shape != shape:
            buf = self.xp.empty(shape, self.dtype)
            self._buffers[k][name] = buf
        return buf

    def _steps(self) -> tuple[Any, Any]:
        """The step hooks the loops call (see the module doc)."""
        if (self.fused and self.device.is_cuda and hasattr(self, "_step_forward_cuda")
                and hasattr(self.xp, "RawKernel")):
            return self._step_forward_cuda, self._step_backward_cuda  # type: ignore[attr-defined]
        return self._step_forward, self._step_backward  # type: ignore[attr-defined]

    def _dropout_mask(self, k: int, shape: tuple[int, ...]) -> Array | None:
        """Layer k's input mask (k > 0, training, dropout > 0), drawn on the host, uploaded."""
        if k == 0 or self.dropout == 0.0 or not self.training:
            return None
        return to_device(dropout_mask(self.rng, self.dropout, shape, self.dtype), self.device)
