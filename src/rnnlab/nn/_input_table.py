"""Layer 0's input projection looked up from a table instead of computed (small vocabularies).

When a recurrent layer's input is an embedding, x_t = E[id_t] with E (V, D), its input
projection is linear in E, so every token's projection fits in one table::

    table = E W_ih^T + b            (V, gates*H)  input_table
    G0[t, n] = table[ids[t, n]]     (T, N, gates*H)  forward_rows: a row lookup per step

and backward, through the same lookup (``backward_rows`` returns dG0 where ``backward``
returns dx)::

    drows, dstate0 = backward_rows(dy, dstate)     drows = dG0 (T, N, gates*H)
    dtable[v] = sum_{t,n : ids = v} drows[t, n]    add_rows_at (the caller)
    dW_ih += dtable^T E,  dE = dtable W_ih          input_table_backward

That replaces three (T*N, D) @ (D, gates*H) products (forward, dW_ih, dx) with (V, D) ones,
plus the per-token sum; the models use it when V <= 2D and V <= 256
(``rnnlab.models._looked_up``): LanguageModel for characters, Seq2Seq for small vocabularies.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from rnnlab._array import Array, check_array, check_ids
from rnnlab.device import Device, to_device


class RowsGrad(NamedTuple):
    """What :meth:`InputTable.backward_rows` returns (unpacks as ``drows, dstate0``)."""

    drows: Array  # (T, N, gates*H): gradient of the looked-up rows table[ids[t, n]]
    dstate0: Any  # gradient of the initial state, as from backward


class InputTable:
    """Methods of :class:`Recurrent` for the table; see the module doc.

    What they use of the layer: the attributes below, and three methods that ``Recurrent``
    defines (declared here with their types).
    """

    weights: list[dict[str, Any]]
    _cache: dict[str, Any] | None
    dtype: Any
    device: Device
    gates: int
    hidden_size: int
    bidirectional: bool

    def _input_bias(self, k: int) -> Array | None:
        raise NotImplementedError

    def _forward(self, x: Array | None, rows: tuple[Array, Array] | None, state: Any,
                 lengths: Any, return_cells: bool) -> tuple[Any, Any]:
        raise NotImplementedError

    def _backward(self, dy: Any, dstate: Any, truncate: int | None,
                  keep: bool = False) -> tuple[Array, Any]:
        raise NotImplementedError

    def input_table(self, E: Array) -> Array:
        """(V, gates*H) = E W_ih^T + b: layer 0's input projection of every row of E (V, D).

        With E an embedding matrix, row v is exactly what the input projection computes for
        token v, so :meth:`forward_rows` can look the rows up instead of multiplying: for a
        small vocabulary that is far less work, in training as in generation.
        """
        self._refuse_bidirectional("input_table")
        G = E @ self.weights[0]["weight_ih"].value.T  # (V, gates*H)
        b = self._input_bias(0)
        return G if b is None else G + b

    def input_table_backward(self, E: Array, dtable: Array) -> Array:
        """input_table's backward: adds ``dtable^T E`` to W_ih's gradient; returns dE (V, D).

        The bias's share (the sum of dtable's rows) is not added here: ``backward`` has
        already added it, from the gates' gradient, as it does for any input.
        """
        self._refuse_bidirectional("input_table_backward")
        W_ih = self.weights[0]["weight_ih"]  # (gates*H, D)
        W_ih.grad += dtable.T @ E
        return dtable @ W_ih.value  # (V, D)

    def forward_rows(self, table: Array, ids: Array, state: Any = None,
                     lengths: Any = None) -> tuple[Any, Any]:
        """``forward`` with layer 0's input projection looked up: row ``table[ids[t, n]]``.

        table: (V, gates*H) from :meth:`input_table`; ids: (T, N) ints in [0, V); lengths:
        as for ``forward`` (padded sequences). Its backward is :meth:`backward_rows`.

        Examples::

            >>> import numpy as np
            >>> from rnnlab.nn import LSTM
            >>> from rnnlab.nn.embedding import add_rows_at
            >>> lstm = LSTM(4, 3, dtype=np.float64, rng=np.random.default_rng(0))
            >>> E = np.random.default_rng(1).standard_normal((6, 4))   # (V, D) embeddings
            >>> ids = np.array([[0, 5], [2, 2]])                        # (T, N)
            >>> y, state = lstm.forward_rows(lstm.input_table(E), ids)
            >>> bool(np.allclose(y, lstm.forward(E[ids])[0]))          # same as the input
            True
            >>> _ = lstm.forward_rows(lstm.input_table(E), ids)
            >>> drows, dstate0 = lstm.backward_rows(np.ones_like(y))
            >>> dtable = np.zeros((6, 12))
            >>> add_rows_at(dtable, ids, drows)                         # sum per token
            >>> lstm.input_table_backward(E, dtable).shape              # dE (V, D)
            (6, 4)
        """
        self._refuse_bidirectional("forward_rows")
        check_array("table", table, self.dtype, 2)
        if table.shape[1] != self.gates * self.hidden_size:
            raise ValueError(f"table must have {self.gates * self.hidden_size} columns "
                             f"(gates * hidden_size), got shape {tuple(table.shape)}")
        if getattr(ids, "ndim", None) != 2:
            raise ValueError(f"ids must be a (T, N) integer array, got shape "
                             f"{getattr(ids, 'shape', type(ids).__name__)}")
        check_ids(ids, table.shape[0], "the table's rows")  # NumPy ids: on the host
        return self._forward(None, (table, to_device(ids, self.device)), state, lengths, False)

    def backward_rows(self, dy: Array, dstate: Any = None, *, truncate: int | None = None,
                      keep_state_grads: bool = False) -> RowsGrad:
        """:meth:`forward_rows`' backward: ``backward``, with the rows' gradient for dx.

        Arguments as for ``backward``; adds the weight gradients into ``.grad`` (W_ih's
        through :meth:`input_table_backward`). Summed per id (``add_rows_at``) ``drows`` is
        that method's dtable.
        """
        drows, dstate0 = self._backward_rows(dy, dstate, truncate, keep_state_grads)
        return RowsGrad(drows.copy(), dstate0)

    def _backward_rows(self, dy: Array, dstate: Any, truncate: int | None = None,
                       keep: bool = False) -> tuple[Array, Any]:
        """``backward_rows`` without its copy: drows may be the layer's own gradient buffer,
        valid until the next backward (``models._looked_up`` sums it per token at once: the
        two (T, N, gates*H) copies took 0.73 and 0.95 ms of a 36 ms seq2seq-dot step, under
        pyinstrument at 2 threads)."""
        if not self._looked_up():
            raise ValueError("backward_rows follows forward_rows; after forward, call backward")
        return self._backward(dy, dstate, truncate, keep)

    def _refuse_bidirectional(self, method: str) -> None:
        if self.bidirectional:
            raise ValueError(f"{method} is for a one-way first layer (a language model's "
                             f"embedding table); a bidirectional layer takes x: call forward")

    def looked_up_ids(self) -> Array:
        """The ids of the last :meth:`forward_rows`, on the layer's device (as uploaded)."""
        if not self._looked_up():
            raise ValueError("no forward_rows to read the ids of: call forward_rows first")
        assert self._cache is not None
        return self._cache["ids"]

    def _looked_up(self) -> bool:
        """Whether the last forward looked layer 0's input projection up (forward_rows)."""
        return self._cache is not None and self._cache["rows"]
