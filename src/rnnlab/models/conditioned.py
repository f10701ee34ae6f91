"""One-to-many: a feature vector (an image's, a class's) starts a recurrent decoder.

Karpathy & Fei-Fei (2015) / Vinyals et al. (2015) style captioning with the features in
the initial state. Shapes, with N sequences, F features, T steps, E the embedding size, H
the hidden size, L the layers, V the vocabulary::

    f      : (N, F)
    h_0    = tanh(f W_init^T + b_init)        (N, L*H) -> (L, N, H)  every layer's start
    c_0    = 0                                (L, N, H)  LSTM only: the cell starts empty,
                                              the features enter through h_0 alone
    x      = W_emb[ids]                       (T, N, E)  ids = [BOS, y_1, ..., y_{m-1}]
    y, _   = rnn(x, h_0 (, c_0))              (T, N, H)
    logits = y W_out^T + b_out                (T, N, V)
    loss   = mean over real steps (t < lengths[n]) of -log softmax(logits)[targets]

Backward::

    dy             = dlogits W_out            (T, N, H)
    dx, dh_0       = rnn.backward(dy)         BPTT down to the initial state
    dW_emb[ids]   += dx
    da             = dh_0 (1 - h_0^2)         (N, L*H)  through tanh
    dW_init       += da^T f,  df = da W_init  (N, F)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab._array import Array, check_array, check_float_dtype, check_sizes
from rnnlab.device import Device, to_device, to_host
from rnnlab.models._cells import CELLS
from rnnlab.models._config import checked_from_config
from rnnlab.models._decoding import (
    Decoded,
    check_decoding,
    greedy_search,
    log_softmax,
    target_mask,
)
from rnnlab.nn import Embedding, Linear, Module, SoftmaxCrossEntropy

State = Any  # h (L, N, H), or (h, c) for an LSTM
CONFIG_KEYS = ("vocab_size", "feature_size", "cell", "embed_size", "hidden_size",
               "num_layers", "dtype")


class ConditionedGenerator(Module):
    """Features -> initial state -> Embedding + RNN/LSTM/GRU + Linear (see the module doc).

    Sub-modules: ``init`` (Linear F -> L*H), ``embedding``, ``rnn``, ``output``,
    ``criterion``. ``generate`` decodes greedily or by sampling with a given generator.

    Examples::

        >>> import numpy as np
        >>> model = ConditionedGenerator(6, 3, cell="lstm", embed_size=4, hidden_size=5,
        ...                              rng=np.random.default_rng(0))
        >>> f = np.eye(3, dtype=np.float32)[:2]                 # (N=2, F=3)
        >>> ids, targets = np.array([[0, 0], [4, 5]]), np.array([[4, 5], [1, 1]])
        >>> loss = model.loss(f, ids, targets, lengths=np.array([2, 1]))
        >>> df = model.backward_loss()
        >>> out = model.generate(f, max_length=3, bos_id=0, eos_id=1)
        >>> len(out.tokens), all(len(t) <= 3 for t in out.tokens)
        (2, True)
    """

    _forward_caches = ("_h0",)

    def __init__(
        self,
        vocab_size: int,
        feature_size: int,
        *,
        cell: str = "lstm",
        embed_size: int = 16,
        hidden_size: int = 64,
        num_layers: int = 1,
        dtype: DTypeLike = np.float32,
        device: str | Device = "cpu",
        rng: np.random.Generator,
    ) -> None:
        check_sizes(vocab_size=vocab_size, feature_size=feature_size, embed_size=embed_size,
                    hidden_size=hidden_size, num_layers=num_layers)
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(map(repr, CELLS))}, got {cell!r}")
        self.dtype = check_float_dtype(dtype)
        self.cell, self.training = cell, True
        self.init = Linear(feature_size, num_layers * hidden_size, dtype=self.dtype, rng=rng)
        self.embedding = Embedding(vocab_size, embed_size, dtype=self.dtype, rng=rng)
        self.rnn = CELLS[cell](embed_size, hidden_size, num_layers, dtype=self.dtype, rng=rng)
        self.output = Linear(hidden_size, vocab_size, dtype=self.dtype, rng=rng)
        self.criterion = SoftmaxCrossEntropy()
        self._h0: Array | None = None
        self._place(device)

    # ----------------------------------------------------------------- forward
    def initial_state(self, features: Array) -> State:
        """h_0 = tanh(f W_init^T + b_init) as (L, N, H), with c_0 = 0 for an LSTM."""
        check_array("features", features, self.dtype, 2)
        if features.shape[1] != self.init.in_features:
            raise ValueError(f"features must have shape (N, {self.init.in_features}) "
                             f"(feature_size), got {tuple(features.shape)}")
        N, L, H, xp = features.shape[0], self.rnn.num_layers, self.rnn.hidden_size, self.xp
        a = self.init.forward(to_device(features, self.device))  # (N, L*H)
        self._h0 = xp.tanh(a)  # (N, L*H)
        h0 = xp.ascontiguousarray(self._h0.reshape(N, L, H).transpose(1, 0, 2))  # (L, N, H)
        return (h0, xp.zeros_like(h0)) if self.rnn.has_cell else h0

    def forward(self, features: Array, ids: Array) -> Array:
        """``logits (T, N, V) = model.forward(features (N, F), ids (T, N))``."""
        state = self.initial_state(features)
        if getattr(ids, "ndim", None) != 2 or ids.shape[1] != features.shape[0]:
            raise ValueError(f"ids must be a (T, N={features.shape[0]}) integer array (N: the "
                             f"number of feature vectors), got shape "
                             f"{getattr(ids, 'shape', type(ids).__name__)}")
        y, _ = self.rnn.forward(self.embedding.forward(ids), state)  # (T, N, H)
        return self.output.forward(y)  # (T, N, V)

    # ---------------------------------------------------------------- backward
    def backward(self, dlogits: Array) -> Array:
        """Adds every parameter's gradient; returns the features' gradient (N, F)."""
        if self._h0 is None:
            raise ValueError("backward called before forward")
        dy = self.output.backward(dlogits)  # (T, N, H)
        dx, dstate0 = self.rnn.backward(dy, None)  # (T, N, E)
        self.embedding.backward(dx)
        dh0 = dstate0[0] if isinstance(dstate0, tuple) else dstate0  # (L, N, H); dc_0 unused
        da = dh0.transpose(1, 0, 2).reshape(self._h0.shape) * (1 - self._h0 ** 2)  # (N, L*H)
        return self.init.backward(da)  # (N, F)

    # --------------------------------------------------------------- training
    def loss(self, features: Array, ids: Array, targets: Array, lengths: Any = None) -> float:
        """Mean cross-entropy over the real steps (t < lengths[n]; None: all)."""
        logits = self.forward(features, ids)
        mask = None if lengths is None else target_mask(lengths, *ids.shape)
        return self.criterion.forward(logits, targets, mask)

    def backward_loss(self) -> Array:
        """Backpropagate the last :meth:`loss` (once); returns the features' gradient."""
        return self.backward(self.criterion.backward())

    # ------------------------------------------------------------- generation
    def generate(self, features: Array, max_length: int, bos_id: int, eos_id: int, *,
                 greedy: bool = True, rng: np.random.Generator | None = None) -> Decoded:
        """Decode from each feature vector: argmax (``greedy``) or sampling with ``rng``."""
        check_decoding(bos_id, eos_id, self.output.out_features, max_length)
        if not greedy and not isinstance(rng, np.random.Generator):
            raise ValueError("sampling (greedy=False) needs rng=np.random.default_rng(seed)")

        def step(prev: Array, state: State, rows: Array) -> tuple[Array, State, None]:
            y, state = self.rnn.forward(self.embedding.forward(prev[None]), state)
            return to_host(log_softmax(self.output.forward(y[0]))), state, None

        def pick(logp: Array) -> Array:
            if greedy:
                return logp.argmax(axis=1)
            u = rng.random((logp.shape[0], 1))  # type: ignore[union-attr]
            cdf = np.cumsum(np.exp(logp), axis=1)  # (N, V)
            return np.minimum((cdf < u * cdf[:, -1:]).sum(axis=1), logp.shape[1] - 1)

        return greedy_search(step, self.initial_state(features), features.shape[0], bos_id,
                             eos_id, max_length, pick)

    # ---------------------------------------------------------- configuration
    def config(self) -> dict[str, Any]:
        """The constructor's arguments (bar ``rng``), JSON-serialisable."""
        return {"vocab_size": self.embedding.num_embeddings,
                "feature_size": self.init.in_features, "cell": self.cell,
                "embed_size": self.embedding.embedding_dim, "hidden_size": self.rnn.hidden_size,
                "num_layers": self.rnn.num_layers, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, cfg: dict[str, Any], rng: np.random.Generator) -> ConditionedGenerator:
        """A freshly initialised model of the configuration ``cfg`` (from :meth:`config`)."""
        return checked_from_config(cls, cfg, CONFIG_KEYS, ("vocab_size", "feature_size"), rng)
