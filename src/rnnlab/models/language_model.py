"""Word- or character-level language model: embedding, stacked recurrent layer, softmax.

The model of Zaremba, Sutskever & Vinyals (2014), "Recurrent neural network
regularization", and of PyTorch's ``word_language_model`` example. Shapes, with T steps,
N sequences, V the vocabulary, E the embedding size, H the hidden size, L the layers::

    ids     : (T, N) ints in [0, V)
    e       = W_emb[ids]                        (T, N, E)   embedding lookup
    x       = dropout(e)                        (T, N, E)   Zaremba: dropout on the input...
    y, s    = rnn(x, s_0)                       (T, N, H)   ...between layers (inside rnn)...
    y'      = dropout(y)                        (T, N, H)   ...and on the top layer's output
    logits  = y' W_dec^T + b_dec                (T, N, V)   one (T*N, H) @ (H, V) matmul
    loss    = mean_{t,n} -log softmax(logits)[targets]

Dropout is never applied to the recurrent connections h_{t-1} -> h_t (Zaremba's point: the
memory is kept intact; only the "vertical" connections are regularised).

Backward runs the same chain in reverse; each layer adds its parameter gradients::

    dy'     = dlogits W_dec                     (T, N, H)   dW_dec += dlogits^T y'
    dx, ds0 = rnn.backward(dropout'(dy'), ds)               BPTT through all T steps
    dW_emb[ids] += dropout'(dx)                             scatter-add

Small vocabularies (V <= 2E, e.g. characters): embedding and first input projection are
both linear, so they fuse into one table of each token's projection, and the (T*N, E) @
(E, gates*H) products of layer 0 (forward, dW_ih, dx) shrink to V rows instead of T*N::

    table   = W_emb W_ih0^T + b                 (V, gates*H)   once per forward
    G0      = table[ids]                        (T, N, gates*H) layer 0's input projection
    dtable[v] = sum_{t,n : ids = v} dG0[t, n]   (V, gates*H)   one-hot (V, T*N) matmul
    dW_ih0 += dtable^T W_emb,  dW_emb += dtable W_ih0

The one-hot matmul costs 2*V*T*N*gates*H FLOPs and the three products it replaces
6*E*T*N*gates*H, hence V <= 2E (and V <= 256). It is used unless an embedding dropout is
active (the table has none); the results are those of the unfused path up to rounding.

Weight tying (Press & Wolf 2017; Inan et al. 2017) uses W_emb (V, E) as W_dec (V, H), so
E must equal H; the one Parameter then receives both gradients (they simply add).

``device="cuda"`` (or ``model.to("cuda")``) puts the model on a GPU: the weights are drawn
on the host from ``rng`` and uploaded; ids, targets and states may be NumPy arrays (ids and
targets are checked on the host, then uploaded); logits and states come back on the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab._array import Array, check_float_dtype
from rnnlab.device import Device
from rnnlab.models._cells import CELLS, cell_options, check_cell_options
from rnnlab.models._config import checked_from_config
from rnnlab.models._looked_up import backward_looked_up, forward_looked_up, fuses_embedding
from rnnlab.nn import Dropout, Embedding, Linear, Module, SoftmaxCrossEntropy

State = Any  # h (L, N, H) for "rnn" and "gru"; the pair (h, c) for "lstm"
CONFIG_KEYS = ("vocab_size", "cell", "embed_size", "hidden_size", "num_layers", "dropout",
               "tie_weights", "init_range", "dtype", "nonlinearity",
               "forget_bias", "peephole")  # what config() writes; older runs lack the last
# three (their defaults then: tanh, None, False)


class LanguageModel(Module):
    """Embedding -> RNN/LSTM/GRU stack -> Linear over the vocabulary (see the module doc).

    Sub-modules: ``embedding``, ``rnn``, ``decoder`` (hence PyTorch-style parameter names
    ``embedding.weight``, ``rnn.weight_ih_l0``, ..., ``decoder.weight``, ``decoder.bias``),
    plus the parameter-free ``embed_dropout``, ``output_dropout`` and ``criterion``.

    ``init_range=r`` draws every parameter from U(-r, r) (Zaremba used r = 0.1 / 0.05 /
    0.04); None keeps each layer's own initialisation (with ``tie_weights`` the shared
    matrix is then the embedding's N(0, 1) table, so pass an ``init_range`` with ties).
    The generator ``rng`` initialises the weights and then draws the dropout masks.
    ``nonlinearity`` (``cell="rnn"`` only): ``"tanh"`` or ``"relu"``. ``forget_bias``
    (``cell="lstm"`` only): the LSTM's forget-gate bias at initialisation (see
    :class:`rnnlab.nn.LSTM`), applied after any ``init_range`` draw; None: no special value.
    ``peephole`` (``cell="lstm"`` only; PyTorch has no such option): the LSTM's diagonal
    peephole weights w_ci, w_cf, w_co (``rnn.weight_ci_l0``, ...), as in :class:`rnnlab.nn.LSTM`.

    >>> model = LanguageModel(10, cell="gru", embed_size=8, hidden_size=16, num_layers=2,
    ...                       rng=np.random.default_rng(0))
    >>> ids = np.zeros((5, 3), dtype=np.int64)              # (T, N) token ids
    >>> logits, state = model(ids)
    >>> logits.shape, state.shape                           # (T, N, V), (L, N, H)
    ((5, 3, 10), (2, 3, 16))
    >>> loss, state = model.loss(ids, ids, state)           # state carried on
    >>> model.zero_grad()
    >>> model.backward_loss()
    >>> model.named_params()["rnn.weight_hh_l1"].grad.shape
    (48, 16)
    """

    _forward_caches = ("_looked_up",)

    def __init__(
        self,
        vocab_size: int,
        *,
        cell: str = "lstm",
        embed_size: int = 200,
        hidden_size: int = 200,
        num_layers: int = 1,
        dropout: float = 0.0,
        tie_weights: bool = False,
        init_range: float | None = None,
        dtype: DTypeLike = np.float32,
        nonlinearity: str = "tanh",
        forget_bias: float | None = None,
        peephole: bool = False,
        device: str | Device = "cpu",
        rng: np.random.Generator,
    ) -> None:
        check_cell_options(cell, nonlinearity, forget_bias, peephole)
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(map(repr, CELLS))}, got {cell!r}")
        if tie_weights and embed_size != hidden_size:
            raise ValueError(f"tie_weights needs embed_size == hidden_size, got {embed_size} "
                             f"and {hidden_size}")
        if init_range is not None and not init_range > 0:
            raise ValueError(f"init_range must be positive or None, got {init_range!r}")
        self.dtype = check_float_dtype(dtype)
        self.vocab_size, self.cell, self.tie_weights = vocab_size, cell, bool(tie_weights)
        self.init_range = None if init_range is None else float(init_range)
        self.training = True
        self.embedding = Embedding(vocab_size, embed_size, dtype=self.dtype, rng=rng)
        self.embed_dropout = Dropout(dropout, rng=rng)
        cell_kw = cell_options(cell, nonlinearity=nonlinearity, peephole=peephole)
        self.peephole = bool(peephole)
        self.nonlinearity = nonlinearity
        self.forget_bias = None if forget_bias is None else float(forget_bias)
        self.rnn = CELLS[cell](embed_size, hidden_size, num_layers, dropout=dropout,
                               dtype=self.dtype, rng=rng, **cell_kw)
        self.output_dropout = Dropout(dropout, rng=rng)
        self.decoder = Linear(hidden_size, vocab_size, dtype=self.dtype, rng=rng)
        if self.tie_weights:  # one object: named_params lists it once, both grads add up
            self.decoder.weight = self.embedding.weight
        self.criterion = SoftmaxCrossEntropy()
        self._looked_up: Array | None = None  # the ids of a fused forward (see the module doc)
        if self.init_range is not None:
            for p in self.named_params().values():  # a tied matrix is drawn once
                p.value[...] = rng.uniform(-self.init_range, self.init_range, p.shape)
        if self.forget_bias is not None:
            self.rnn.init_forget_bias(self.forget_bias)  # type: ignore[attr-defined]
        self._place(device)

    # ------------------------------------------------------------------ forward
    def forward(self, ids: Array, state: State = None) -> tuple[Array, State]:
        """``logits (T, N, V), state = model.forward(ids (T, N), state)``; None: zero state."""
        y, state = self._features(ids, state)
        return self.decoder.forward(self.output_dropout.forward(y)), state

    def forward_last(
        self, ids: Array, state: State = None, *, table: Array | None = None
    ) -> tuple[Array, State]:
        """Logits of the last step only, ``(N, V)``, and the final state (for generation).

        The decoder runs on one row per sequence instead of T: reading a long prompt costs
        no (T, N, V) output. The caches are not those of a full forward: no ``backward``.
        ``table``: :meth:`input_table`'s result (eval mode only); a row lookup then replaces
        the embedding and the first layer's input projection.
        """
        if table is None:
            y, state = self._features(ids, state)
        else:
            if self.training:
                raise ValueError("table skips the embedding dropout: call model.eval() first")
            y, state = forward_looked_up(self.rnn, self.embedding, ids, state, table=table)
            self._looked_up = self.rnn.looked_up_ids()
        return self.decoder.forward(self.output_dropout.forward(y[-1])), state

    def input_table(self) -> Array:
        """(V, gates*H): ``W_emb W_ih0^T + b``, every token's first-layer input projection.

        Embedding and projection are both linear, so for token v the row ``table[v]`` is what
        ``x_t W_ih^T + b`` computes from its embedding: one (gates*H,) read per generated
        token instead of a (gates*H, E) matrix-vector product. Worth it when V <= E.
        """
        return self.rnn.input_table(self.embedding.weight.value)

    def looks_up_inputs(self) -> bool:
        """Whether forward fuses the embedding into layer 0 (the module doc's table)."""
        dropped = self.training and self.embed_dropout.p > 0  # the table has no dropout
        return fuses_embedding(self.vocab_size, self.embedding.embedding_dim) and not dropped

    def _features(self, ids: Array, state: State) -> tuple[Array, State]:
        """The top layer's outputs y (T, N, H) before the output dropout, and the state."""
        if getattr(ids, "ndim", None) != 2:
            raise ValueError(f"ids must be a (T, N) integer array, got shape "
                             f"{getattr(ids, 'shape', type(ids).__name__)}")
        if self.looks_up_inputs():
            out = forward_looked_up(self.rnn, self.embedding, ids, state)  # ids: checked, uploaded
            self._looked_up = self.rnn.looked_up_ids()
            return out
        self._looked_up = None
        x = self.embed_dropout.forward(self.embedding.forward(ids))  # (T, N, E)
        return self.rnn.forward(x, state)

    def backward(self, dlogits: Array, dstate: State = None, *,
                 keep_state_grads: bool = False) -> State:
        """Adds every parameter's gradient; returns the gradient of the initial state.

        dlogits: (T, N, V). dstate: gradient into the final state (None: none, as at a
        truncated-BPTT boundary). keep_state_grads: keep the recurrent layer's per-step
        state gradients for ``model.rnn.state_grads()``.
        """
        dy = self.output_dropout.backward(self.decoder.backward(dlogits))  # (T, N, H)
        ids = self._looked_up
        keep = keep_state_grads
        if ids is None:
            dx, dstate0 = self.rnn.backward(dy, dstate, keep_state_grads=keep)  # (T, N, E)
            self.embedding.backward(self.embed_dropout.backward(dx))
            return dstate0
        return backward_looked_up(self.rnn, self.embedding, dy, dstate, ids, keep=keep)

    # --------------------------------------------------------------- training
    def loss(self, ids: Array, targets: Array, state: State = None) -> tuple[float, State]:
        """Mean cross-entropy of the next-token predictions, and the final state.

        targets: (T, N) ints, usually ids shifted by one step. The softmax is fused with
        the loss (``SoftmaxCrossEntropy``), which turns its (T, N, V) probability buffer
        into the logits' gradient in place in :meth:`backward_loss`.
        """
        logits, state = self.forward(ids, state)
        return self.criterion.forward(logits, targets), state

    def backward_loss(self) -> None:
        """Backpropagate the last :meth:`loss` (once); no gradient enters the final state."""
        self.backward(self.criterion.backward(), None)

    def init_state(self, batch_size: int) -> State:
        """The zero state for ``batch_size`` sequences: (L, N, H), or (h, c) for an LSTM."""
        shape = (self.rnn.num_layers, batch_size, self.rnn.hidden_size)
        h = self.xp.zeros(shape, self.dtype)
        return (h, self.xp.zeros(shape, self.dtype)) if self.rnn.has_cell else h

    def reseed(self, seed: int | np.random.Generator) -> None:
        """Use a fresh generator for every dropout mask (repeatable masks, e.g. gradchecks).

        All three dropout sites share it, drawing in forward order: embedding output,
        between layers, top output.
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.embed_dropout.rng = self.rnn.rng = self.output_dropout.rng = rng

    # ---------------------------------------------------------- configuration
    def config(self) -> dict[str, Any]:
        """The constructor's arguments (bar ``rng``), JSON-serialisable."""
        return {
            "vocab_size": int(self.vocab_size), "cell": self.cell,
            "embed_size": int(self.embedding.embedding_dim),
            "hidden_size": int(self.rnn.hidden_size), "num_layers": int(self.rnn.num_layers),
            "dropout": float(self.rnn.dropout), "tie_weights": self.tie_weights,
            "init_range": self.init_range, "dtype": self.dtype.name,
            "nonlinearity": self.nonlinearity, "forget_bias": self.forget_bias,
            "peephole": self.peephole,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], rng: np.random.Generator) -> LanguageModel:
        """A freshly initialised model of the configuration ``cfg`` (from :meth:`config`)."""
        return checked_from_config(cls, cfg, CONFIG_KEYS, ("vocab_size",), rng)

    def __repr__(self) -> str:
        c = self.config()
        extra = (f", nonlinearity={c['nonlinearity']!r}" if c["cell"] == "rnn" else
                 "" if c["forget_bias"] is None else f", forget_bias={c['forget_bias']}")
        extra += ", peephole=True" if c["peephole"] else ""
        return (f"LanguageModel({c['vocab_size']}, cell={c['cell']!r}, embed_size="
                f"{c['embed_size']}, hidden_size={c['hidden_size']}, num_layers="
                f"{c['num_layers']}, dropout={c['dropout']}, tie_weights={c['tie_weights']}, "
                f"dtype={c['dtype']}{extra})")
