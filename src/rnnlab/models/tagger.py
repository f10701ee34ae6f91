"""Many-to-many, aligned: a label for every step of a variable-length sequence.

The encoder of ``_encoder.py``, then a linear layer at every step; the loss averages over
the real steps only (padding masked out). With C tags, dirs = 2 when bidirectional::

    y, _    = encoder(x, lengths)                 (T, N, dirs*H), zero past each length
    logits  = dropout(y) W^T + b                  (T, N, C)
    m_{t,n} = [t < len_n]                         (T, N) the real steps
    loss    = (1 / sum m) sum_{t,n} m_{t,n} (-log softmax(logits_{t,n})[tag_{t,n}])

Backward: ``dlogits`` is zero at padded steps (the masked loss), so nothing flows from
them; the rest is the encoder's BPTT.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab._array import Array
from rnnlab.device import Device, to_host
from rnnlab.models._encoder import RecurrentEncoder, step_mask
from rnnlab.nn import Linear

KEYS = ("num_tags", "vocab_size", "input_size", "cell", "embed_size", "hidden_size",
        "num_layers", "dropout", "bidirectional", "init_range", "dtype", "peephole")
PAD_TAG = -1  # what predict writes at padded steps


class SequenceTagger(RecurrentEncoder):
    """Embedding (or real inputs) -> RNN/LSTM/GRU -> Linear at each step (see the module doc).

    Parameters: ``embedding.weight``, ``rnn.weight_ih_l0``, ..., ``fc.weight``, ``fc.bias``.
    ``peephole=True`` (``cell="lstm"`` only): an LSTM with peepholes (:class:`rnnlab.nn.LSTM`).

    Examples::

        >>> rng = np.random.default_rng(0)
        >>> model = SequenceTagger(3, vocab_size=5, embed_size=4, hidden_size=3, rng=rng)
        >>> ids = np.array([[1, 2], [3, 0]])              # (T=2, N=2), padded
        >>> tags = np.array([[0, 2], [1, -1]])            # padding's tag is never read
        >>> model.loss(ids, tags, lengths=[2, 1]) > 0
        True
        >>> model.backward_loss()
        >>> int(model.predict(ids, lengths=[2, 1])[1, 1])  # padded step
        -1
    """

    CONFIG_KEYS = KEYS

    def __init__(
        self,
        num_tags: int,
        vocab_size: int | None = None,
        *,
        input_size: int | None = None,
        cell: str = "lstm",
        embed_size: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        init_range: float | None = None,
        dtype: DTypeLike = np.float32,
        peephole: bool = False,
        device: str | Device = "cpu",
        rng: np.random.Generator,
    ) -> None:
        super().__init__(vocab_size, input_size, cell=cell, embed_size=embed_size,
                         hidden_size=hidden_size, num_layers=num_layers, dropout=dropout,
                         bidirectional=bidirectional, dtype=dtype, rng=rng,
                         peephole=peephole)
        self.num_tags = int(num_tags)
        self.fc = Linear(self.features, num_tags, dtype=self.dtype, rng=rng)
        self.init_range = None if init_range is None else float(init_range)
        self.draw_uniform(self.init_range, rng)
        self._lengths = np.zeros(0, dtype=np.int64)  # of the last forward
        self._place(device)

    def forward(self, x: Array, lengths: Any = None) -> Array:
        """``logits (T, N, C) = model.forward(x (T, N) or (T, N, D), lengths (N,))``."""
        y, _, self._lengths = self.encode(x, lengths)  # (T, N, dirs*H)
        return self.fc.forward(self.output_dropout.forward(y))  # (T, N, C)

    def backward(self, dlogits: Array) -> Array | None:
        """Adds every parameter's gradient; returns dx (T, N, D) for real inputs, else None."""
        dy = self.output_dropout.backward(self.fc.backward(dlogits))  # (T, N, dirs*H)
        return self.encode_backward(dy, None)

    def loss(self, x: Array, tags: Array, lengths: Any = None) -> float:
        """Mean cross-entropy over the real steps; tags: (T, N) ints in [0, C) (any value at
        padded steps)."""
        logits = self.forward(x, lengths)  # (T, N, C)
        tags = to_host(tags)
        if tags.shape != logits.shape[:2]:
            raise ValueError(f"tags must have the inputs' shape (T, N) = {logits.shape[:2]}, "
                             f"got {tags.shape}")
        return self.criterion.forward(logits, tags, step_mask(tags.shape[0], self._lengths))

    def predict(self, x: Array, lengths: Any = None) -> np.ndarray:
        """The most probable tag at each step, (T, N) int64, ``PAD_TAG`` (-1) past each end
        (call :meth:`eval` first to turn dropout off)."""
        logits = self.forward(x, lengths)  # (T, N, C)
        out = to_host(logits.argmax(axis=-1)).astype(np.int64)
        out[~step_mask(logits.shape[0], self._lengths)] = PAD_TAG
        return out

    def config(self) -> dict[str, Any]:
        """The constructor's arguments (bar ``rng``), JSON-serialisable."""
        return {"num_tags": self.num_tags, **self._encoder_config(),
                "init_range": self.init_range}
