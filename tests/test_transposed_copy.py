"""The transposed copy (``Recurrent._transposed_hidden_weights``): every step multiplies by a
C-contiguous copy of W_hh^T, made afresh by each forward of 2+ steps, so it can never be stale."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.nn import GRU, LSTM, RNN


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_each_forward_multiplies_by_a_fresh_contiguous_copy(cls):
    rng = np.random.default_rng(0)
    layer = cls(3, 4, num_layers=2, dtype=np.float64, rng=rng)
    x = rng.standard_normal((5, 2, 3))
    layer.forward(x)
    for k, b in enumerate(layer._buffers):
        W_hh = layer.weights[k]["weight_hh"].value
        assert b["W_hh^T"].flags.c_contiguous and not np.shares_memory(b["W_hh^T"], W_hh)
        np.testing.assert_array_equal(b["W_hh^T"], W_hh.T)
    for p in layer.named_params().values():  # an optimiser's in-place update between two forwards
        p.value *= 0.5
    y, _ = layer.forward(x)
    fresh = cls(3, 4, num_layers=2, dtype=np.float64, rng=np.random.default_rng(1))
    for q, p in zip(fresh.named_params().values(), layer.named_params().values(), strict=True):
        q.value[...] = p.value
    np.testing.assert_allclose(y, fresh.forward(x)[0], rtol=0, atol=1e-14)


def test_a_one_step_forward_copies_nothing():
    """Generation and decoder steps run T = 1: the copy would cost more than the one product."""
    layer = LSTM(3, 4, dtype=np.float32, rng=np.random.default_rng(0))
    layer.forward(np.ones((1, 2, 3), np.float32))
    assert np.shares_memory(layer._buffers[0]["W_hh^T"], layer.weights[0]["weight_hh"].value)
    assert "W_hh^T copy" not in layer._buffers[0]
