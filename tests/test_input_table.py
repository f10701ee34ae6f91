"""Layer 0's input projection looked up from a table (forward_rows) equals computing it.

For an embedding matrix E (V, D) and ids (T, N), ``forward_rows(input_table(E), ids)`` must
give what ``forward(E[ids])`` gives, and its backward, through ``add_rows_at`` and
``input_table_backward``, the same parameter, embedding and initial-state gradients.
"""

import numpy as np
import pytest

from rnnlab import GRU, LSTM, RNN
from rnnlab.nn.embedding import ONE_HOT_MAX, add_rows_at

T, N, V, D, H, L = 5, 3, 6, 4, 3, 2
CELLS = {
    "rnn": lambda rng: RNN(D, H, L, dtype=np.float64, rng=rng),
    "lstm": lambda rng: LSTM(D, H, L, dtype=np.float64, rng=rng),
    "lstm_peephole": lambda rng: LSTM(D, H, L, peephole=True, dtype=np.float64, rng=rng),
    "gru": lambda rng: GRU(D, H, L, dtype=np.float64, rng=rng),
}


@pytest.mark.parametrize("V_out", [5, ONE_HOT_MAX + 50], ids=["one-hot", "sorted"])
@pytest.mark.parametrize("shape", [(40,), (7, 6), (0,)])
def test_add_rows_at_is_a_scatter_add(V_out, shape):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V_out, shape)  # many repeats in the one-hot case
    rows = rng.standard_normal((*shape, 3))
    out = rng.standard_normal((V_out, 3))
    want = out.copy()
    np.add.at(want, ids.reshape(-1), rows.reshape(-1, 3))
    add_rows_at(out, ids, rows)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


def run(layer, E, ids, s0, dy, ds, *, rows, truncate):
    """Forward and backward one way; returns y, final state, every gradient by name."""
    layer.zero_grad()
    dE = np.zeros_like(E)
    if rows:
        y, state = layer.forward_rows(layer.input_table(E), ids, s0)
        drows, ds0 = layer.backward_rows(dy, ds, truncate=truncate)  # (T, N, gates*H)
        dtable = np.zeros((V, drows.shape[-1]))
        add_rows_at(dtable, ids, drows)
        dE += layer.input_table_backward(E, dtable)
    else:
        y, state = layer.forward(E[ids], s0)
        dx, ds0 = layer.backward(dy, ds, truncate=truncate)  # (T, N, D)
        add_rows_at(dE, ids, dx)
    grads = {n: p.grad.copy() for n, p in layer.named_params().items()}
    grads["E"] = dE
    for i, s in enumerate(ds0 if isinstance(ds0, tuple) else (ds0,)):
        grads[f"state0[{i}]"] = s
    return y, state, grads


@pytest.mark.parametrize("truncate", [None, 1])
@pytest.mark.parametrize("cell", list(CELLS))
def test_looked_up_rows_give_the_same_outputs_and_gradients(cell, truncate):
    rng = np.random.default_rng(1)
    layer = CELLS[cell](rng)
    for p in layer.named_params().values():  # non-zero biases and peepholes
        p.value[...] = rng.uniform(-0.8, 0.8, p.shape)
    E = rng.standard_normal((V, D))
    ids = rng.integers(0, V, (T, N))
    parts = 2 if layer.has_cell else 1
    s0 = tuple(rng.standard_normal((L, N, H)) for _ in range(parts))
    ds = tuple(rng.standard_normal((L, N, H)) for _ in range(parts))
    s0, ds = (s0, ds) if layer.has_cell else (s0[0], ds[0])
    dy = rng.standard_normal((T, N, H))
    want = run(layer, E, ids, s0, dy, ds, rows=False, truncate=truncate)
    got = run(layer, E, ids, s0, dy, ds, rows=True, truncate=truncate)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
    for g, w in zip(got[1] if layer.has_cell else (got[1],),
                    want[1] if layer.has_cell else (want[1],), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    assert got[2].keys() == want[2].keys()
    for name in want[2]:
        np.testing.assert_allclose(got[2][name], want[2][name], rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def test_forward_rows_rejects_bad_tables_and_ids():
    layer = LSTM(D, H, dtype=np.float64, rng=np.random.default_rng(0))
    ids = np.zeros((T, N), dtype=np.int64)
    with pytest.raises(ValueError, match="12 columns"):
        layer.forward_rows(np.zeros((V, 5)), ids)
    with pytest.raises(ValueError, match="float64"):
        layer.forward_rows(np.zeros((V, 4 * H), dtype=np.float32), ids)
    with pytest.raises(ValueError, match=r"\(T, N\) integer array"):
        layer.forward_rows(np.zeros((V, 4 * H)), ids.reshape(-1))
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        layer.forward_rows(np.zeros((V, 4 * H)), ids - 1)
    with pytest.raises(ValueError, match="integer"):
        layer.forward_rows(np.zeros((V, 4 * H)), ids.astype(np.float64))
