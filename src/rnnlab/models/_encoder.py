"""What the task models share: inputs (token ids or real vectors) read by a recurrent stack.

With T steps, N sequences, E the embedding size (or D the input features), H the hidden
size, L the layers, and dirs = 2 when bidirectional, else 1::

    x       : (T, N) ids in [0, V)   or   (T, N, D) floats (``input_size=D``)
    e       = W_emb[x]  or  x                     (T, N, E | D)
    e'      = dropout(e)                          (T, N, E | D)
    y, s    = rnn(e', None, lengths)              y (T, N, dirs*H), zero past each length
                                                  s: h (L*dirs, N, H), or (h, c) for an LSTM

Backward: ``de' , _ = rnn.backward(dy, ds)``; ``dW_emb[x] += dropout'(de')`` (scatter-add),
or ``dx = dropout'(de')`` for real inputs.

On a GPU (``device=``) x, lengths and targets may be NumPy arrays: they are checked on the
host and uploaded; predictions come back as NumPy arrays.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab._array import Array, check_float_dtype
from rnnlab.device import to_device
from rnnlab.models._cells import CELLS, cell_options
from rnnlab.models._config import checked_from_config
from rnnlab.nn import Dropout, Embedding, Module, SoftmaxCrossEntropy
from rnnlab.nn.recurrent import Recurrent


def check_lengths(lengths: Any, T: int, N: int) -> np.ndarray:
    """``lengths`` as (N,) int64 in [1, T] (None: all T); a ValueError says what is wrong."""
    if lengths is None:
        return np.full(N, T, dtype=np.int64)
    arr = np.asarray(lengths)
    if arr.shape != (N,) or arr.dtype.kind not in "iu":
        raise ValueError(f"lengths must be {N} integers, one per sequence of the batch, got "
                         f"shape {arr.shape} dtype {arr.dtype}")
    if N and (arr.min() < 1 or arr.max() > T):
        raise ValueError(f"lengths must lie in [1, T={T}] (every sequence needs a step), got "
                         f"min {arr.min()} max {arr.max()}")
    return arr.astype(np.int64)


def step_mask(T: int, lengths: np.ndarray) -> np.ndarray:
    """(T, N) booleans, True at the real steps ``t < lengths[n]``."""
    return np.arange(T)[:, None] < lengths[None, :]


def recurrent_layer(cell: str, input_size: int, hidden_size: int, num_layers: int,
                    dropout: float, bidirectional: bool, dtype: np.dtype,
                    rng: np.random.Generator, peephole: bool = False) -> Recurrent:
    """The stack of ``cell``; ``bidirectional`` is passed on only if True, once layers take it;
    ``peephole`` (LSTM only) likewise."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(map(repr, CELLS))}, got {cell!r}")
    kw: dict[str, Any] = {}
    if peephole:  # cell_options refuses it for another cell than the LSTM
        kw.update(cell_options(cell, peephole=True))
    if bidirectional:
        if "bidirectional" not in inspect.signature(CELLS[cell]).parameters:
            raise ValueError(f"bidirectional=True needs a bidirectional {CELLS[cell].__name__}, "
                             "which this rnnlab does not have yet: use bidirectional=False")
        kw["bidirectional"] = True
    return CELLS[cell](input_size, hidden_size, num_layers, dropout=dropout, dtype=dtype,
                       rng=rng, **kw)


