"""Layer 0's input projection looked up from a table instead of computed (small vocabularies).

When a recurrent layer's input is an embedding, x_t = E[id_t] with E (V, D), its input
projection is linear in E, so every token's projection fits in one table::

    table = E W_ih^T + b            (V, gates*H)  input_table
    G0[t, n] = table[ids[t, n]]     (T, N, gates*H)  forward_rows: a row lookup per step

and backward, through the same lookup (the layer returns dG0 in place of dx)::

    dtable[v] = sum_{t,n : ids = v} dG0[t, n]      add_rows_at (the caller)
    dW_ih += dtable^T E,  dE = dtable W_ih          input_table_backward

That replaces three (T*N, D) @ (D, gates*H) products (forward, dW_ih, dx) with (V, D) ones,
plus the per-token sum; LanguageModel (training, evaluation, generation) uses it when
V <= 2D and V <= 256 (``fuses_embedding``), e.g. for characters.
"""

from __future__ import annotations

from typing import Any

from rnnlab._array import Array, check_array, check_ids


class InputTable:
    """Methods of :class:`Recurrent` for the table; see the module doc."""

    weights: list[dict[str, Any]]
    dtype: Any
    gates: int
    hidden_size: int

    def input_table(self, E: Array) -> Array:
        """(V, gates*H) = E W_ih^T + b: layer 0's input projection of every row of E (V, D).

        With E an embedding matrix, row v is exactly what the input projection computes for
        token v, so :meth:`forward_rows` can look the rows up instead of multiplying: for a
        small vocabulary that is far less work, in training as in generation.
        """
        G = E @ self.weights[0]["weight_ih"].value.T  # (V, gates*H)
        b = self._input_bias(0)  # type: ignore[attr-defined]
        return G if b is None else G + b

    def input_table_backward(self, E: Array, dtable: Array) -> Array:
        """input_table's backward: adds ``dtable^T E`` to W_ih's gradient; returns dE (V, D).

        The bias's share (the sum of dtable's rows) is not added here: ``backward`` has
        already added it, from the gates' gradient, as it does for any input.
        """
        W_ih = self.weights[0]["weight_ih"]  # (gates*H, D)
        W_ih.grad += dtable.T @ E
        return dtable @ W_ih.value  # (V, D)

    def forward_rows(self, table: Array, ids: Array, state: Any = None) -> tuple[Any, Any]:
        """``forward`` with layer 0's input projection looked up: row ``table[ids[t, n]]``.

        table: (V, gates*H) from :meth:`input_table`; ids: (T, N) ints in [0, V). After it,
        ``backward`` returns, in place of dx, the gradient of the looked-up rows
        (T, N, gates*H); summed per id (``add_rows_at``) it is input_table_backward's dtable.
        """
        check_array("table", table, self.dtype, 2)
        if table.shape[1] != self.gates * self.hidden_size:
            raise ValueError(f"table must have {self.gates * self.hidden_size} columns "
                             f"(gates * hidden_size), got shape {tuple(table.shape)}")
        if getattr(ids, "ndim", None) != 2:
            raise ValueError(f"ids must be a (T, N) integer array, got shape "
                             f"{getattr(ids, 'shape', type(ids).__name__)}")
        check_ids(ids, table.shape[0], "the table's rows")
        return self._forward(None, (table, ids), state, None, False)  # type: ignore[attr-defined]
