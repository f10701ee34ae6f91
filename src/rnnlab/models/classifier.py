"""Many-to-one: a label for a whole variable-length sequence.

The encoder of ``_encoder.py`` (embedding or real inputs, recurrent stack over the
lengths), then one vector per sequence, a linear layer and softmax cross-entropy. With
``len_n`` the length of sequence n, dirs = 2 when bidirectional, C classes::

    pooling "last":  z_n = h_n[-dirs:] (final hidden state: the forward direction's at
                     step len_n - 1, the reverse one's at step 0, PyTorch's h_n)  (N, dirs*H)
            "cell":  z_n = c_n[-dirs:] (the final cell state; LSTM only)          (N, dirs*H)
            "mean":  z_n = (1/len_n) sum_{t < len_n} y_{t,n}                      (N, dirs*H)
    logits = dropout(z) W^T + b                                                   (N, C)
    loss   = mean_n -log softmax(logits_n)[label_n]

Backward: ``"last"``/``"cell"`` send dz into the final state's top rows; ``"mean"`` sends
``dy_{t,n} = dz_n / len_n`` to every valid step; then BPTT through the stack.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab._array import Array
from rnnlab.device import Device, array_module, to_device, to_host
from rnnlab.models._encoder import RecurrentEncoder, step_mask
from rnnlab.nn import Linear

POOLINGS = ("last", "cell", "mean")
KEYS = ("num_classes", "vocab_size", "input_size", "cell", "embed_size", "hidden_size",
        "num_layers", "dropout", "bidirectional", "pooling", "init_range", "dtype", "peephole")


def softmax(logits: Array) -> Array:
    """Row-wise ``exp(z - max z) / sum exp(z - max z)`` over the last axis (no overflow).

    >>> softmax(np.array([[0.0, np.log(3.0)]])).round(2).tolist()
    [[0.25, 0.75]]
    """
    e = array_module(logits).exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class SequenceClassifier(RecurrentEncoder):
    """Embedding (or real inputs) -> RNN/LSTM/GRU -> pooling -> Linear (see the module doc).

    Parameters named as PyTorch would: ``embedding.weight``, ``rnn.weight_ih_l0``, ...,
    ``fc.weight``, ``fc.bias``. ``init_range=r`` draws every parameter from U(-r, r).
    ``peephole=True`` (``cell="lstm"`` only): an LSTM with peepholes (:class:`rnnlab.nn.LSTM`).

    Examples::

        >>> rng = np.random.default_rng(0)
        >>> model = SequenceClassifier(2, vocab_size=5, embed_size=4, hidden_size=3, rng=rng)
        >>> ids = np.array([[1, 2], [3, 0], [4, 0]])      # (T=3, N=2), padded
        >>> model.loss(ids, np.array([0, 1]), lengths=[3, 1]) > 0
        True
        >>> model.backward_loss()
        >>> model.predict(ids, lengths=[3, 1]).shape
        (2,)
    """

    CONFIG_KEYS = KEYS

    def __init__(
        self,
        num_classes: int,
        vocab_size: int | None = None,
        *,
        input_size: int | None = None,
        cell: str = "lstm",
        embed_size: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        pooling: str = "last",
        init_range: float | None = None,
        dtype: DTypeLike = np.float32,
        peephole: bool = False,
        device: str | Device = "cpu",
        rng: np.random.Generator,
    ) -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(map(repr, POOLINGS))}, "
                             f"got {pooling!r}")
        if pooling == "cell" and cell != "lstm":
            raise ValueError(f"pooling='cell' reads the LSTM cell state: cell {cell!r} has "
                             "none (use 'last' or 'mean')")
        super().__init__(vocab_size, input_size, cell=cell, embed_size=embed_size,
                         hidden_size=hidden_size, num_layers=num_layers, dropout=dropout,
                         bidirectional=bidirectional, dtype=dtype, rng=rng,
                         peephole=peephole)
        self.num_classes, self.pooling = int(num_classes), pooling
        self.fc = Linear(self.features, num_classes, dtype=self.dtype, rng=rng)
        self.init_range = None if init_range is None else float(init_range)
        self.draw_uniform(self.init_range, rng)
        self._cache: tuple[Any, np.ndarray, int] | None = None
        self._place(device)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Array, lengths: Any = None) -> Array:
        """``logits (N, C) = model.forward(x (T, N) or (T, N, D), lengths (N,))``."""
        y, state, lengths = self.encode(x, lengths)
        if self.pooling == "mean":
            z = y.sum(axis=0) / self._on_device(lengths[:, None])  # (N, dirs*H)
        else:
            s = state if self.cell != "lstm" else state[self.pooling == "cell"]  # h or c
            z = self._top(s)  # (N, dirs*H)
        self._cache = (state, lengths, y.shape[0])
        return self.fc.forward(self.output_dropout.forward(z))  # (N, C)

    def _on_device(self, a: np.ndarray) -> Array:
        """A host array (lengths, a mask) in the model's dtype, on its device."""
        return to_device(a.astype(self.dtype), self.device)

    def _top(self, s: Array) -> Array:
        """(L*dirs, N, H) -> (N, dirs*H): the top layer's rows, directions side by side."""
        top = s[-self.directions:]  # (dirs, N, H)
        return top.transpose(1, 0, 2).reshape(top.shape[1], -1)

    def backward(self, dlogits: Array) -> Array | None:
        """Adds every parameter's gradient; returns dx (T, N, D) for real inputs, else None."""
        if self._cache is None:
            raise ValueError("backward called before forward")
        state, lengths, T = self._cache
        dz = self.output_dropout.backward(self.fc.backward(dlogits))  # (N, dirs*H)
        N = dz.shape[0]
        if self.pooling == "mean":
            dz_n = dz / self._on_device(lengths[:, None])  # (N, dirs*H)
            dy = self._on_device(step_mask(T, lengths)[..., None]) * dz_n  # (T, N, dirs*H)
            return self.encode_backward(dy, None)
        parts = [self.xp.zeros_like(s) for s in (state if self.cell == "lstm" else (state,))]
        target = parts[1] if self.pooling == "cell" else parts[0]  # (L*dirs, N, H)
        target[-self.directions:] = dz.reshape(N, self.directions, -1).transpose(1, 0, 2)
        dstate = tuple(parts) if self.cell == "lstm" else parts[0]
        return self.encode_backward(None, dstate)

    # --------------------------------------------------------------- training
    def loss(self, x: Array, targets: Array, lengths: Any = None) -> float:
        """Mean cross-entropy of the class predictions; targets: (N,) ints in [0, C)."""
        return self.criterion.forward(self.forward(x, lengths), to_host(targets))

    def predict_proba(self, x: Array, lengths: Any = None) -> Array:
        """Class probabilities (N, C), a NumPy array (call :meth:`eval` first to turn dropout
        off)."""
        return to_host(softmax(self.forward(x, lengths)))

    def predict(self, x: Array, lengths: Any = None) -> np.ndarray:
        """The most probable class of each sequence, (N,) int64."""
        return to_host(self.forward(x, lengths).argmax(axis=-1)).astype(np.int64)

    # ---------------------------------------------------------- configuration
    def config(self) -> dict[str, Any]:
        """The constructor's arguments (bar ``rng``), JSON-serialisable."""
        return {"num_classes": self.num_classes, **self._encoder_config(),
                "pooling": self.pooling, "init_range": self.init_range}