class RecurrentEncoder(Module):
    """Base of :class:`SequenceClassifier` and :class:`SequenceTagger` (see the module doc).

    Sub-modules ``embedding`` (absent with ``input_size``), ``input_dropout``, ``rnn``, and
    for the head ``output_dropout`` and ``criterion``. A subclass names its configuration
    in ``CONFIG_KEYS``, the first being its positional argument (the number of outputs).
    """

    CONFIG_KEYS: tuple[str, ...] = ()

    def __init__(self, vocab_size: int | None, input_size: int | None, *, cell: str,
                 embed_size: int, hidden_size: int, num_layers: int, dropout: float,
                 bidirectional: bool, dtype: DTypeLike, rng: np.random.Generator,
                 peephole: bool = False) -> None:
        if (vocab_size is None) == (input_size is None):
            raise ValueError("pass exactly one of vocab_size (token ids) and input_size "
                             "(real-valued inputs (T, N, input_size))")
        self.dtype = check_float_dtype(dtype)
        self.vocab_size, self.input_size = vocab_size, input_size
        self.cell, self.bidirectional, self.peephole = cell, bool(bidirectional), bool(peephole)
        self.embed_size = int(embed_size)
        self.training = True
        self.embedding: Embedding | None = None
        if vocab_size is not None:
            self.embedding = Embedding(vocab_size, embed_size, dtype=self.dtype, rng=rng)
        self.input_dropout = Dropout(dropout, rng=rng)
        rnn_in = embed_size if input_size is None else input_size
        self.rnn = recurrent_layer(cell, rnn_in, hidden_size, num_layers, dropout,
                                   self.bidirectional, self.dtype, rng, self.peephole)
        self.directions = 2 if self.bidirectional else 1
        self.features = self.directions * hidden_size  # per step of y
        self.output_dropout = Dropout(dropout, rng=rng)
        self.criterion = SoftmaxCrossEntropy()

    def backward(self, dlogits: Array) -> Array | None:
        raise NotImplementedError

    def backward_loss(self) -> None:
        """Backpropagate the last ``loss`` (once)."""
        self.backward(self.criterion.backward())

    def encode(self, x: Array, lengths: Any) -> tuple[Array, Any, np.ndarray]:
        """``y (T, N, dirs*H)``, the final state, and the checked lengths (N,)."""
        want = 2 if self.embedding is not None else 3
        if getattr(x, "ndim", None) != want:
            what = "a (T, N) integer array of token ids" if want == 2 else \
                f"a (T, N, {self.input_size}) float array"
            raise ValueError(f"x must be {what}, got shape "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        T, N = x.shape[:2]
        lengths = check_lengths(lengths, T, N)
        e = to_device(x, self.device) if self.embedding is None else \
            self.embedding.forward(x)  # (T, N, E | D)
        y, state = self.rnn.forward(self.input_dropout.forward(e), None, lengths)
        return y, state, lengths

    def encode_backward(self, dy: Array | None, dstate: Any) -> Array | None:
        """Gradients into the weights; returns dx (T, N, D) for real inputs, else None."""
        de, _ = self.rnn.backward(dy, dstate)  # (T, N, E | D)
        de = self.input_dropout.backward(de)
        if self.embedding is None:
            return de
        self.embedding.backward(de)
        return None

    def reseed(self, seed: int | np.random.Generator) -> None:
        """One fresh generator for every dropout mask (repeatable masks, e.g. gradchecks),
        drawn in forward order: inputs, between layers, the head's input."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.input_dropout.rng = self.rnn.rng = self.output_dropout.rng = rng

    def draw_uniform(self, init_range: float | None, rng: np.random.Generator) -> None:
        """With ``init_range=r``, redraw every parameter from U(-r, r) (None: keep each
        layer's own initialisation)."""
        if init_range is None:
            return
        if not init_range > 0:
            raise ValueError(f"init_range must be positive or None, got {init_range!r}")
        for p in self.named_params().values():
            p.value[...] = rng.uniform(-init_range, init_range, p.shape)

    def _encoder_config(self) -> dict[str, Any]:
        return {
            "vocab_size": self.vocab_size, "input_size": self.input_size, "cell": self.cell,
            "embed_size": self.embed_size,
            "hidden_size": int(self.rnn.hidden_size), "num_layers": int(self.rnn.num_layers),
            "dropout": float(self.input_dropout.p), "bidirectional": self.bidirectional,
            "dtype": self.dtype.name, "peephole": self.peephole,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], rng: np.random.Generator) -> Any:
        """A freshly initialised model of the configuration ``cfg`` (from ``config()``)."""
        return checked_from_config(cls, cfg, cls.CONFIG_KEYS, cls.CONFIG_KEYS[:1], rng)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def config(self) -> dict[str, Any]:
        raise NotImplementedError
